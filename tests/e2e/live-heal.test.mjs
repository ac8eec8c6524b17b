// Live rows that are never wrong (issue 13, core half): the built @kalam-wasm/client against
// kalam-testserver with its bounded 128-frame notification queue (on by default, as on the
// real server), through a TCP fault proxy for network faults. In Node (createClient + `ws`),
// on a Chromium page and in a dedicated worker. Run: node --test tests/e2e/live-heal.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { testServer, freshFixture, insertRows, selectAll, sql, fault, until, sleep } from './support/server.mjs';
import { openBrowser, clientDist } from './support/browser.mjs';
import { faultProxy } from '../support/fault-proxy.mjs';

let server;
let browser;
let pkg;

before(async () => {
  server = await testServer();
  await import(pathToFileURL(join(clientDist, 'node.js')).href);
  pkg = await import(pathToFileURL(join(clientDist, 'index.js')).href);
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A Node app client on `url` (default: the fixture's server) with one live() subscription. */
async function nodeClient(fx, { url = fx.url, options = {}, liveOptions = {}, sqlText } = {}) {
  const states = [];
  const connErrors = [];
  const client = pkg.createClient({
    url,
    authProvider: async () => pkg.Auth.basic(fx.user, fx.password),
    WebSocket,
    reconnect: { initialDelayMs: 300, maxDelayMs: 2000 },
    onConnectionStateChange: (s) => states.push({ state: s.state, at: Date.now() }),
    onConnectionError: (e) => connErrors.push(e),
    ...options,
  });
  const rec = { rows: [], calls: 0, initial: 0, resyncs: 0, inserted: 0, updated: 0, removed: 0, errors: [], dups: 0 };
  const stop = await client.live(sqlText ?? `SELECT * FROM ${fx.table}`, (rows, change) => {
    rec.rows = rows;
    rec.calls += 1;
    if (change.initial) rec.initial += 1;
    if (change.resync) rec.resyncs += 1;
    rec.inserted += change.inserted.length;
    rec.updated += change.updated.length;
    rec.removed += change.removed.length;
    if (new Set(rows.map((r) => r.id.asString())).size !== rows.length) rec.dups += 1;
  }, { ...liveOptions, onError: (e) => rec.errors.push(e) });
  return { client, rec, states, connErrors, stop };
}

/** `[id, title, n]` of every row, sorted by id, as JSON (what "equal to a fresh SELECT" means). */
const shapeRows = (rows) => JSON.stringify(rows.map((r) => [String(r.id), r.title, r.n]).sort((a, b) => Number(a[0]) - Number(b[0])));
const nodeShape = (rows) => shapeRows(rows.map((r) => ({ id: r.id.asString(), title: r.title.asString(), n: r.n.asInt() })));

/** Polls until `current()` equals a fresh SELECT; returns the ms it took. */
async function converge(fx, current, what, timeoutMs) {
  const want = shapeRows(await selectAll(fx));
  const t0 = Date.now();
  let last;
  try {
    await until(what, async () => (last = await current()) === want, timeoutMs, 100);
  } catch (e) {
    const have = JSON.parse(last ?? '[]');
    const wanted = JSON.parse(want);
    const wrong = wanted.filter((w, i) => JSON.stringify(w) !== JSON.stringify(have[i])).length;
    throw new Error(`${e.message}: ${wrong} of ${wanted.length} rows differ (have ${have.length})`);
  }
  return Date.now() - t0;
}

describe('bulk UPDATE through the bounded queue', () => {
  test('Node: one UPDATE of 2,000 rows; rows equal a fresh SELECT within 15 s, healed in one resync', async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, 2000);
    const c = await nodeClient(fx);
    try {
      await until('snapshot', () => c.rec.initial === 1);
      assert.equal(c.rec.rows.length, 2000);
      const t0 = Date.now();
      await sql(fx.url, fx.token, `UPDATE ${fx.table} SET n = n + 1 WHERE id > 0`);
      const ms = await converge(fx, () => nodeShape(c.rec.rows), 'rows equal SELECT after the bulk UPDATE', 15_000);
      console.log(`# node: 2,000-row UPDATE converged ${Date.now() - t0} ms after the write (${ms} ms of polling), ${c.rec.resyncs} resync(s)`);
      assert.ok(c.rec.resyncs >= 1, 'healed by a resync (the queue dropped changes)');
      assert.equal(c.rec.removed, 0, 'no row removed');
      assert.equal(c.rec.inserted, 2000, 'no row re-inserted (only the snapshot)');
      assert.equal(c.rec.dups, 0);
      assert.deepEqual(c.rec.errors, []);
    } finally {
      await c.stop();
      await c.client.shutdown();
    }
  });

  for (const where of ['page', 'worker']) test(`Chromium ${where}: the same UPDATE, rows equal a fresh SELECT within 15 s`, async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, 2000);
    const h = await browser.page(where);
    try {
      await h.call('init', { url: fx.url, user: fx.user, password: fx.password, options: { client: true } });
      await h.call('live', 'all', `SELECT * FROM ${fx.table}`);
      await until('snapshot', async () => (await h.call('stats', 'all')).initialCalls === 1);
      const t0 = Date.now();
      await sql(fx.url, fx.token, `UPDATE ${fx.table} SET n = n + 1 WHERE id > 0`);
      await converge(fx, async () => shapeRows((await h.call('stats', 'all', { rows: true })).rows), 'page rows equal SELECT', 15_000);
      const s = await h.call('stats', 'all');
      console.log(`# ${where}: 2,000-row UPDATE converged ${Date.now() - t0} ms after the write, ${s.resyncs} resync(s)`);
      assert.ok(s.resyncs >= 1);
      assert.equal(s.removed, 0);
      assert.equal(s.dupCallbacks, 0);
      assert.deepEqual(s.errors, []);
    } finally {
      await h.close();
    }
  });
});

