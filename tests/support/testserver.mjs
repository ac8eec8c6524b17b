// Starts a private kalam-testserver for one test file (its own data, limits and timeouts),
// from the binary scripts/test.sh builds; stops it when asked.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const rootPassword = process.env.KALAMDB_TEST_ROOT_PASSWORD ?? 'kalam-test-root';

function binary() {
  const candidates = [process.env.KALAMDB_TESTSERVER_BIN, join(root, 'target', 'debug', 'kalam-testserver')].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`kalam-testserver not built (tried ${candidates.join(', ')}); run: cargo build -p kalam-testserver`);
  return found;
}

/** `args`: extra CLI flags, e.g. ['--topic-visibility-timeout-secs', '2']. */
export async function startTestServer(args = []) {
  const child = spawn(binary(), ['--listen', '127.0.0.1:0', ...args], {
    env: { ...process.env, KALAMDB_ROOT_PASSWORD: rootPassword },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`test server did not start:\n${output}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const m = /kalam-testserver listening on (http:\S+)/.exec(output);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    });
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`test server exited (${code}):\n${output}`)); });
  });
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Logs in as root and returns a function that runs SQL (throws on error envelopes). */
export async function rootSql(url) {
  const login = await fetch(`${url}/v1/api/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'root', password: rootPassword }),
  });
  if (!login.ok) throw new Error(`root login failed: ${login.status} ${await login.text()}`);
  const { access_token: token } = await login.json();
  const sql = async (text, params) => {
    const res = await fetch(`${url}/v1/api/sql`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(params ? { sql: text, params } : { sql: text }),
    });
    const body = await res.json();
    if (body.status !== 'success') throw new Error(`${text}: ${JSON.stringify(body.error)}`);
    return body;
  };
  sql.token = token;
  sql.fault = async (action) => {
    const res = await fetch(`${url}/v1/api/test/faults`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(action),
    });
    if (!res.ok) throw new Error(`fault ${JSON.stringify(action)} failed: ${res.status} ${await res.text()}`);
  };
  return sql;
}
