// Runs the examples of the npm README (pkg-templates/client/README.md) against the test
// server with the built package: the ```sql setup block as root, then every ```js test block
// as its own module, in order. Each `console.log(...)` line annotated `// → text` must print
// exactly `text` (Node's console formatting), in order, and nothing else may be printed.
// Names are made unique per run: `app` (the namespace; the word appears nowhere else in code) and the users alice/bob/svc get a suffix,
// in the setup SQL and in the examples alike.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { root, clientDir, testServer, rootSql } from './support.mjs';

const readmePath = join(root, 'pkg-templates', 'client', 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const run = Math.random().toString(36).slice(2, 8);
const outDir = join(root, 'tests', 'output', 'readme-examples');

/** Fenced blocks with their info string and the line they start on. */
function blocks(markdown) {
  const out = [];
  const re = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  let m;
  while ((m = re.exec(markdown))) out.push({ info: m[1].trim(), code: m[2], line: markdown.slice(0, m.index).split('\n').length });
  return out;
}

function rename(text) {
  return text
    .replace(/\bapp\b/g, `app_${run}`)
    .replace(/\b(alice|bob|svc)\b/g, (u) => `${u}_${run}`);
}

const all = blocks(readme);
const setup = all.filter((b) => b.info === 'sql setup');
const examples = all.filter((b) => /^(js|ts) test$/.test(b.info));

let server;

before(async () => {
  server = await testServer();
  mkdirSync(outDir, { recursive: true });
});
after(async () => {
  await server?.close();
});

test('the README has a setup block and tested examples', () => {
  assert.equal(setup.length, 1, 'one ```sql setup block');
  assert.ok(examples.length >= 5, `tested examples: ${examples.length}`);
});

test('README setup SQL runs as root', async () => {
  for (const statement of rename(setup[0].code).split(/;\s*$/m).map((s) => s.trim()).filter(Boolean)) {
    await rootSql(server, statement);
  }
});

for (const [i, block] of examples.entries()) {
  const firstCode = block.code.split('\n').find((l) => l.trim() && !l.startsWith('import')) ?? '';
  test(`README example ${i + 1} (line ${block.line}): ${firstCode.trim().slice(0, 60)}`, async () => {
    const code = rename(block.code)
      .replaceAll("'@kalam-wasm/client'", JSON.stringify(pathToFileURL(join(clientDir, 'node.js')).href))
      .replaceAll('http://localhost:8080', server.url);
    const expected = code.split('\n').filter((l) => l.includes('console.log(')).map((l) => {
      const m = /\/\/ → (.*)$/.exec(l);
      assert.ok(m, `every console.log line of the example is annotated with // → (${l.trim()})`);
      return m[1];
    });
    const file = join(outDir, `example-${i + 1}-${run}.mjs`);
    writeFileSync(file, code);
    const printed = [];
    const original = console.log;
    console.log = (...args) => printed.push(format(...args));
    try {
      await import(pathToFileURL(file).href);
    } finally {
      console.log = original;
    }
    assert.deepEqual(printed, expected, 'printed lines = the // → annotations');
  });
}