describe('a black-holed network path', () => {
  test('Node: idle but healthy stays connected; a black hole is noticed within 20 s and the rows recover', async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, 10);
    const proxy = await faultProxy(fx.url);
    const c = await nodeClient(fx, { url: proxy.url });
    try {
      await until('snapshot', () => c.rec.initial === 1);
      // A healthy idle socket: at least one echo round (7 s of silence) without an alarm.
      await sleep(9_000);
      assert.deepEqual(c.states.map((s) => s.state), ['connecting', 'connected'], 'no false alarm while idle');
      const holeAt = Date.now();
      proxy.blackhole(true);
      await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (99, 'during the hole', 1)`);
      await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = 1`);
      const noticed = await until('reconnecting', () => c.states.find((s) => s.at >= holeAt && s.state === 'reconnecting'), 20_000, 50);
      const detectMs = noticed.at - holeAt;
      console.log(`# node: black hole noticed after ${detectMs} ms`);
      assert.ok(detectMs <= 20_000);
      assert.ok(c.connErrors.some((e) => e.code === 'TIMEOUT'), 'a typed TIMEOUT connection error');
      proxy.blackhole(false);
      const ms = await converge(fx, () => nodeShape(c.rec.rows), 'rows equal SELECT after the hole', 30_000);
      console.log(`# node: converged ${Date.now() - holeAt} ms after the hole began (${ms} ms after it ended)`);
      assert.equal(c.states.at(-1).state, 'connected');
      assert.equal(c.rec.dups, 0);
    } finally {
      await c.stop();
      await c.client.shutdown();
      await proxy.close();
    }
  });

  for (const where of ['page', 'worker']) test(`Chromium ${where}: a black hole is noticed within 20 s and the rows recover`, async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, 10);
    const proxy = await faultProxy(fx.url);
    const h = await browser.page(where);
    try {
      await h.call('init', { url: proxy.url, user: fx.user, password: fx.password, options: { client: true } });
      await h.call('live', 'all', `SELECT * FROM ${fx.table}`);
      await until('snapshot', async () => (await h.call('stats', 'all')).initialCalls === 1);
      const holeAt = Date.now();
      proxy.blackhole(true);
      await sql(fx.url, fx.token, `UPDATE ${fx.table} SET title = 'changed in the hole' WHERE id = 3`);
      const noticed = await until('reconnecting', async () => (await h.call('info')).stateLog.find((s) => s.at >= holeAt && s.state === 'reconnecting'), 20_000, 100);
      console.log(`# ${where}: black hole noticed after ${noticed.at - holeAt} ms`);
      proxy.blackhole(false);
      await converge(fx, async () => shapeRows((await h.call('stats', 'all', { rows: true })).rows), 'page rows equal SELECT after the hole', 30_000);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});

