// The size gate of scripts/size-report.mjs on fake reports: a bundle over its budget (only
// when budgets are enforced), one that grew more than 2 % over its recorded size, and ones
// within both; --record's edit of wasm-pack.toml; and what the JS row measures (the largest
// browser entry bundled, not every file of the package) on fake packages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse } from 'smol-toml';
import { browserEntries, checkSizes, hasNameSection, measurePackageJs, recordSizesText } from '../../scripts/size-report.mjs';
import { root } from './install.mjs';

const matrix = (enforce) => ({
  build: { enforce_budgets: enforce },
  bundles: {
    client: { package: '@kalam-wasm/client', budget: { wasm_gzip_bytes: 1000, js_gzip_bytes: 500 }, size: { wasm_gzip_bytes: 900, js_gzip_bytes: 400 } },
    orm: { package: '@kalam-wasm/orm', budget: { js_gzip_bytes: 500 } },
  },
});
const row = (name, kind, gzip) => ({ name, bundle: `@kalam-wasm/${name}`, kind, gzip });

test('within budget and within 2 % of the recorded size: passes', () => {
  const rows = [row('client', 'wasm', 918), row('client', 'js', 408), row('orm', 'js', 499)];
  assert.deepEqual(checkSizes(rows, matrix(true)), { failures: [], notes: [] });
});

test('more than 2 % over the recorded size fails, budgets enforced or not', () => {
  for (const enforce of [true, false]) {
    const { failures } = checkSizes([row('client', 'wasm', 927), row('client', 'js', 400)], matrix(enforce)); // +3 %
    assert.equal(failures.length, 1);
    assert.match(failures[0], /@kalam-wasm\/client wasm is 927 bytes gzip, 3\.0 % over the 900 recorded/);
    assert.match(failures[0], /--record/);
  }
  // Exactly +2 % is still allowed.
  assert.deepEqual(checkSizes([row('client', 'wasm', 918)], matrix(false)).failures, []);
});

test('over budget fails only when [build] enforce_budgets is true', () => {
  const rows = [row('orm', 'js', 501)]; // no recorded size: only the budget applies
  assert.deepEqual(checkSizes(rows, matrix(false)).failures, []);
  assert.deepEqual(checkSizes(rows, { ...matrix(false), build: {} }).failures, []);
  const { failures } = checkSizes(rows, matrix(true));
  assert.equal(failures.length, 1);
  assert.match(failures[0], /@kalam-wasm\/orm js is 501 bytes gzip, over its budget of 500/);
  // Over budget and grown: both rules report.
  assert.equal(checkSizes([row('client', 'wasm', 1100)], matrix(true)).failures.length, 2);
});

test('a bundle well under its recorded size passes with a note to re-record', () => {
  const { failures, notes } = checkSizes([row('client', 'wasm', 800)], matrix(true));
  assert.deepEqual(failures, []);
  assert.equal(notes.length, 1);
  assert.match(notes[0], /under its recorded 900 bytes/);
});

test('--record replaces recorded sizes, adds missing ones, and keeps the rest of the file', () => {
  const text = [
    '[build]', '# a comment', 'enforce_budgets = false', '',
    '[bundles.client]', 'package = "@kalam-wasm/client"', '',
    '[bundles.client.budget]', 'wasm_gzip_bytes = 1000', '',
    '[bundles.client.size]', 'wasm_gzip_bytes = 900', '',
    '[bundles.orm]', 'package = "@kalam-wasm/orm"', '',
    '[bundles.orm.budget]', 'js_gzip_bytes = 500', '',
  ].join('\n');
  const out = recordSizesText(text, [row('client', 'wasm', 950), row('client', 'js', 410), row('orm', 'js', 321)]);
  const parsed = parse(out);
  assert.deepEqual({ ...parsed.bundles.client.size }, { wasm_gzip_bytes: 950, js_gzip_bytes: 410 });
  assert.deepEqual({ ...parsed.bundles.orm.size }, { js_gzip_bytes: 321 });
  assert.deepEqual({ ...parsed.bundles.client.budget }, { wasm_gzip_bytes: 1000 });
  assert.equal(parsed.bundles.orm.package, '@kalam-wasm/orm');
  assert.match(out, /# a comment/);
  // Recording the same sizes again changes nothing.
  assert.equal(recordSizesText(out, [row('client', 'wasm', 950), row('client', 'js', 410), row('orm', 'js', 321)]), out);
});

test('wasm-pack.toml: the budget switch is documented and recorded sizes exist for the wasm bundles', () => {
  const text = readFileSync(join(root, 'wasm-pack.toml'), 'utf8');
  const m = parse(text);
  assert.equal(typeof m.build.enforce_budgets, 'boolean');
  for (const name of ['client', 'consumer']) {
    for (const key of ['wasm_gzip_bytes', 'js_gzip_bytes']) assert.equal(typeof m.bundles[name].size?.[key], 'number', `${name}.size.${key}`);
  }
  // The real file round-trips through --record unchanged when the sizes are the same.
  const rows = Object.entries(m.bundles).flatMap(([name, b]) => Object.entries(b.size ?? {}).map(([k, gzip]) => row(name, k.replace('_gzip_bytes', ''), gzip)));
  assert.equal(recordSizesText(text, rows), text);
});

test('a --dev .wasm (name section kept) is told apart from a release one (stripped)', () => {
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const typeSection = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]; // one `() -> ()` type
  const custom = (name, payload) => [0x00, 1 + name.length + payload.length, name.length, ...Buffer.from(name), ...payload];
  const release = Buffer.from([...header, ...typeSection, ...custom('target_features', [0x00])]);
  const dev = Buffer.from([...header, ...typeSection, ...custom('name', [0x01, 0x00]), ...custom('producers', [])]);
  assert.equal(hasNameSection(release), false);
  assert.equal(hasNameSection(dev), true);
  assert.equal(hasNameSection(Buffer.from(header)), false);
});

