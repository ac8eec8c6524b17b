// Chaos: several Node app clients (the built package, `ws`), each through its own TCP fault
// proxy, with plain, filtered, `limit` and `lastRows` subscriptions, while 20,000+ row
// writes (bulk UPDATEs of 2,000 rows through the server's 128-frame queue, single-row
// inserts/updates/deletes, multi-row inserts and deletes) meet socket drops, black holes,
// a server restart and token expiry. At the end every subscription must equal a fresh
// SELECT (plain, filtered) or be an exact subset of it (`limit`, `lastRows`), with no
// duplicate or spurious insert/remove in the callbacks. The last writes (a bulk UPDATE and
// DELETE) meet no fault, so only self-verification can repair what the queue drops. Prints
// the time to converge after the last write. Run: node --test tests/e2e/live-chaos.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { testServer, freshFixture, insertRows, select, selectAll, sql, fault, login, until, sleep } from './support/server.mjs';
import { clientDist } from './support/browser.mjs';
import { faultProxy } from '../support/fault-proxy.mjs';

let server;
let pkg;

before(async () => {
  server = await testServer();
  await import(pathToFileURL(join(clientDist, 'node.js')).href);
  pkg = await import(pathToFileURL(join(clientDist, 'index.js')).href);
});

after(async () => {
  await server?.stop();
});

const CLIENTS = 3;
const ROUNDS = 8;

/** One subscription's view, checked from its callbacks alone. */
function recorder(name) {
  const rec = { name, rows: [], keys: new Set(), initial: 0, resyncs: 0, dups: 0, spuriousInsert: 0, spuriousRemove: 0, fatal: [], samples: [] };
  rec.onRows = (rows, change) => {
    if (change.initial) {
      rec.initial += 1;
      rec.keys = new Set(rows.map((r) => r.id.asString()));
    } else {
      if (change.resync) rec.resyncs += 1;
      // `removed` holds opaque keys; `removedRows` the rows that left, in the same order.
      for (const r of change.removedRows) if (!r || !rec.keys.delete(r.id.asString())) rec.spuriousRemove += 1;
      for (const r of change.inserted) {
        const id = r.id.asString();
        if (rec.keys.has(id)) {
          rec.spuriousInsert += 1;
          if (rec.samples.length < 5) rec.samples.push({ id, resync: change.resync, inserted: change.inserted.length, updated: change.updated.length, removed: change.removed.length, at: Date.now() });
        }
        rec.keys.add(id);
      }
    }
    rec.rows = rows;
    if (new Set(rows.map((r) => r.id.asString())).size !== rows.length) rec.dups += 1;
  };
  rec.onError = (e) => { if (e.fatal) rec.fatal.push(`${e.code}: ${e.message}`); };
  return rec;
}

const plainRow = (r) => [r.id.asString(), r.title.asString(), r.n.asInt()];
const byId = (a, b) => Number(a[0]) - Number(b[0]);

