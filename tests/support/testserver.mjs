// The one place the JavaScript tests and benchmarks find what they test: the test server
// binary, the built client package and a KalamDB server to talk to. One set of env vars:
//   KALAMDB_TESTSERVER_BIN      the kalam-testserver binary (default: $CARGO_TARGET_DIR or
//                               target/, debug profile; built with cargo when missing)
//   KALAM_CLIENT_DIR            the built @kalam-wasm/client (default: dist/client)
//   KALAMDB_URL                 a running server to share (scripts/test.sh exports it)
//   KALAMDB_TEST_ROOT_PASSWORD  its root password (default: kalam-test-root)
//   KALAM_E2E_OWN_SERVER=1      sharedTestServer() starts a private server even with KALAMDB_URL
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const rootPassword = process.env.KALAMDB_TEST_ROOT_PASSWORD ?? 'kalam-test-root';
export const clientDir = resolve(process.env.KALAM_CLIENT_DIR ?? join(root, 'dist', 'client'));

function binary() {
  if (process.env.KALAMDB_TESTSERVER_BIN) {
    if (!existsSync(process.env.KALAMDB_TESTSERVER_BIN)) throw new Error(`KALAMDB_TESTSERVER_BIN=${process.env.KALAMDB_TESTSERVER_BIN} does not exist`);
    return process.env.KALAMDB_TESTSERVER_BIN;
  }
  const bin = join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'kalam-testserver');
  if (!existsSync(bin)) execFileSync('cargo', ['build', '-p', 'kalam-testserver'], { cwd: root, stdio: 'inherit' });
  return bin;
}

/**
 * A private kalam-testserver (its own data, limits and timeouts), stopped by `stop()` (alias
 * `close()`) or when this process exits. `args`: extra CLI flags, e.g.
 * ['--topic-visibility-timeout-secs', '2']; `password`: the root password, or null to start
 * it unconfigured (setup required).
 */
export async function startTestServer(args = [], { password = rootPassword } = {}) {
  const env = { ...process.env };
  delete env.KALAMDB_ROOT_PASSWORD;
  if (password !== null) env.KALAMDB_ROOT_PASSWORD = password;
  const child = spawn(binary(), ['--listen', '127.0.0.1:0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`test server did not start in 30 s:\n${output}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const m = /kalam-testserver listening on (http:\S+)/.exec(output);
      if (m) { clearTimeout(timer); resolveUrl(m[1].replace(/\/+$/, '')); }
    });
    // Drained so a chatty server never blocks on a full pipe; kept for the start-up error.
    child.stderr.on('data', (chunk) => { if (output.length < 64_000) output += chunk; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`test server exited (${code}):\n${output}`)); });
  });
  // A test that forgets stop() must not keep node alive: the child and its pipes are
  // unreferenced, and the server is killed when this process exits.
  const killAtExit = () => child.kill('SIGTERM');
  process.once('exit', killAtExit);
  child.unref();
  child.stdout.unref();
  child.stderr.unref();
  const stop = async () => {
    process.removeListener('exit', killAtExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    child.kill('SIGTERM');
    await exited;
  };
  return { url, rootPassword: password, stop, close: stop };
}

let shared;

/**
 * The server a test file uses unless it needs its own settings: KALAMDB_URL when set
 * (unless KALAM_E2E_OWN_SERVER=1; its `stop()` does nothing), else one private server per
 * process, started on first use (`stop()` ends it).
 */
export async function sharedTestServer() {
  if (process.env.KALAMDB_URL && process.env.KALAM_E2E_OWN_SERVER !== '1') {
    const noop = async () => {};
    return { url: process.env.KALAMDB_URL.replace(/\/+$/, ''), rootPassword, stop: noop, close: noop };
  }
  shared ??= startTestServer();
  return shared;
}

/** Logs in with plain fetch (set-up must not depend on the code under test); the access token. */
export async function login(url, user, password) {
  const res = await fetch(`${url}/v1/api/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`login ${user}: HTTP ${res.status} ${text}`);
  return JSON.parse(text).access_token;
}

/** Runs SQL with plain fetch; throws on an HTTP or envelope error. The parsed envelope. */
export async function sql(url, token, text, params) {
  const res = await fetch(`${url}/v1/api/sql`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(params ? { sql: text, params } : { sql: text }),
  });
  const raw = await res.text();
  let body;
  try { body = JSON.parse(raw); } catch { body = undefined; }
  if (!res.ok || body?.status !== 'success') throw new Error(`SQL failed (HTTP ${res.status}): ${text}\n${raw}`);
  return body;
}

/** Injects a test-server fault (`POST /v1/api/test/faults`) as root. */
export async function fault(url, rootToken, action) {
  const res = await fetch(`${url}/v1/api/test/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${rootToken}` },
    body: JSON.stringify(action),
  });
  if (!res.ok) throw new Error(`fault ${JSON.stringify(action)}: HTTP ${res.status} ${await res.text()}`);
}

/**
 * Logs in as root (`password`: the server's root password) and returns `sql(text, params)`,
 * with `.token` and `.fault(action)`.
 */
export async function rootSql(url, password = rootPassword) {
  const token = await login(url, 'root', password);
  const run = (text, params) => sql(url, token, text, params);
  run.token = token;
  run.fault = (action) => fault(url, token, action);
  return run;
}
