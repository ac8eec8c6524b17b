// The KalamDB server of the live e2e tests and benchmarks (see tests/support/testserver.mjs
// for how it is found) and fixtures on it: a fresh user with a table, bulk inserts, paged
// SELECTs, polling. Everything uses plain fetch, never the code under test.
import { login, sharedTestServer, sql } from '../../support/testserver.mjs';

export { root, login, sql, fault } from '../../support/testserver.mjs';

/**
 * `{ url, rootPassword, stop() }`: the shared server (started once per process).
 * ⚠ The live tests inject faults (drop_sockets, restart, expire_tokens, set_limits) that hit
 * every client of that server: run them alone (`--test-concurrency=1`, not beside other test
 * files on the same KALAMDB_URL), or set KALAM_E2E_OWN_SERVER=1 to get a private server.
 */
export function testServer() {
  return sharedTestServer();
}

/** A SELECT as `{column: value}` objects. */
export async function select(url, token, text) {
  const body = await sql(url, token, text);
  const r = body.results[0];
  const names = r.schema.map((f) => f.name);
  return r.rows.map((row) => Object.fromEntries(row.map((v, i) => [names[i], v])));
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
