// Live queries end to end: the built @kalam-wasm/client (dist/client, or KALAM_CLIENT_DIR)
// in headless Chromium, on a page and in a dedicated worker, against kalam-testserver
// (KALAMDB_URL, or one started here). Run: node --test tests/e2e/
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testServer, freshFixture, insertRows, selectAll, sql, fault, until, sleep, login } from './support/server.mjs';
import { openBrowser } from './support/browser.mjs';

let server;
let browser;

before(async () => {
  server = await testServer();
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A fresh user/table, a page (or worker) with a LiveManager logged in as that user. */
async function setup(where, managerOptions = {}, fixtureOptions) {
  const fx = await freshFixture(server, fixtureOptions);
  const h = await browser.page(where);
  await h.call('init', { url: fx.url, user: fx.user, password: fx.password, options: managerOptions });
  return { fx, h };
}

/** Waits until the subscription's current rows equal a fresh SELECT (by id, title, n). */
async function expectRowsEqualSelect(h, name, fx, what) {
  const expected = await selectAll(fx);
  const want = new Map(expected.map((r) => [String(r.id), JSON.stringify([r.title, r.n])]));
  let last;
  try {
    await until(`${what}: rows equal SELECT (${want.size} rows)`, async () => {
      last = await h.call('stats', name, { rows: true });
      if (last.rowCount !== want.size) return false;
      return last.rows.every((r) => want.get(String(r.id)) === JSON.stringify([r.title, r.n]));
    }, 30_000, 100);
  } catch (e) {
    const have = new Set(last?.rows?.map((r) => String(r.id)));
    const missing = [...want.keys()].filter((k) => !have.has(k)).slice(0, 10);
    const extra = [...have].filter((k) => !want.has(k)).slice(0, 10);
    throw new Error(`${e.message}; have ${last?.rowCount}, missing ${missing}, extra ${extra}`);
  }
  return last;
}

for (const where of ['page', 'worker']) {
  describe(`live queries (${where})`, () => {
    test('a 2,500-row snapshot loads completely with the default batch size and with batchSize 300', async () => {
      const { fx, h } = await setup(where);
      try {
        await insertRows(fx, 1, 2500);
        await h.call('live', 'default', `SELECT * FROM ${fx.table}`);
        await h.call('live', 'b300', `SELECT * FROM ${fx.table}`, { batchSize: 300 });
        for (const name of ['default', 'b300']) {
          const s = await until(`${name} initial`, async () => {
            const st = await h.call('stats', name, { rows: true });
            return st.initialCalls === 1 ? st : null;
          });
          assert.equal(s.rowCount, 2500, `${name}: all rows`);
          assert.equal(s.calls, 1, `${name}: one callback for the whole snapshot`);
          assert.equal(s.emptyBeforeInitial, 0);
          assert.equal(s.dupCallbacks, 0);
          assert.deepEqual(s.rows.map((r) => Number(r.id)), Array.from({ length: 2500 }, (_, i) => i + 1), `${name}: snapshot order`);
          assert.equal(typeof s.rows[0].id, 'string', 'BIGINT cells are exact strings');
          assert.equal(typeof s.rows[0].n, 'number');
          assert.equal(typeof s.rows[0]._seq, 'string');
          assert.ok(s.lastCheckpoint && /^\d+$/.test(s.lastCheckpoint), 'checkpoint is an exact decimal');
        }
        const info = await h.call('info');
        assert.equal(info.sockets, 1, 'one socket for both');
        // Live changes after the snapshot.
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (9001, 'new', 1)`);
        await sql(fx.url, fx.token, `UPDATE ${fx.table} SET title = 'changed' WHERE id = 5`);
        await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = 6`);
        await expectRowsEqualSelect(h, 'default', fx, 'after changes');
        const s = await h.call('stats', 'b300', { rows: true });
        assert.equal(s.rows.at(-1).id, '9001', 'inserts append');
        assert.equal(s.rows[4].title, 'changed', 'updates stay in place');
      } finally {
        await h.close();
      }
    });

    test('liveEvents: protocol-shaped events with decoded rows, exact checkpoints, resume with from', async () => {
      const { fx, h } = await setup(where);
      try {
        await insertRows(fx, 1, 3);
        await h.call('liveEvents', 'ev', `SELECT * FROM ${fx.table}`, { batchSize: 2 });
        await until('snapshot batches', async () => (await h.call('stats', 'ev')).events.filter((e) => e.type === 'initial_data_batch').length === 2);
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (4, 'four', 4)`);
        await sql(fx.url, fx.token, `UPDATE ${fx.table} SET title = 'one' WHERE id = 1`);
        await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = 2`);
        const s = await until('three changes', async () => {
          const st = await h.call('stats', 'ev');
          return st.events.filter((e) => e.type === 'change').length === 3 ? st : null;
        });
        assert.deepEqual(s.events.map((e) => e.change_type ?? e.type), ['subscription_ack', 'initial_data_batch', 'initial_data_batch', 'insert', 'update', 'delete']);
        const [ack, b0, b1, ins, upd, del] = s.events;
        assert.equal(ack.batch.has_more, true);
        assert.equal(b0.rows, 2);
        assert.equal(b1.rows, 1);
        assert.equal(b1.batch.has_more, false);
        assert.match(b0.batch.last_seq_id, /^\d+$/, 'last_seq_id is an exact string');
        assert.deepEqual([ins.first.id, typeof ins.first.n, typeof ins.first._seq], ['4', 'number', 'string']);
        assert.equal(upd.rows, 1);
        assert.equal(upd.old, 1);
        assert.equal(del.rows, undefined);
        assert.equal(del.first._deleted, true);
        assert.match(s.lastCheckpoint, /^\d+$/);
        assert.equal(s.lastCheckpoint, del.first._seq, 'the checkpoint is the newest applied _seq');
        // A new subscription from that checkpoint gets only what came after it.
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (5, 'five', 5)`);
        await h.call('liveEvents', 'resume', `SELECT * FROM ${fx.table}`, { from: s.lastCheckpoint });
        const r = await until('resumed snapshot', async () => {
          const st = await h.call('stats', 'resume');
          return st.events.some((e) => e.type === 'initial_data_batch') ? st : null;
        });
        const batch = r.events.find((e) => e.type === 'initial_data_batch');
        assert.equal(batch.rows, 1);
        assert.equal(batch.first.id, '5');
      } finally {
        await h.close();
      }
    });

    test('the same SQL subscribed twice gets distinct ids and both callbacks fire', async () => {
      const { fx, h } = await setup(where);
      try {
        await insertRows(fx, 1, 3);
        const q = `SELECT * FROM ${fx.table} WHERE n < 50`;
        const a = await h.call('live', 'a', q);
        const b = await h.call('live', 'b', q);
        assert.notEqual(a, b);
        await until('both initial', async () => (await h.call('stats', 'a')).initialCalls === 1 && (await h.call('stats', 'b')).initialCalls === 1);
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (10, 'x', 7)`);
        await until('both see the insert', async () => (await h.call('stats', 'a')).rowCount === 4 && (await h.call('stats', 'b')).rowCount === 4);
        const [sa, sb] = [await h.call('stats', 'a'), await h.call('stats', 'b')];
        assert.equal(sa.lastChange.subscriptionId, a);
        assert.equal(sb.lastChange.subscriptionId, b);
        assert.equal(sa.checkpointSub, a);
        // Unsubscribing one leaves the other running.
        await h.call('unsubscribe', 'a');
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (11, 'y', 8)`);
        await until('b sees the second insert', async () => (await h.call('stats', 'b')).rowCount === 5);
        assert.equal((await h.call('stats', 'a')).rowCount, 4, 'a stopped');
        const info = await h.call('info');
        assert.deepEqual(info.subscriptions.map((s) => s.id), [b]);
      } finally {
        await h.close();
      }
    });

    test('every socket dropped twice during 1,000 inserts/updates/deletes: rows end equal to SELECT, no duplicates', async () => {
      const { fx, h } = await setup(where, { reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
      try {
        await insertRows(fx, 1, 200);
        await h.call('live', 'rows', `SELECT * FROM ${fx.table}`);
        await h.call('liveEvents', 'events', `SELECT * FROM ${fx.table}`);
        await until('initial', async () => (await h.call('stats', 'rows')).initialCalls === 1);
        let nextId = 1000;
        const alive = Array.from({ length: 200 }, (_, i) => i + 1);
        let rand = 42;
        const rnd = (n) => {
          rand = (rand * 1103515245 + 12345) % 2147483648;
          return rand % n;
        };
        for (let i = 0; i < 1000; i++) {
          if (i === 300 || i === 700) await fault(fx.url, fx.rootToken, { action: 'drop_sockets' });
          const op = rnd(10);
          if (op < 5 || alive.length < 10) {
            const id = nextId++;
            alive.push(id);
            await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (${id}, 'ins ${id}', ${i % 90})`);
          } else if (op < 8) {
            const id = alive[rnd(alive.length)];
            await sql(fx.url, fx.token, `UPDATE ${fx.table} SET title = 'upd ${i}', n = ${i % 90} WHERE id = ${id}`);
          } else {
            const id = alive.splice(rnd(alive.length), 1)[0];
            await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = ${id}`);
          }
        }
        const s = await expectRowsEqualSelect(h, 'rows', fx, 'after the stream');
        assert.equal(s.dupCallbacks, 0, 'no callback ever held a key twice');
        assert.equal(s.orderViolations, 0);
        assert.equal(s.emptyBeforeInitial, 0);
        assert.equal(s.errors.length, 0, JSON.stringify(s.errors));
        const info = await h.call('info');
        assert.ok(info.sockets >= 3, `reconnected twice (${info.sockets} sockets)`);
        assert.ok(info.states.filter((x) => x === 'reconnecting').length >= 2, info.states.join(','));
        assert.equal(info.state.state, 'connected');
        // The raw-events subscription resumed from its checkpoint (never from scratch).
        const ev = await h.call('stats', 'events');
        assert.equal(ev.events.filter((e) => e.type === 'initial_data_batch' && e.batch?.batch_num === 0).length >= 1, true);
        assert.ok(ev.lastCheckpoint && /^\d+$/.test(ev.lastCheckpoint));
      } finally {
        await h.close();
      }
    });

    test('token expiry mid-subscription: a fresh token is fetched and the subscription carries on', async () => {
      const { fx, h } = await setup(where);
      try {
        await insertRows(fx, 1, 5);
        await h.call('live', 'rows', `SELECT * FROM ${fx.table}`);
        await until('initial', async () => (await h.call('stats', 'rows')).initialCalls === 1);
        await sleep(1100); // tokens are second-granular: expire the current one, not the next
        await fault(fx.url, fx.rootToken, { action: 'expire_tokens' });
        fx.rootToken = await login(fx.url, 'root', server.rootPassword); // root's token expired too
        await fault(fx.url, fx.rootToken, { action: 'drop_sockets' });
        fx.token = await login(fx.url, fx.user, fx.password);
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (77, 'after expiry', 1)`);
        await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = 2`);
        await expectRowsEqualSelect(h, 'rows', fx, 'after token expiry');
        const info = await h.call('info');
        assert.ok(info.tokenCalls.includes(true), `a forced refresh happened: ${JSON.stringify(info.tokenCalls)}`);
        assert.ok(info.states.includes('needs_auth'), info.states.join(','));
        assert.equal(info.state.state, 'connected');
        const s = await h.call('stats', 'rows');
        assert.equal(s.errors.length, 0);
      } finally {
        await h.close();
      }
    });

    test('a server restart: subscriptions come back, rows deleted meanwhile do not linger', async () => {
      const { fx, h } = await setup(where, { reconnect: { initialDelayMs: 1000, maxDelayMs: 2000 } });
      try {
        await insertRows(fx, 1, 20);
        await h.call('live', 'rows', `SELECT * FROM ${fx.table}`);
        await until('initial', async () => (await h.call('stats', 'rows')).initialCalls === 1);
        await fault(fx.url, fx.rootToken, { action: 'restart' });
        await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id IN (3, 4)`);
        await sql(fx.url, fx.token, `UPDATE ${fx.table} SET title = 'during restart' WHERE id = 7`);
        await expectRowsEqualSelect(h, 'rows', fx, 'after restart');
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (500, 'after', 1)`);
        const s = await expectRowsEqualSelect(h, 'rows', fx, 'live after restart');
        assert.equal(s.dupCallbacks, 0);
        assert.equal(s.emptyBeforeInitial, 0);
        const info = await h.call('info');
        assert.ok(info.sockets >= 2);
        assert.ok(info.connects >= 2 && info.disconnects >= 1, JSON.stringify(info));
        // The close code reaches onDisconnect as a field (not parsed out of a message).
        assert.ok(info.disconnectReasons.some((r) => Number.isInteger(r.code) && typeof r.message === 'string'), JSON.stringify(info.disconnectReasons));
      } finally {
        await h.close();
      }
    });

    test('unsubscribe and disconnect succeed while offline; the rest resumes on connect()', async () => {
      const { fx, h } = await setup(where);
      try {
        await insertRows(fx, 1, 3);
        await h.call('live', 'keep', `SELECT * FROM ${fx.table}`);
        await h.call('live', 'drop', `SELECT * FROM ${fx.table}`);
        await until('initial', async () => (await h.call('stats', 'keep')).initialCalls === 1 && (await h.call('stats', 'drop')).initialCalls === 1);
        await h.call('disconnect');
        assert.equal((await h.call('info')).state.state, 'disconnected');
        await h.call('unsubscribeTwice', 'drop');
        // Changes while away arrive as ONE resync callback after connect(): deletes included.
        await sql(fx.url, fx.token, `DELETE FROM ${fx.table} WHERE id = 1`);
        await sql(fx.url, fx.token, `UPDATE ${fx.table} SET title = 'while away' WHERE id = 2`);
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (4, 'new while away', 1)`);
        const before = await h.call('stats', 'keep');
        await h.call('connect');
        const resynced = await expectRowsEqualSelect(h, 'keep', fx, 'resync after connect()');
        assert.equal(resynced.calls, before.calls + 1, 'one callback for the whole resync');
        assert.deepEqual(resynced.lastChange, { initial: false, resync: true, inserted: 1, updated: 1, removed: 1, subscriptionId: before.id });
        assert.deepEqual(resynced.rows.map((r) => r.id), ['2', '3', '4'], 'order kept: updated in place, new appended');
        await h.call('disconnect');
        assert.deepEqual((await h.call('info')).subscriptions.map((s) => s.id), [(await h.call('stats', 'keep')).id]);
        // Offline because the server refuses and drops us: unsubscribe still succeeds.
        await h.call('connect');
        await fault(fx.url, fx.rootToken, { action: 'refuse_connections', ms: 1500 });
        await fault(fx.url, fx.rootToken, { action: 'drop_sockets' });
        await until('offline', async () => !(await h.call('info')).connected);
        await h.call('live', 'late', `SELECT * FROM ${fx.table}`);
        await h.call('unsubscribe', 'late');
        await sleep(1600);
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (9, 'z', 1)`);
        await expectRowsEqualSelect(h, 'keep', fx, 'resumed');
        const drop = await h.call('stats', 'drop');
        assert.equal(drop.rowCount, 3, 'the unsubscribed one got nothing more');
        assert.equal(drop.calls, 1);
        assert.equal((await h.call('stats', 'late')).calls, 0);
      } finally {
        await h.close();
      }
    });

    test('an online event retries at once instead of waiting out the backoff', async () => {
      const { fx, h } = await setup(where, { reconnect: { initialDelayMs: 600_000, maxDelayMs: 600_000 } });
      try {
        await h.call('live', 'rows', `SELECT * FROM ${fx.table}`);
        await until('initial', async () => (await h.call('stats', 'rows')).initialCalls === 1);
        await fault(fx.url, fx.rootToken, { action: 'refuse_connections', ms: 400 });
        await fault(fx.url, fx.rootToken, { action: 'drop_sockets' });
        await until('reconnecting', async () => (await h.call('info')).state.state === 'reconnecting');
        await sleep(500);
        const waiting = (await h.call('info')).state;
        assert.equal(waiting.state, 'reconnecting', JSON.stringify(waiting));
        await h.call('dispatch', 'online');
        await until('connected again', async () => (await h.call('info')).state.state === 'connected', 5_000);
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (1, 'x', 1)`);
        await expectRowsEqualSelect(h, 'rows', fx, 'after online');
      } finally {
        await h.close();
      }
    });

    test('50 subscriptions share one socket; the server limit surfaces as a typed error', async () => {
      const { fx, h } = await setup(where);
      try {
        await insertRows(fx, 1, 10);
        await fault(fx.url, fx.rootToken, { action: 'set_limits', max_subscriptions_per_user: 60 });
        for (let i = 0; i < 50; i++) await h.call('live', `s${i}`, `SELECT * FROM ${fx.table} WHERE n >= ${i % 10}`);
        await until('50 initial snapshots', async () => {
          for (let i = 0; i < 50; i++) if ((await h.call('stats', `s${i}`)).initialCalls !== 1) return false;
          return true;
        });
        await sql(fx.url, fx.token, `INSERT INTO ${fx.table} (id, title, n) VALUES (100, 'all', 50)`);
        await until('every subscription sees the insert', async () => {
          for (let i = 0; i < 50; i++) if (!(await h.call('stats', `s${i}`)).lastChange?.inserted) return false;
          return true;
        });
        const info = await h.call('info');
        assert.equal(info.sockets, 1);
        assert.equal(info.subscriptions.length, 50);
        assert.equal(new Set(info.subscriptions.map((s) => s.id)).size, 50);
        for (let i = 0; i < 50; i++) await h.call('unsubscribe', `s${i}`);
        await fault(fx.url, fx.rootToken, { action: 'set_limits', max_subscriptions_per_user: 2 });
        await sleep(200); // the unsubscribes reach the server
        await h.call('live', 'ok1', `SELECT * FROM ${fx.table}`);
        await h.call('live', 'ok2', `SELECT * FROM ${fx.table}`);
        await h.call('live', 'over', `SELECT * FROM ${fx.table}`);
        const over = await until('limit error', async () => (await h.call('stats', 'over')).errors[0]);
        assert.equal(over.code, 'SUBSCRIPTION_LIMIT_EXCEEDED');
        assert.equal(over.isKalamError, true);
        assert.equal(over.isError, true);
        assert.equal(over.fatal, true);
        assert.equal((await h.call('stats', 'ok2')).errors.length, 0);
        assert.equal((await h.call('info')).subscriptions.length, 2, 'the refused one is gone');
        // Bad SQL is refused locally with a typed error.
        const bad = await h.call('liveError', `SELECT * FROM ${fx.table} ORDER BY lower(id)`);
        assert.equal(bad.code, 'INVALID_ARGUMENT');
        assert.equal(bad.isKalamError, true);
      } finally {
        await fault(fx.url, fx.rootToken, { action: 'set_limits', max_subscriptions_per_user: 10 });
        await h.close();
      }
    });
  });
}
