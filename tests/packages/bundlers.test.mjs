// The packed packages the way users meet them: a fresh app per tool that installs the npm
// tarballs (never a link), built with the tool's defaults, served, and run in headless
// Chromium against a test server: insert + query + live with @kalam-wasm/client and
// consume + ack with @kalam-wasm/consumer, on the page and (where the tool builds workers)
// in dedicated, shared and service workers. Then Node 18/20/22, Bun and Deno running the
// same checks as a script, and TypeScript projects of each module resolution.
// Tools are npm-installed once into .tools/npm/ (see toolbox.mjs); a warm run installs none.
import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createServer } from 'node:net';
import { bin, freshApp, root, toolDir } from './toolbox.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { launchChromium } from '../support/browser.mjs';
import { rootSql, startTestServer } from '../support/testserver.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const appSources = Object.fromEntries(readdirSync(join(here, 'app')).map((f) => [f, readFileSync(join(here, 'app', f), 'utf8')]));
const NS = 'bund';
const TABLE = `${NS}.items`;
const TOPIC = `${NS}.items_feed`;
const USER = { user: 'bundler_app', password: 'Bundler-app-1' };
const SERVICE = { service: 'bundler_svc', servicePassword: 'Bundler-svc-1' };

let server;
let browser;
let tarballs;

before(async () => {
  const packDir = join(root, 'tests', 'output', 'bundler-packs');
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  tarballs = ['client', 'consumer'].map((name) => {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir, join(root, 'dist', name)], { encoding: 'utf8' });
    return join(packDir, out.trim().split('\n').pop());
  });
  server = await startTestServer();
  const sql = await rootSql(server.url);
  await sql(`CREATE NAMESPACE ${NS}`);
  await sql(`CREATE TABLE ${TABLE} (id TEXT PRIMARY KEY, note TEXT) WITH (TYPE = 'USER')`);
  await sql(`CREATE USER '${USER.user}' WITH PASSWORD '${USER.password}' ROLE user`);
  await sql(`CREATE USER '${SERVICE.service}' WITH PASSWORD '${SERVICE.servicePassword}' ROLE service`);
  await sql(`CREATE TOPIC ${TOPIC}`);
  await sql(`ALTER TOPIC ${TOPIC} ADD SOURCE ${TABLE} ON INSERT`);
  await sql(`INSERT INTO ${TABLE} (id, note) VALUES ('seed', 'seed')`); // something to consume from the start
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const config = (tag, extra = {}) => ({
  tag,
  client: { url: server.url, ...USER, table: TABLE },
  consumer: { url: server.url, ...SERVICE, topic: TOPIC },
  ...extra,
});

/** Runs a tool or script; one that has not exited after 120 s fails (e.g. a script kept
 * alive by a socket the client should have closed). */
function run(cmd, args, cwd, env = {}) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
}

/** Gzip bytes of the JS and wasm a user's visitors download from a built app. */
function appWeight(dir) {
  const sum = { js: 0, wasm: 0, files: 0 };
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(m?js|wasm)$/.test(f)) {
        sum[f.endsWith('.wasm') ? 'wasm' : 'js'] += gzipSync(readFileSync(p), { level: 9 }).length;
        sum.files += 1;
      }
    }
  };
  walk(dir);
  return sum;
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
function printWeight(name, dir) {
  const w = appWeight(dir);
  console.log(`app size ${name}: JS ${kb(w.js)} + wasm ${kb(w.wasm)} gzip = ${kb(w.js + w.wasm)} (${w.files} files)`);
}

/** Opens `url` (the config goes in the fragment) and returns the page's kalamResult. */
async function runInBrowser(url, cfg, { csp = false } = {}) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  // Failed requests are reported by URL (the console only says "Failed to load resource").
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  if (csp) {
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
    });
  }
  try {
    await page.goto(`${url}#${encodeURIComponent(JSON.stringify(cfg))}`);
    await page.waitForFunction(() => globalThis.kalamResult !== undefined, null, { timeout: 30_000 });
    const result = await page.evaluate(() => globalThis.kalamResult);
    return { result, problems };
  } finally {
    await page.context().clearCookies();
    await page.close();
  }
}

function assertChecks(result, expected) {
  for (const key of expected) {
    assert.ok(result[key], `${key}: no result (${JSON.stringify(result)})`);
    assert.equal(result[key].ok, true, `${key}: ${result[key].error}`);
  }
  for (const key of expected.filter((k) => /client/i.test(k))) assert.ok(result[key].liveRows >= 2, `${key} saw its live row`);
  for (const key of expected.filter((k) => /consumer/i.test(k))) assert.ok(result[key].consumed >= 1, `${key} consumed`);
}

