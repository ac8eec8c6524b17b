// A server row cap below the batch size (issue 15): kalam-testserver started with
// `--max-query-limit 100` cuts every query at 100 rows and a snapshot batch too, with
// `has_more: false` (PROTOCOL.md §9.3). live() with the package's defaults (batch size 999)
// must still deliver every row. In Node (createClient + `ws`), on a Chromium page and in a
// dedicated worker. Run: KALAM_E2E_OWN_SERVER=1 node --test tests/e2e/live-cap.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { freshFixture, insertRows, select, sql, until } from './support/server.mjs';
import { openBrowser, clientDist } from './support/browser.mjs';
import { startTestServer } from '../support/testserver.mjs';

const CAP = 100;
const ROWS = 250;

let server;
let browser;
let pkg;

before(async () => {
  server = await startTestServer(['--max-query-limit', String(CAP)]);
  await import(pathToFileURL(join(clientDist, 'node.js')).href);
  pkg = await import(pathToFileURL(join(clientDist, 'index.js')).href);
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Every row of `fx.table` by id, in pages the cap cannot cut. */
async function selectAll(fx) {
  const out = [];
  for (;;) {
    const where = out.length ? `WHERE id > ${out.at(-1).id}` : '';
    const page = await select(fx.url, fx.token, `SELECT id, title, n FROM ${fx.table} ${where} ORDER BY id LIMIT ${CAP}`);
    out.push(...page);
    if (page.length < CAP) return out;
  }
}

/** `[id, title, n]` of every row, sorted by id, as JSON (what "equal to a fresh SELECT" means). */
const shapeRows = (rows) => JSON.stringify(rows.map((r) => [String(r.id), r.title, r.n]).sort((a, b) => Number(a[0]) - Number(b[0])));
const nodeShape = (rows) => shapeRows(rows.map((r) => ({ id: r.id.asString(), title: r.title.asString(), n: r.n.asInt() })));

/** One raw subscribe on a raw socket: the first snapshot batch's row count and has_more. */
async function rawFirstBatch(fx, batchSize) {
  const ws = new WebSocket(`${fx.url.replace(/^http/, 'ws')}/v1/ws?compress=false`);
  try {
    return await new Promise((ok, fail) => {
      ws.on('error', fail);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'authenticate', method: 'jwt', token: fx.token, protocol: { serialization: 'json', compression: 'gzip' } })));
      ws.on('message', (data) => {
        const m = JSON.parse(String(data));
        if (m.type === 'auth_success') ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: 'raw', sql: `SELECT * FROM ${fx.table}`, options: { batch_size: batchSize } } }));
        else if (m.type === 'initial_data_batch') ok({ rows: m.rows.length, hasMore: m.batch_control.has_more });
        else if (m.type === 'error') fail(new Error(JSON.stringify(m)));
      });
    });
  } finally {
    ws.close();
  }
}

describe(`a server capped at ${CAP} rows per query`, () => {
  test('the test server cuts a first batch at the cap with has_more: false, as PROTOCOL.md §9.3 says', async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, ROWS);
    assert.equal((await select(fx.url, fx.token, `SELECT id FROM ${fx.table} LIMIT 1000`)).length, CAP, 'a SELECT is cut');
    assert.deepEqual(await rawFirstBatch(fx, 999), { rows: CAP, hasMore: false }, 'batch_size 999: cut, marked complete');
    assert.deepEqual(await rawFirstBatch(fx, CAP), { rows: CAP, hasMore: false }, 'a batch equal to the cap says has_more: false too');
    assert.deepEqual(await rawFirstBatch(fx, CAP - 1), { rows: CAP - 1, hasMore: true });
    assert.equal((await selectAll(fx)).length, ROWS);
  });

  test(`Node: live() with the defaults delivers all ${ROWS} rows in its first callback, equal to a fresh SELECT; so does a second live(), and a client with verify off`, async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, ROWS);
    const want = shapeRows(await selectAll(fx));
    const clients = [{}, { verify: false }].map((options) => pkg.createClient({
      url: fx.url, authProvider: async () => pkg.Auth.basic(fx.user, fx.password), WebSocket, ...options,
    }));
    const recs = [];
    const stops = [];
    try {
      for (const client of [clients[0], clients[0], clients[1]]) {
        const rec = { first: null, calls: 0, rows: [], errors: [] };
        recs.push(rec);
        stops.push(await client.live(`SELECT * FROM ${fx.table}`, (rows, change) => {
          rec.calls += 1;
          rec.rows = rows;
          if (rec.first === null) rec.first = { initial: change.initial, shape: nodeShape(rows) };
        }, { onError: (e) => rec.errors.push(e.code) }));
        await until('the first callback', () => rec.first, 20_000);
        assert.equal(rec.first.initial, true);
        assert.equal(JSON.parse(rec.first.shape).length, ROWS, 'the first callback holds every row');
        assert.ok(rec.first.shape === want, 'equal to a fresh SELECT');
        assert.equal(rec.calls, 1);
        assert.deepEqual(rec.errors, []);
      }
      // Still live after the reloads.
      await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (${ROWS + 1}, 'after', 1)`);
      const after = shapeRows(await selectAll(fx));
      for (const rec of recs) await until('the insert', () => nodeShape(rec.rows) === after, 10_000);
    } finally {
      for (const stop of stops) await stop();
      for (const client of clients) await client.shutdown();
    }
  });

  for (const where of ['page', 'worker']) test(`Chromium ${where}: live() with the defaults delivers all ${ROWS} rows in its first callback, equal to a fresh SELECT`, async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, ROWS);
    const want = shapeRows(await selectAll(fx));
    const h = await browser.page(where);
    try {
      await h.call('init', { url: fx.url, user: fx.user, password: fx.password, options: { client: true } });
      await h.call('live', 'all', `SELECT * FROM ${fx.table}`);
      const s = await until('the first callback', async () => {
        const st = await h.call('stats', 'all', { rows: true });
        return st.initialCalls === 1 && st;
      }, 20_000);
      assert.equal(s.calls, 1, 'one callback, the complete snapshot');
      assert.equal(s.emptyBeforeInitial, 0);
      assert.equal(s.rowCount, ROWS, 'every row');
      assert.ok(shapeRows(s.rows) === want, 'equal to a fresh SELECT');
      assert.deepEqual(s.errors, []);
    } finally {
      await h.close();
    }
  });
});