test('browser entries: the browser/import/default target of each public subpath', () => {
  const client = JSON.parse(readFileSync(join(root, 'pkg-templates', 'client', 'package.json'), 'utf8'));
  assert.deepEqual(browserEntries(client), ['./index.js']); // not node.js, not the .wasm
  const react = JSON.parse(readFileSync(join(root, 'pkg-templates', 'react', 'package.json'), 'utf8'));
  assert.deepEqual(browserEntries(react), ['./index.js', './drizzle.js']);
  assert.deepEqual(browserEntries({ exports: { import: './a.js', require: './a.cjs' } }), ['./a.js']);
  assert.deepEqual(browserEntries({ exports: './b.js' }), ['./b.js']);
  assert.deepEqual(browserEntries({ main: './c.js' }), ['./c.js']);
  assert.deepEqual(browserEntries({ browser: './w.js', main: './c.js' }), ['./w.js']);
});

test('the JS row is the largest browser entry bundled, without Node-only files or peers', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kalam-size-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const filler = (word, n) => Array.from({ length: n }, (_, i) => `${word}${i * 7919 % 10007}`).join(' ');
  mkdirSync(join(dir, 'wasm'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({
    type: 'module',
    exports: {
      '.': { node: './node.js', browser: './index.js', default: './index.js' },
      './small': { import: './small.js' },
      './k_bg.wasm': './wasm/k_bg.wasm',
      './package.json': './package.json',
    },
  }));
  writeFileSync(join(dir, 'index.js'), `export * from './api.js';\n`);
  writeFileSync(join(dir, 'api.js'), `import init from './wasm/glue.js';\nimport { peer } from 'some-peer';\n`
    + `export const used = ${JSON.stringify(filler('used', 400))};\nexport { init, peer };\n`);
  writeFileSync(join(dir, 'wasm', 'glue.js'), `export default function init() { return new URL('k_bg.wasm', import.meta.url); }\n`);
  writeFileSync(join(dir, 'small.js'), `export const small = 1;\n`);
  writeFileSync(join(dir, 'node.js'), `export const nodeOnly = ${JSON.stringify(filler('nodeOnly', 3000))};\n`);
  const m = measurePackageJs(dir);
  assert.equal(m.entry, './index.js');
  const text = m.bytes.toString('utf8');
  assert.match(text, /used0 /); // the entry's own code, bundled in
  assert.match(text, /k_bg\.wasm/); // the wasm URL kept as is (the .wasm is not inlined)
  assert.match(text, /from\s*"some-peer"/); // a peer package stays an import
  assert.doesNotMatch(text, /nodeOnly/); // the Node entry is not what a browser app ships
  assert.ok(!/^export \* from/m.test(text), 'bundled, not the re-export file alone');
  // Every file of the package, node.js included: more than the entry alone.
  assert.equal(m.files.length, 5);
  const filesGzip = m.files.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
  assert.ok(filesGzip > gzipSync(m.bytes, { level: 9 }).length);
  // The larger of two entries is the one measured.
  writeFileSync(join(dir, 'small.js'), `export const small = ${JSON.stringify(filler('small', 2000))};\n`);
  assert.equal(measurePackageJs(dir).entry, './small.js');
});
