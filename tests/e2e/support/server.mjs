// The KalamDB server for the e2e tests: KALAMDB_URL (+ KALAMDB_TEST_ROOT_PASSWORD) when set
// (scripts/test.sh exports both), else a kalam-testserver started here and stopped at exit.
// Plus small HTTP helpers (login, SQL, faults) that use plain fetch.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DEFAULT_PASSWORD = 'kalam-test-root';

let started;

/**
 * `{ url, rootPassword, stop() }`: the shared server (started once per process).
 * ⚠ The live tests inject faults (drop_sockets, restart, expire_tokens, set_limits) that hit
 * every client of that server: run them alone (`--test-concurrency=1`, not beside other test
 * files on the same KALAMDB_URL), or set KALAM_E2E_OWN_SERVER=1 to get a private server.
 */
export async function testServer() {
  if (process.env.KALAMDB_URL && process.env.KALAM_E2E_OWN_SERVER !== '1') {
    return { url: process.env.KALAMDB_URL.replace(/\/+$/, ''), rootPassword: process.env.KALAMDB_TEST_ROOT_PASSWORD ?? process.env.KALAMDB_ROOT_PASSWORD ?? DEFAULT_PASSWORD, stop: async () => {} };
  }
  started ??= startServer();
  return started;
}

function serverBinary() {
  const candidates = [
    process.env.KALAM_TESTSERVER_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug', 'kalam-testserver'),
    join(root, 'target', 'debug', 'kalam-testserver'),
    join(root, 'target', 'live-dev', 'debug', 'kalam-testserver'),
  ].filter(Boolean);
  const bin = candidates.find((p) => existsSync(p));
  if (!bin) throw new Error(`kalam-testserver not built (cargo build -p kalam-testserver); looked in ${candidates.join(', ')}`);
  return bin;
}

async function startServer() {
  const rootPassword = process.env.KALAMDB_ROOT_PASSWORD ?? DEFAULT_PASSWORD;
  const child = spawn(serverBinary(), ['--listen', '127.0.0.1:0'], {
    env: { ...process.env, KALAMDB_ROOT_PASSWORD: rootPassword },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('kalam-testserver did not start in 30 s')), 30_000);
    child.once('exit', (code) => fail(new Error(`kalam-testserver exited (${code})`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      const m = /listening on (http:\S+)/.exec(line);
      m ? ok(m[1].replace(/\/+$/, '')) : fail(new Error(`unexpected first line: ${line}`));
    });
  });
  lines.on('line', () => {}); // keep draining stdout
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((ok) => child.once('exit', ok));
    }
  };
  process.once('exit', () => child.kill('SIGTERM'));
  child.unref();
  return { url, rootPassword, stop };
}

export async function login(url, user, password) {
  const res = await fetch(`${url}/v1/api/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`login ${user}: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** Runs SQL; throws on an error envelope. Returns the parsed envelope. */
export async function sql(url, token, text, params) {
  const res = await fetch(`${url}/v1/api/sql`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(params ? { sql: text, params } : { sql: text }),
  });
  const body = await res.json();
  if (!res.ok || body.status !== 'success') throw new Error(`SQL failed (${res.status}): ${text}\n${JSON.stringify(body)}`);
  return body;
}

/** A SELECT as `{column: value}` objects. */
export async function select(url, token, text) {
  const body = await sql(url, token, text);
  const r = body.results[0];
  const names = r.schema.map((f) => f.name);
  return r.rows.map((row) => Object.fromEntries(row.map((v, i) => [names[i], v])));
}

export async function fault(url, rootToken, body) {
  const res = await fetch(`${url}/v1/api/test/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${rootToken}` }, body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`fault ${JSON.stringify(body)}: ${res.status} ${await res.text()}`);
}

let counter = 0;

/**
 * A fresh user with a fresh namespace and USER table `ns.items (id BIGINT PK, title TEXT, n INT)`:
 * `{ url, rootToken, user, password, token, ns, table }`.
 */
export async function freshFixture(server, { columns = 'id BIGINT PRIMARY KEY, title TEXT, n INT' } = {}) {
  const { url, rootPassword } = server;
  const rootToken = await login(url, 'root', rootPassword);
  const tag = `${Date.now().toString(36)}${(counter++).toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const user = `lu_${tag}`;
  const password = `Secret-${tag}-123!`;
  const ns = `lns_${tag}`;
  await sql(url, rootToken, `CREATE USER '${user}' WITH PASSWORD '${password}' ROLE user`);
  await sql(url, rootToken, `CREATE NAMESPACE IF NOT EXISTS ${ns}`);
  await sql(url, rootToken, `CREATE TABLE ${ns}.items (${columns}) WITH (TYPE = 'USER')`);
  const token = await login(url, user, password);
  return { url, rootToken, user, password, token, ns, table: `${ns}.items` };
}

/** Inserts rows `{id, title, n}` in multi-row statements. */
export async function insertRows(fx, from, count, chunk = 250) {
  for (let start = from; start < from + count; start += chunk) {
    const end = Math.min(from + count, start + chunk);
    const values = [];
    for (let id = start; id < end; id++) values.push(`(${id}, 'row ${id}', ${id % 97})`);
    await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES ${values.join(', ')}`);
  }
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function until(what, fn, timeoutMs = 20_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Every row of `fx.table` ordered by id (paged: the server caps a SELECT at 1000 rows). */
export async function selectAll(fx, columns = 'id, title, n') {
  const out = [];
  let last = null;
  for (;;) {
    const where = last === null ? '' : `WHERE id > ${last}`;
    const page = await select(fx.url, fx.token, `SELECT ${columns} FROM ${fx.table} ${where} ORDER BY id LIMIT 1000`);
    out.push(...page);
    if (page.length < 1000) return out;
    last = page.at(-1).id;
  }
}