test('chaos: 3 clients, 4 subscription shapes, 20,000+ writes with drops, black holes, a restart and token expiry', async () => {
  const fx = await freshFixture(server);
  let rootToken = fx.rootToken;
  await fault(fx.url, rootToken, { action: 'set_limits', max_subscriptions_per_user: 50 });
  await insertRows(fx, 1, 2000, 500);
  const proxies = [];
  const clients = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const proxy = await faultProxy(fx.url);
      proxies.push(proxy);
      const client = pkg.createClient({
        url: proxy.url,
        authProvider: async () => pkg.Auth.basic(fx.user, fx.password),
        WebSocket,
        reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
        liveness: { idleMs: 2000, timeoutMs: 2000 },
        verify: { intervalMs: 3000 },
      });
      const subs = {
        plain: recorder('plain'), filtered: recorder('filtered'), limit: recorder('limit'), lastRows: recorder('lastRows'),
      };
      const q = `SELECT * FROM ${fx.table}`;
      await client.live(q, subs.plain.onRows, { onError: subs.plain.onError });
      await client.live(`${q} WHERE n < 50`, subs.filtered.onRows, { onError: subs.filtered.onError });
      await client.live(q, subs.limit.onRows, { limit: 100, onError: subs.limit.onError });
      await client.live(q, subs.lastRows.onRows, { lastRows: 50, onError: subs.lastRows.onError });
      clients.push({ client, subs, proxy });
    }
    await until('every snapshot', () => clients.every((c) => Object.values(c.subs).every((s) => s.initial === 1)), 30_000);

    let token = fx.token;
    const run = async (text) => {
      try {
        return await sql(fx.url, token, text);
      } catch (e) {
        if (!/TOKEN_EXPIRED/.test(e.message)) throw e;
        token = await login(fx.url, fx.user, fx.password);
        return sql(fx.url, token, text);
      }
    };
    let nextId = 100_000;
    let writes = 0;
    let rng = 42;
    const rand = (n) => {
      rng = (rng * 1103515245 + 12345) % 2147483648;
      return rng % n;
    };
    const holes = [];
    const t0 = Date.now();
    for (let round = 0; round < ROUNDS; round++) {
      await run(`UPDATE ${fx.table} SET n = (n + 7) % 100 WHERE id > 0`);
      writes += (await select(fx.url, token, `SELECT COUNT(*) AS c FROM ${fx.table}`))[0].c * 1;
      const values = [];
      for (let k = 0; k < 200; k++) values.push(`(${nextId + k}, 'bulk ${round}', ${k % 100})`);
      await run(`INSERT INTO ${fx.table} (id, title, n) VALUES ${values.join(', ')}`);
      nextId += 200;
      writes += 200;
      for (let k = 0; k < 60; k++) {
        const id = 1 + rand(2000);
        const op = rand(3);
        if (op === 0) await run(`INSERT INTO ${fx.table} (id, title, n) VALUES (${nextId++}, 'single', ${rand(100)})`);
        else if (op === 1) await run(`UPDATE ${fx.table} SET title = 'u${round}-${k}', n = ${rand(100)} WHERE id = ${id}`);
        else await run(`DELETE FROM ${fx.table} WHERE id = ${id}`);
        writes += 1;
      }
      // One fault per round, while the writes go on.
      switch (round % 4) {
        case 0:
          for (const p of proxies) p.dropAll();
          break;
        case 1: {
          const p = proxies[round % CLIENTS];
          p.blackhole(true);
          holes.push(sleep(5000).then(() => p.blackhole(false)));
          break;
        }
        case 2:
          await fault(fx.url, rootToken, { action: 'restart' });
          break;
        case 3:
          await fault(fx.url, rootToken, { action: 'expire_tokens' });
          rootToken = await login(fx.url, 'root', server.rootPassword);
          await fault(fx.url, rootToken, { action: 'drop_sockets' });
          break;
      }
      await run(`DELETE FROM ${fx.table} WHERE id > ${nextId - 150} AND id <= ${nextId - 100}`);
      writes += 50;
    }
    await Promise.all(holes);
    // The last writes meet no fault: only self-verification can heal what the queue drops
    // now (a reconnect would resync everything and hide it).
    await until('every client connected', () => clients.every((c) => c.client.isConnected()), 30_000);
    await sleep(500);
    await run(`UPDATE ${fx.table} SET n = (n + 3) % 100 WHERE id > 0`);
    await run(`DELETE FROM ${fx.table} WHERE id % 17 = 0`);
    writes += 2000;
    const lastWrite = Date.now();
    console.log(`# chaos: ${writes} row writes in ${lastWrite - t0} ms`);
    assert.ok(writes >= 20_000, `${writes} row writes`);

    token = await login(fx.url, fx.user, fx.password);
    const all = (await selectAll({ ...fx, token })).map((r) => [String(r.id), r.title, r.n]).sort(byId);
    const truth = new Map(all.map((r) => [r[0], JSON.stringify(r)]));
    const want = { plain: JSON.stringify(all), filtered: JSON.stringify(all.filter((r) => r[2] < 50)) };
    const check = (c) => {
      const problems = [];
      for (const [name, s] of Object.entries(c.subs)) {
        const have = s.rows.map(plainRow).sort(byId);
        if (name in want) {
          if (JSON.stringify(have) !== want[name]) problems.push(`${name}: ${have.length} rows, want ${JSON.parse(want[name]).length}`);
        } else {
          const wrong = have.filter((r) => truth.get(r[0]) !== JSON.stringify(r));
          if (wrong.length) problems.push(`${name}: ${wrong.length} rows differ from the server`);
          if (name === 'limit' && have.length > 100) problems.push('limit: more than 100 rows');
        }
      }
      return problems;
    };
    let problems = [];
    try {
      await until('every client converges', () => {
        problems = clients.flatMap((c, i) => check(c).map((p) => `client ${i} ${p}`));
        return problems.length === 0;
      }, 60_000, 200);
    } catch (e) {
      throw new Error(`${e.message}: ${problems.join('; ')}`);
    }
    console.log(`# chaos: every client equal to a fresh SELECT ${Date.now() - lastWrite} ms after the last write`);
    for (const [i, c] of clients.entries()) {
      for (const s of Object.values(c.subs)) {
        assert.equal(s.dups, 0, `client ${i} ${s.name}: duplicate rows in a callback`);
        assert.equal(s.spuriousInsert, 0, `client ${i} ${s.name}: insert of a key already shown ${JSON.stringify(s.samples)}`);
        assert.equal(s.spuriousRemove, 0, `client ${i} ${s.name}: remove of a key not shown`);
        assert.deepEqual(s.fatal, [], `client ${i} ${s.name}: no fatal error`);
      }
      const resyncs = Object.values(c.subs).map((s) => `${s.name} ${s.resyncs}`).join(', ');
      console.log(`# chaos: client ${i} resyncs: ${resyncs}`);
    }
  } finally {
    for (const c of clients) await c.client.shutdown();
    for (const p of proxies) await p.close();
    await fault(fx.url, await login(fx.url, 'root', server.rootPassword), { action: 'set_limits', max_subscriptions_per_user: 10 });
  }
});
