// Live queries on Node (18/20 have no global WebSocket): the built package with the npm `ws`
// package passed as the WebSocket option. Run: node --test tests/e2e/live-node.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { testServer, freshFixture, insertRows, selectAll, sql, fault, until, login } from './support/server.mjs';
import { clientDist } from './support/browser.mjs';

let server;
let pkg;

before(async () => {
  server = await testServer();
  await import(pathToFileURL(join(clientDist, 'node.js')).href); // the Node entry: reads the .wasm from disk
  pkg = {
    ...(await import(pathToFileURL(join(clientDist, 'live.js')).href)),
    ...(await import(pathToFileURL(join(clientDist, 'errors.js')).href)),
  };
});

after(async () => {
  await server?.stop();
});

test('Node + ws: snapshot, live changes, reconnect after a drop, clean shutdown', async () => {
  const fx = await freshFixture(server);
  await insertRows(fx, 1, 700);
  const forced = [];
  const manager = new pkg.LiveManager({
    url: fx.url,
    WebSocket,
    reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
    getToken: async (force) => {
      forced.push(force);
      return login(fx.url, fx.user, fx.password);
    },
  });
  let rows = [];
  let calls = 0;
  let initial = 0;
  const stop = await manager.live(`SELECT * FROM ${fx.table}`, (r, change) => {
    rows = r;
    calls += 1;
    if (change.initial) initial += 1;
  });
  await until('snapshot', () => initial === 1);
  assert.equal(rows.length, 700);
  assert.equal(calls, 1);
  assert.equal(rows[0].id.asBigInt(), 1n);
  assert.equal(rows[0].title.asString(), 'row 1');
  assert.ok(manager.isConnected());
  await fault(fx.url, fx.rootToken, { action: 'drop_sockets' });
  await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (5000, 'after drop', 1)`);
  await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = 1`);
  const want = JSON.stringify((await selectAll(fx)).map((r) => String(r.id)).sort());
  await until('rows equal SELECT after the drop', () => JSON.stringify(rows.map((r) => r.id.asString()).sort()) === want, 20_000);
  assert.equal(new Set(rows.map((r) => r.id.asString())).size, rows.length, 'no duplicates');
  assert.equal(manager.state.state, 'connected');
  assert.ok(forced.length >= 2, 'a token per connection attempt');
  const subs = manager.getSubscriptions();
  assert.equal(subs.length, 1);
  assert.match(subs[0].lastSeqId.toString(), /^\d+$/);
  await stop();
  await manager.shutdown();
  await assert.rejects(manager.live(`SELECT * FROM ${fx.table}`, () => {}), (e) => e instanceof pkg.KalamError && e.code === 'CLOSED');
});

test('Node 20 without a WebSocket option: a typed error that names the fix', { skip: typeof globalThis.WebSocket === 'function' ? 'this Node has a global WebSocket' : false }, async () => {
  const manager = new pkg.LiveManager({ url: server.url, getToken: async () => 'x' });
  await assert.rejects(manager.live('SELECT * FROM a.b', () => {}), (e) => e instanceof pkg.KalamError && e.code === 'INVALID_ARGUMENT' && /ws/.test(e.message));
});