const pageChecks = ['client', 'consumer'];
const workerChecks = [...pageChecks, 'dedicatedClient', 'sharedClient', 'dedicatedConsumer'];

const indexHtml = (src, type = 'module') => `<!doctype html><html><head><meta charset="utf-8"><title>kalam app</title></head><body><script ${type ? `type="${type}" ` : ''}src="${src}"></script></body></html>\n`;

/** Serves `dir` (with `headers`), runs the checks on its page and asserts `expected` passed
 * with no page error, console error, failed request or HTTP error. */
async function checkServed(dir, tag, expected, { headers = {}, extra = {}, csp = false } = {}) {
  const site = await serveStatic(dir, 0, headers);
  try {
    const { result, problems } = await runInBrowser(`${site.url}/`, config(tag, extra), { csp });
    assertChecks(result, expected);
    assert.deepEqual(problems, [], csp ? 'no CSP violation, no error' : 'no error');
  } finally {
    await site.close();
  }
}

describe('bundlers: a fresh app per tool, built with its defaults, run in headless Chromium', () => {
  test('Vite production build (vite build, no config), also under a strict CSP', async () => {
    const dir = freshApp('vite', 'vite-build', { ...appSources, 'index.html': indexHtml('./main-workers.js') }, tarballs);
    run(process.execPath, [bin('vite', 'vite'), 'build'], dir);
    printWeight('vite build', join(dir, 'dist'));
    await checkServed(join(dir, 'dist'), 'vite-build', workerChecks);

    const ws = server.url.replace(/^http/, 'ws');
    const csp = `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ${server.url} ${ws}; worker-src 'self'`;
    await checkServed(join(dir, 'dist'), 'vite-csp', workerChecks, { headers: { 'content-security-policy': csp }, csp: true });
  });

  test('Vite dev server (vite, no config)', async () => {
    const dir = freshApp('vite', 'vite-dev', { ...appSources, 'index.html': indexHtml('./main-workers.js') }, tarballs);
    const port = await freePort();
    // NO_COLOR: with CI set, Vite colours its output, escape codes inside the URL included.
    const child = spawn(process.execPath, [bin('vite', 'vite'), '--host', '127.0.0.1', '--port', String(port), '--strictPort'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    try {
      await new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`vite dev did not start:\n${output}`)), 30_000);
        const onData = (d) => {
          output += d;
          if (output.replace(/\x1b\[[0-9;]*m/g, '').includes(`127.0.0.1:${port}`)) { clearTimeout(timer); ok(); }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.once('exit', (code) => fail(new Error(`vite dev exited ${code}:\n${output}`)));
      });
      const { result, problems } = await runInBrowser(`http://127.0.0.1:${port}/`, config('vite-dev'));
      assertChecks(result, workerChecks);
      assert.deepEqual(problems, []);
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('webpack 5 (webpack, no config: src/index.js -> dist/main.js, production mode)', async () => {
    const src = Object.fromEntries(Object.entries(appSources).map(([f, t]) => [`src/${f === 'main-workers.js' ? 'index.js' : f}`, t]));
    const dir = freshApp('webpack', 'webpack', src, tarballs);
    run(process.execPath, [bin('webpack', 'webpack'), '--mode', 'production'], dir);
    writeFileSync(join(dir, 'dist', 'index.html'), indexHtml('./main.js', ''));
    printWeight('webpack', join(dir, 'dist'));
    await checkServed(join(dir, 'dist'), 'webpack', [...workerChecks, 'serviceWorkerConsumer'], { extra: { serviceWorker: true } });
  });

  test('Rollup 4 with @rollup/plugin-node-resolve and @web/rollup-plugin-import-meta-assets', async () => {
    const rollupConfig = [
      "import { nodeResolve } from '@rollup/plugin-node-resolve';",
      "import { importMetaAssets } from '@web/rollup-plugin-import-meta-assets';",
      "export default { input: 'main.js', output: { dir: 'dist', format: 'es' }, plugins: [nodeResolve({ browser: true }), importMetaAssets()] };",
      '',
    ].join('\n');
    const dir = freshApp('rollup', 'rollup', { ...appSources, 'rollup.config.mjs': rollupConfig }, tarballs);
    run(process.execPath, [bin('rollup', 'rollup'), '-c'], dir);
    writeFileSync(join(dir, 'dist', 'index.html'), indexHtml('./main.js'));
    printWeight('rollup', join(dir, 'dist'));
    await checkServed(join(dir, 'dist'), 'rollup', pageChecks);
  });

  test('esbuild (--bundle --format=esm) plus the one documented step: copy the .wasm files', async () => {
    const dir = freshApp('esbuild', 'esbuild', appSources, tarballs);
    run(bin('esbuild', 'esbuild'), ['main.js', '--bundle', '--format=esm', '--outdir=dist'], dir);
    // esbuild leaves `new URL('./wasm/...', import.meta.url)` as it is, relative to the bundle.
    mkdirSync(join(dir, 'dist', 'wasm'), { recursive: true });
    for (const pkg of ['client', 'consumer']) {
      cpSync(join(dir, 'node_modules', '@kalam-wasm', pkg, 'wasm', `kalam_${pkg}_bg.wasm`), join(dir, 'dist', 'wasm', `kalam_${pkg}_bg.wasm`));
    }
    writeFileSync(join(dir, 'dist', 'index.html'), indexHtml('./main.js'));
    printWeight('esbuild', join(dir, 'dist'));
    await checkServed(join(dir, 'dist'), 'esbuild', pageChecks);
  });

  // Pages only: Parcel 2.16 splits code that a page and its module workers share into a
  // bundle the worker never loads ("Cannot find module"), with any package (README).
  test('Parcel 2 (parcel build index.html, no config)', async () => {
    const dir = freshApp('parcel', 'parcel', { ...appSources, 'index.html': indexHtml('./main.js') }, tarballs);
    run(process.execPath, [bin('parcel', 'parcel'), 'build', 'index.html', '--no-cache'], dir);
    printWeight('parcel', join(dir, 'dist'));
    await checkServed(join(dir, 'dist'), 'parcel', pageChecks);
  });

  test('tree-shaking: an app that imports only Auth and KalamError gets no wasm and no client code; es2020 targets build (no top-level await)', () => {
    const files = { 'tiny.js': "import { Auth, KalamError } from '@kalam-wasm/client';\nconsole.log(Auth.basic('a', 'b'), new KalamError({ code: 'X', message: 'y' }));\n" };
    const dir = freshApp('esbuild', 'treeshake', { ...files, ...appSources }, tarballs);
    run(bin('esbuild', 'esbuild'), ['tiny.js', '--bundle', '--format=esm', '--minify', '--outfile=dist/tiny.js'], dir);
    const tiny = readFileSync(join(dir, 'dist', 'tiny.js'), 'utf8');
    assert.doesNotMatch(tiny, /_bg\.wasm|WebAssembly/, 'the wasm loader was shaken out');
    const size = gzipSync(tiny).length;
    console.log(`app size tree-shaken (Auth + KalamError): JS ${kb(size)} gzip`);
    assert.ok(size < 4096, `tree-shaken bundle is ${size} B gzip`);
    // esbuild refuses top-level await for targets before es2022; both packages must bundle.
    run(bin('esbuild', 'esbuild'), ['main.js', '--bundle', '--format=esm', '--target=es2020', '--outfile=dist/es2020.js'], dir);
  });

  test('no bundler: a plain page with an import map', async () => {
    const importMap = JSON.stringify({ imports: {
      '@kalam-wasm/client': './node_modules/@kalam-wasm/client/index.js',
      '@kalam-wasm/consumer': './node_modules/@kalam-wasm/consumer/index.js',
    } });
    const html = `<!doctype html><html><head><meta charset="utf-8"><script type="importmap">${importMap}</script></head><body><script type="module" src="./main.js"></script></body></html>\n`;
    const dir = freshApp('esbuild', 'importmap', { ...appSources, 'index.html': html }, tarballs);
    await checkServed(dir, 'importmap', pageChecks);
  });
});

async function freePort() {
  const s = createServer();
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

describe('runtimes: the same checks as a script', () => {
  const runtimes = [
    ['Node 18 (ws)', 'node18', () => [bin('node18', 'node'), ['node-main.mjs']], 'ws'],
    ['Node 20 (ws)', 'node20', () => [bin('node20', 'node'), ['node-main.mjs']], 'ws'],
    ['Node 22 (global WebSocket)', 'node22', () => [bin('node22', 'node'), ['node-main.mjs']], 'global'],
    ['Bun', 'bun', () => [bin('bun', 'bun'), ['node-main.mjs']], 'global'],
    ['Deno', 'deno', () => [bin('deno', 'deno'), ['run', '-A', 'node-main.mjs']], 'global'],
  ];
  for (const [name, tool, command, webSocket] of runtimes) {
    test(name, () => {
      const dir = freshApp(tool, tool, appSources, tarballs);
      const [cmd, args] = command();
      const version = run(cmd, ['--version'], dir).trim().split('\n')[0];
      const out = run(cmd, [...args, JSON.stringify(config(tool))], dir, { DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' });
      const result = JSON.parse(out.trim().split('\n').pop());
      console.log(`${name}: ${version}`);
      assert.equal(result.webSocket, webSocket);
      assertChecks(result, pageChecks);
    });
  }
});

describe('TypeScript projects typecheck against the published typings', () => {
  const source = [
    "import { createClient, Auth, KalamError, SeqId } from '@kalam-wasm/client';",
    "import { createConsumerClient, runConsumer } from '@kalam-wasm/consumer';",
    "const client = createClient({ url: 'http://localhost:8080', authProvider: async () => Auth.basic('a', 'b') });",
    "export const rows: Promise<number> = client.queryAll('SELECT 1').then((r) => r.length);",
    "export const consumer = createConsumerClient({ url: 'http://localhost:8080', auth: Auth.basic('s', 'p') });",
    'export const run: typeof runConsumer = runConsumer;',
    'export const isError = (e: unknown): boolean => e instanceof KalamError;',
    'export const seq: typeof SeqId = SeqId;',
    '',
  ].join('\n');
  // Every typing is checked (skipLibCheck off) where the project has the DOM lib; Node
  // projects without it use what `tsc --init` writes (skipLibCheck on), since the typings
  // name fetch/WebSocket/WebAssembly types that @types/node does not declare (README).
  const dom = ['ES2022', 'DOM', 'ESNext'];
  const nodeOnly = { lib: ['ES2022', 'ESNext'], types: ['node'], skipLibCheck: true };
  const projects = [
    ['moduleResolution bundler (browser app, every typing checked)', { module: 'esnext', moduleResolution: 'bundler', lib: dom }, 'module'],
    ['module node16 with the DOM lib (every typing checked)', { module: 'node16', moduleResolution: 'node16', lib: dom, types: ['node'] }, 'module'],
    ['module node16 (Node ESM, tsc --init defaults, no DOM lib)', { module: 'node16', moduleResolution: 'node16', ...nodeOnly }, 'module'],
    ['module nodenext (Node ESM, tsc --init defaults, no DOM lib)', { module: 'nodenext', moduleResolution: 'nodenext', ...nodeOnly }, 'module'],
    ['module nodenext in a CommonJS project (require of an ES module)', { module: 'nodenext', moduleResolution: 'nodenext', ...nodeOnly }, 'commonjs'],
  ];
  for (const [name, options, type] of projects) {
    test(name, () => {
      const tsconfig = { compilerOptions: { strict: true, target: 'ES2022', noEmit: true, skipLibCheck: false, ...options }, files: ['main.ts'] };
      const dir = freshApp('typescript', `ts-${options.module}-${type}-${options.lib.length}`, { 'main.ts': source, 'tsconfig.json': JSON.stringify(tsconfig, null, 2) }, tarballs, { type });
      try {
        run(process.execPath, [join(toolDir('typescript'), 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], dir);
      } catch (err) {
        assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
      }
    });
  }

  test('a CommonJS script require()s the packages on Node 20 and 22; Node 18 refuses with ERR_REQUIRE_ESM', () => {
    const script = [
      "const { coreVersion } = require('@kalam-wasm/client');",
      "const consumer = require('@kalam-wasm/consumer');",
      'coreVersion().then(async (v) => console.log(v, await consumer.coreVersion()));',
      '',
    ].join('\n');
    const dir = freshApp('node22', 'cjs', { 'main.cjs': script }, tarballs, { type: 'commonjs' });
    const version = /^\[package\][^[]*?^version\s*=\s*"([^"]+)"/ms.exec(readFileSync(join(root, 'Cargo.toml'), 'utf8'))[1];
    for (const tool of ['node20', 'node22']) {
      assert.equal(run(bin(tool, 'node'), ['main.cjs'], dir).trim(), `${version} ${version}`, tool);
    }
    assert.throws(() => run(bin('node18', 'node'), ['main.cjs'], dir), (err) => /ERR_REQUIRE_ESM/.test(err.stderr));
  });
});
