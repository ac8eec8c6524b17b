// Live ORDER BY … LIMIT … OFFSET, applied by the Rust materializer (the server refuses them in
// live SQL): after mixed writes the live window equals a fresh SELECT with the same ORDER BY and
// LIMIT (the test server returns those in the right order; the real one does not, PROTOCOL.md
// §12.5). Run: node --test tests/e2e/live-order.test.mjs (on the built dist/client).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { testServer, freshFixture, sql, select, until, login, fault } from './support/server.mjs';
import { clientDist } from './support/browser.mjs';

let server;
let pkg;

before(async () => {
  server = await testServer();
  await import(pathToFileURL(join(clientDist, 'node.js')).href);
  pkg = {
    ...(await import(pathToFileURL(join(clientDist, 'live.js')).href)),
    ...(await import(pathToFileURL(join(clientDist, 'errors.js')).href)),
  };
});

after(async () => {
  await server?.stop();
});

/** xorshift: the same writes every run. */
function rng(seed) {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s % n;
  };
}

test('ORDER BY … LIMIT … OFFSET live rows equal a fresh SELECT after mixed writes (window deltas, NULLs, BIGINT beyond 2^53, DECIMAL)', async () => {
  const fx = await freshFixture(server, { columns: 'id BIGINT PRIMARY KEY, title TEXT, amount DECIMAL(10,2), big BIGINT' });
  const r = rng(16);
  const amounts = ['10.5', '9.75', '-0.5', '0', '100', '-12.25', '9.7', 'NULL'];
  const bigs = ['9007199254740993', '9007199254740992', '-9007199254740993', '7', 'NULL'];
  const values = [];
  for (let id = 1; id <= 200; id++) {
    const [a, b] = [amounts[r(amounts.length)], bigs[r(bigs.length)]];
    values.push(`(${id}, 't${id}', ${a}, ${b})`);
  }
  await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, amount, big) VALUES ${values.join(', ')}`);

  const order = 'ORDER BY amount DESC, big NULLS FIRST, id LIMIT 12 OFFSET 3';
  const where = 'WHERE id > 5';
  const manager = new pkg.LiveManager({ url: fx.url, WebSocket, getToken: async () => login(fx.url, fx.user, fx.password) });
  let rows = [];
  let mirror = []; // the previous window, transformed by each change: must equal `rows`
  const problems = [];
  let changes = 0;
  const stop = await manager.live(`SELECT * FROM ${fx.table} ${where} ${order}`, (next, change) => {
    const ids = next.map((row) => row.id.asString());
    if (change.initial) {
      mirror = ids.slice();
    } else {
      changes += 1;
      const removed = new Set(change.removed);
      const kept = mirror.filter((k) => !removed.has(JSON.stringify(k)));
      if (kept.length !== mirror.length - change.removed.length) problems.push(`removed a key not shown: ${change.removed}`);
      const inserted = change.inserted.map((row) => row.id.asString());
      for (const k of inserted) if (kept.includes(k)) problems.push(`inserted ${k} already shown`);
      const set = new Set([...kept, ...inserted]);
      if (set.size !== ids.length || !ids.every((k) => set.has(k))) problems.push(`delta does not make the window: ${mirror} -> ${ids}`);
      mirror = ids.slice();
    }
    rows = next;
  });
  const fresh = async () => (await select(fx.url, fx.token, `SELECT id FROM ${fx.table} ${where} ${order}`)).map((x) => String(x.id));
  const live = () => JSON.stringify(rows.map((row) => row.id.asString()));

  let want = JSON.stringify(await fresh());
  await until('initial window', () => live() === want);
  assert.equal(rows.length, 12);

  let next = 1000;
  for (let step = 0; step < 60; step++) {
    // Half way: the socket drops; writes landing while away reach the window through the resync.
    if (step === 30) await fault(fx.url, fx.rootToken, { action: 'drop_sockets' });
    const op = r(10);
    const id = 1 + r(210);
    if (op < 3) {
      await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, amount, big) VALUES (${next++}, 'new', ${amounts[r(amounts.length)]}, ${bigs[r(bigs.length)]})`);
    } else if (op < 6) {
      await sql(fx.url, fx.token, `UPDATE ${fx.table} SET amount = ${amounts[r(amounts.length)]} WHERE id = ${id}`);
    } else if (op < 7) {
      await sql(fx.url, fx.token, `UPDATE ${fx.table} SET big = ${bigs[r(bigs.length)]}, title = 'moved' WHERE id = ${id}`);
    } else if (op < 8) {
      await sql(fx.url, fx.token, `UPDATE ${fx.table} SET title = 'same place ${step}' WHERE id = ${id}`);
    } else {
      await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = ${id}`);
    }
  }
  want = JSON.stringify(await fresh());
  await until(`window equals a fresh SELECT ${want}`, () => live() === want, 20_000);
  assert.deepEqual(problems, []);
  assert.ok(changes > 0);
  // The rows are the window in order, with their values: the sort columns as exact strings.
  const shown = rows.map((row) => [row.id.asString(), row.amount.isNull() ? null : row.amount.asDecimal()]);
  const byServer = (await select(fx.url, fx.token, `SELECT id, amount FROM ${fx.table} ${where} ${order}`)).map((x) => [String(x.id), x.amount === null ? null : String(x.amount)]);
  assert.deepEqual(shown.map(([, a]) => a === null), byServer.map(([, a]) => a === null));
  // What cannot be ordered stays refused, typed.
  await assert.rejects(manager.live(`SELECT * FROM ${fx.table} ORDER BY lower(title)`, () => {}), (e) => e.code === 'INVALID_ARGUMENT' && /function/.test(e.message));
  await assert.rejects(manager.live(`SELECT * FROM ${fx.table} LIMIT 3`, () => {}), (e) => e.code === 'INVALID_ARGUMENT');
  await stop();
  await manager.shutdown();
});

test('ORDER BY a DOUBLE column: the live window equals a fresh SELECT (exponents, 17-digit and subnormal values)', async () => {
  const fx = await freshFixture(server, { columns: 'id BIGINT PRIMARY KEY, score DOUBLE' });
  const r = rng(7);
  // Shortest round-trip texts as the server writes them; no -0 (SQLite, under the test
  // server, ranks it equal to 0; the window, in IEEE total order like arrow's float sort,
  // below it).
  const scores = ['1e-7', '-1e-7', '0.1', '0.3', '0.30000000000000004', '1.5e300', '-2.5', '123.456', '1e21', '2.2250738585072014e-308', '5e-324', '0', '-1.7976931348623157e308', 'NULL'];
  const values = [];
  for (let id = 1; id <= 30; id++) values.push(`(${id}, ${scores[r(scores.length)]})`);
  await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, score) VALUES ${values.join(', ')}`);
  const order = 'ORDER BY score DESC, id LIMIT 16 OFFSET 2';
  const manager = new pkg.LiveManager({ url: fx.url, WebSocket, getToken: async () => login(fx.url, fx.user, fx.password) });
  let rows = [];
  const stop = await manager.live(`SELECT * FROM ${fx.table} ${order}`, (next) => { rows = next; });
  const fresh = async () => JSON.stringify((await select(fx.url, fx.token, `SELECT id FROM ${fx.table} ${order}`)).map((x) => String(x.id)));
  const live = () => JSON.stringify(rows.map((row) => row.id.asString()));
  let want = await fresh();
  await until('initial window', () => live() === want);
  let next = 1000;
  for (let step = 0; step < 30; step++) {
    const op = r(4);
    const id = 1 + r(32);
    if (op === 0) await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, score) VALUES (${next++}, ${scores[r(scores.length)]})`);
    else if (op < 3) await sql(fx.url, fx.token, `UPDATE ${fx.table} SET score = ${scores[r(scores.length)]} WHERE id = ${id}`);
    else await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = ${id}`);
  }
  want = await fresh();
  await until(`window equals a fresh SELECT ${want}`, () => live() === want, 20_000);
  // The window spans many values, so it checks their order (not only ties by id).
  const distinct = new Set(rows.map((row) => String(row.score.asFloat())));
  assert.ok(distinct.size >= 6, `${[...distinct]}`);
  await stop();
  await manager.shutdown();
});