describe('errors after the ack', () => {
  test('Node: a failed next_batch while paging is retried; a refused subscription ends loudly', async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, 1200);
    await fault(fx.url, fx.rootToken, { action: 'fail_next_batch', n: 1 });
    const c = await nodeClient(fx, { liveOptions: { batchSize: 500 } });
    try {
      await until('snapshot after the retry', () => c.rec.initial === 1, 15_000);
      assert.equal(c.rec.rows.length, 1200);
      assert.equal(c.rec.calls, 1, 'one callback for the whole snapshot');
      assert.deepEqual(c.rec.errors.map((e) => [e.code, e.fatal]), [['BATCH_FETCH_FAILED', false]]);
      // An error after the snapshot, then a permanent refusal: retried, then fatal to onError.
      const [sub] = c.client.getSubscriptions();
      await fault(fx.url, fx.rootToken, { action: 'inject_error', subscription_id: sub.id, code: 'SUBSCRIPTION_FAILED', message: 'Subscription failed: injected' });
      await until('retried', () => c.rec.errors.length === 2);
      await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (5000, 'after the retry', 1)`);
      await converge(fx, () => nodeShape(c.rec.rows), 'rows equal SELECT after the injected error', 15_000);
      await fault(fx.url, fx.rootToken, { action: 'inject_error', subscription_id: sub.id, code: 'UNAUTHORIZED', message: 'Permission denied: revoked' });
      await until('fatal', () => c.rec.errors.some((e) => e.fatal));
      assert.deepEqual(c.rec.errors.at(-1).code, 'UNAUTHORIZED');
      assert.equal(c.client.getSubscriptions().length, 0, 'the subscription ended');
    } finally {
      await c.stop();
      await c.client.shutdown();
    }
  });

  test('Node: a resubscribe refused after a reconnect (subscription limit) is retried with backoff', async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, 20);
    const c = await nodeClient(fx);
    try {
      await until('snapshot', () => c.rec.initial === 1);
      // As if the server still counted the dropped connection's subscriptions.
      await fault(fx.url, fx.rootToken, { action: 'set_limits', max_subscriptions_per_user: 0 });
      await fault(fx.url, fx.rootToken, { action: 'drop_sockets' });
      await until('refused', () => c.rec.errors.some((e) => e.code === 'SUBSCRIPTION_LIMIT_EXCEEDED'), 10_000);
      assert.ok(c.rec.errors.every((e) => !e.fatal), 'not fatal: retried');
      await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (777, 'while refused', 7)`);
      await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = 2`);
      await fault(fx.url, fx.rootToken, { action: 'set_limits', max_subscriptions_per_user: 10 });
      await converge(fx, () => nodeShape(c.rec.rows), 'rows equal SELECT after the retry', 15_000);
      assert.equal(c.rec.dups, 0);
    } finally {
      await fault(fx.url, fx.rootToken, { action: 'set_limits', max_subscriptions_per_user: 10 });
      await c.stop();
      await c.client.shutdown();
    }
  });

  for (const where of ['page', 'worker']) test(`Chromium ${where}: a next_batch that is never answered is retried after the snapshot deadline`, async () => {
    const fx = await freshFixture(server);
    await insertRows(fx, 1, 700);
    const h = await browser.page(where);
    try {
      await h.call('init', { url: fx.url, user: fx.user, password: fx.password, options: { client: true, snapshotTimeoutMs: 1500 } });
      await fault(fx.url, fx.rootToken, { action: 'fail_next_batch', n: 1, mode: 'ignore' });
      await h.call('live', 'all', `SELECT * FROM ${fx.table}`, { batchSize: 300 });
      const s = await until('snapshot after the retry', async () => {
        const st = await h.call('stats', 'all');
        return st.initialCalls === 1 ? st : null;
      }, 15_000);
      assert.equal(s.rowCount, 700);
      assert.deepEqual(s.errors.map((e) => [e.code, e.fatal]), [['TIMEOUT', false]]);
    } finally {
      await h.close();
    }
  });
});
