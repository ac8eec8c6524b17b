// The packed npm packages, as users get them: tarball contents, import in Node, import in
// headless Chromium (page and dedicated worker), and typechecking from a TypeScript consumer.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appDir, packAndInstall, root } from './install.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { launchChromium } from '../support/browser.mjs';

const cargoVersion = /^\[package\][^[]*?^version\s*=\s*"([^"]+)"/ms.exec(readFileSync(join(root, 'Cargo.toml'), 'utf8'))[1];
const packages = ['@kalam-wasm/client', '@kalam-wasm/consumer'];
let tarballs;
let browser;
let server;

before(async () => {
  ({ tarballs } = packAndInstall());
  writeFileSync(join(appDir, 'blank.html'), '<!doctype html><title>package test</title>');
  server = await serveStatic(appDir);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test('each tarball ships ESM, typings, the .wasm and a README, and no eval', () => {
  for (const tarball of tarballs) {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const needed of ['package/package.json', 'package/README.md', 'package/index.js', 'package/index.d.ts',
      'package/node.js', 'package/wasm/kalam_wasm.js', `package/wasm/kalam_${/consumer/.test(tarball) ? 'consumer' : 'client'}_bg.wasm`]) {
      assert.ok(files.includes(needed), `${tarball} lacks ${needed}`);
    }
    const js = execFileSync('tar', ['xzOf', tarball, ...files.filter((f) => f.endsWith('.js'))], { encoding: 'utf8' });
    assert.doesNotMatch(js, /new Function|\beval\(/, 'no eval or new Function (strict CSP pages)');
    assert.doesNotMatch(js, /globalThis\.window\s*=|global\.window\s*=/, 'no fake window');
  }
});

for (const pkg of packages) {
  test(`${pkg} imports and instantiates in Node ${process.versions.node}`, () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e',
      `import { coreVersion } from '${pkg}'; console.log(await coreVersion());`], { cwd: appDir, encoding: 'utf8' });
    assert.equal(out.trim(), cargoVersion);
  });

  test(`${pkg} imports in headless Chromium on a page and in a dedicated worker`, async () => {
    const entry = `/node_modules/${pkg}/index.js`;
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/blank.html`);
    const onPage = await page.evaluate(async (src) => (await import(src)).coreVersion(), entry);
    assert.equal(onPage, cargoVersion);
    const inWorker = await page.evaluate((src) => new Promise((resolve, reject) => {
      const code = `import { coreVersion } from '${location.origin}${src}'; coreVersion().then((v) => postMessage(v), (e) => postMessage('error: ' + e));`;
      const worker = new Worker(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })), { type: 'module' });
      worker.onmessage = (e) => { resolve(e.data); worker.terminate(); };
      worker.onerror = (e) => reject(new Error(e.message));
    }), entry);
    assert.equal(inWorker, cargoVersion);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

// The FileRef rules are the Rust core's, asked synchronously by the TypeScript FileRef.
test('FileRef names and paths come from the core, which keeps an empty extension empty', () => {
  const script = `
    import { initWasm, storedFileName, FileRef, ErrorCode, SeqId, KalamCellValue } from '@kalam-wasm/client';
    import { KalamCellValue as ConsumerCell, initWasm as initConsumer } from '@kalam-wasm/consumer';
    const early = (() => { try { storedFileName('1', 'a.txt'); return 'no error'; } catch (e) { return e.code; } })();
    await initWasm();
    await initConsumer();
    const raw = JSON.stringify({ id: '1', sub: 'f0001', name: 'name.', size: 3 });
    const ref = FileRef.from(raw);
    let bad;
    try { ref.getDownloadUrl('http://h', '..', 't'); } catch (e) { bad = e.code; }
    console.log(JSON.stringify({
      early,
      named: storedFileName('1', 'name.'),
      stored: ref.stored_name,
      consumer: ConsumerCell.from(raw).asFile().stored_name,
      path: ref.forTable('a b', 'docs').relativeUrl(),
      url: ref.getDownloadUrl('http://h:1/', 'app', 'docs'),
      bad,
      mime: ref.mime,
      notFile: FileRef.from('{"id":1}'),
      codes: Object.keys(ErrorCode).length,
      seq: [SeqId.from((5n << 22n) | (7n << 12n) | 9n).workerId(), SeqId.from((5n << 22n) | 9n).timestampMillis()],
    }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: appDir, encoding: 'utf8' }));
  assert.deepEqual(out, {
    early: 'INVALID_ARGUMENT', // a typed error before the core is loaded, not a TypeError from the glue
    named: '1-name.', // the TypeScript copy said '1-name.bin'; the server keeps the empty extension
    stored: '1-name.',
    consumer: '1-name.',
    path: '/v1/files/a%20b/docs/f0001/1-name.',
    url: 'http://h:1/v1/files/app/docs/f0001/1-name.',
    bad: 'INVALID_ARGUMENT',
    mime: '',
    notFile: null,
    codes: 9,
    seq: [7, 1704067200005],
  });
});

test('a TypeScript consumer typechecks against the published typings', () => {
  const dir = join(appDir, 'ts-consumer');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.ts'), [
    "import { coreVersion, initWasm } from '@kalam-wasm/client';",
    "import { coreVersion as consumerVersion } from '@kalam-wasm/consumer';",
    'const v: Promise<string> = coreVersion();',
    'const w: Promise<string> = consumerVersion();',
    'const ready: Promise<void> = initWasm();',
    'export { v, w, ready };',
    '',
  ].join('\n'));
  // A deliberately wrong use must fail, so the check can fail at all.
  writeFileSync(join(dir, 'wrong.ts'), "import { coreVersion } from '@kalam-wasm/client';\nconst n: number = coreVersion();\nexport { n };\n");
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  for (const resolution of [['--module', 'nodenext', '--moduleResolution', 'nodenext'], ['--module', 'esnext', '--moduleResolution', 'bundler']]) {
    const common = ['--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022,dom,esnext', '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types'), ...resolution];
    execFileSync(tsc, [...common, join(dir, 'main.ts')], { cwd: appDir, stdio: 'inherit' });
    assert.throws(() => execFileSync(tsc, [...common, join(dir, 'wrong.ts')], { cwd: appDir, stdio: 'pipe', encoding: 'utf8' }),
      (err) => /TS2322/.test(err.stdout), 'tsc must reject assigning Promise<string> to number');
  }
});
