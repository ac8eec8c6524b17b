// The demo runner behind scripts/demo.sh (which builds first): assembles the site
// (www-demo + the built packages under /pkg/ + the React example bundled into /react/), starts kalam-testserver as the embedded
// server (or uses KALAMDB_URL and starts nothing), seeds the demo schema and users, writes
// /demo-config.json for the page, prints the URL and the credentials, and runs until
// Ctrl-C, stopping what it started.
//
// Env: KALAMDB_URL (+ KALAMDB_ROOT_USER, KALAMDB_ROOT_PASSWORD: an admin to seed with)
//      DEMO_PORT (default 0: a free port), DEMO_SITE_DIR (default target/demo-site),
//      DEMO_TESTSERVER_BIN (default target/debug/kalam-testserver),
//      DEMO_ALICE_PASSWORD, DEMO_BOB_PASSWORD, DEMO_BOT_PASSWORD.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '../../scripts/static-server.mjs';
import { demoUsers, seed } from './seed.mjs';
import { buildReactExample } from './react-example.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = process.env;
const external = env.KALAMDB_URL?.replace(/\/+$/, '');
const port = Number(env.DEMO_PORT ?? 0);
const site = resolve(env.DEMO_SITE_DIR ?? join(root, 'target', 'demo-site'));
const users = demoUsers(env);

function fail(message) {
  console.error(`\ndemo: ${message}`);
  process.exit(1);
}

// ---- the site: www-demo (without tools/) + dist packages under /pkg/ + /react/ -------------
async function assembleSite() {
  for (const pkg of ['client', 'consumer', 'react']) {
    if (!existsSync(join(root, 'dist', pkg, 'index.js'))) fail(`dist/${pkg} is missing: run bash scripts/build.sh`);
  }
  rmSync(site, { recursive: true, force: true });
  mkdirSync(site, { recursive: true });
  cpSync(join(root, 'www-demo'), site, { recursive: true, filter: (src) => !src.startsWith(join(root, 'www-demo', 'tools')) && !src.endsWith('.jsx') });
  cpSync(join(root, 'dist', 'client'), join(site, 'pkg', 'client'), { recursive: true });
  cpSync(join(root, 'dist', 'consumer'), join(site, 'pkg', 'consumer'), { recursive: true });
  await buildReactExample(root, site).catch((e) => fail(`the React example did not build: ${e.message}`));
}

function writeConfig(serverUrl, rootPassword) {
  const config = {
    mode: external ? 'external' : 'embedded',
    url: serverUrl,
    namespace: 'demo',
    people: users.people,
    bot: { id: users.bot.id, name: users.bot.name, password: users.bot.password },
    // Fault switches exist only on the embedded test server (in memory, loopback only,
    // random root password per run): the resilience panel uses them.
    faults: external ? null : { user: 'root', password: rootPassword },
  };
  writeFileSync(join(site, 'demo-config.json'), JSON.stringify(config, null, 2));
}

// ---- the embedded test server ------------------------------------------------------------
let child;
async function startTestServer(rootPassword) {
  const bin = resolve(env.DEMO_TESTSERVER_BIN ?? join(root, 'target', 'debug', 'kalam-testserver'));
  if (!existsSync(bin)) fail(`${bin} is missing: run cargo build -p kalam-testserver`);
  child = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--static-dir', site], {
    env: { ...env, KALAMDB_ROOT_PASSWORD: rootPassword },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((ok, ko) => {
    const timer = setTimeout(() => ko(new Error('kalam-testserver did not start within 30 s')), 30_000);
    child.once('exit', (code) => ko(new Error(`kalam-testserver exited with code ${code} before listening`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      const m = /listening on (http:\S+)/.exec(line);
      m ? ok(m[1].replace(/\/+$/, '')) : ko(new Error(`unexpected first line from kalam-testserver: ${line}`));
    });
  }).catch((e) => fail(e.message));
  lines.on('line', (line) => console.log(`[kalam-testserver] ${line}`));
  child.on('exit', (code, signal) => {
    if (!stopping) fail(`kalam-testserver stopped unexpectedly (${signal ?? code})`);
  });
  return url;
}

// ---- the site on its own port in KALAMDB_URL mode ----------------------------------------
let staticServer;
async function serveSite() {
  staticServer = await serveStatic(site, port).catch((e) => fail(`cannot serve the demo on port ${port}: ${e.message}`));
  return staticServer.url;
}

// ---- stop cleanly --------------------------------------------------------------------------
let stopping = false;
function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  staticServer?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => { clearTimeout(force); process.exit(code); });
  } else {
    process.exit(code);
  }
}
process.on('SIGINT', () => { console.log('\nstopping the demo…'); stop(0); });
process.on('SIGTERM', () => stop(0));
process.on('exit', () => { if (child && child.exitCode === null) child.kill('SIGKILL'); });

// ---- main ----------------------------------------------------------------------------------
await assembleSite();
let pageUrl;
let serverUrl;
if (external) {
  const adminUser = env.KALAMDB_ROOT_USER ?? 'root';
  const adminPassword = env.KALAMDB_ROOT_PASSWORD;
  if (adminPassword === undefined) fail('KALAMDB_URL is set: also set KALAMDB_ROOT_PASSWORD (and KALAMDB_ROOT_USER if not root) to seed the demo schema');
  serverUrl = external;
  console.log(`seeding the demo schema on ${serverUrl} as ${adminUser}…`);
  await seed({ url: serverUrl, adminUser, adminPassword, users }).catch((e) => fail(e.message));
  writeConfig(serverUrl, null);
  pageUrl = await serveSite();
} else {
  const rootPassword = env.KALAMDB_ROOT_PASSWORD ?? `demo-${randomBytes(9).toString('base64url')}`;
  writeConfig(null, rootPassword); // null: the page talks to the origin that serves it
  serverUrl = await startTestServer(rootPassword);
  await seed({ url: serverUrl, adminUser: 'root', adminPassword: rootPassword, users })
    .catch((e) => { console.error(`\ndemo: ${e.message}`); stop(1); return new Promise(() => {}); });
  pageUrl = serverUrl;
}

const [a, b] = users.people;
const pad = (s, n) => s + ' '.repeat(Math.max(0, n - s.length));
console.log(`
  KalamDB live demo is running

  Open:      ${pageUrl}/
  React:     ${pageUrl}/react/   (the inbox with @kalam-wasm/react: live ORDER BY, optimistic writes)
  Server:    ${external ? `${serverUrl} (KALAMDB_URL)` : `embedded kalam-testserver at ${serverUrl} (in memory)`}
  Sign in:   ${pad(a.id, 6)} / ${a.password}
             ${pad(b.id, 6)} / ${b.password}
  Worker:    ${users.bot.id} (service role, used by the topic worker in the page)

  Open a second tab (or another browser) to watch updates arrive live.
  Press Ctrl-C to stop.
`);
