// Issue 13 (hardening) end to end: bad input refused at once, a hung authProvider bounded
// by timeouts, misbehaving callbacks that cannot corrupt the rows, `lastRows` across a
// reconnect. The SAME code runs in Node, on a Chromium page and in a dedicated worker (see
// hardening.test.mjs), through the package's public API only (plus `fetch` for root SQL and
// the test server's fault switch).
//
// `runScenarios(kalam, cfg)` resolves with `[{ name, ok, error?, ms }]`; it never rejects.
// cfg: { url, rootPassword, ns, user, password, WebSocket? (Node: the `ws` package) }

class AssertionError extends Error {}

function show(v) {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
  } catch {
    return String(v);
  }
}

function ok(cond, message) {
  if (!cond) throw new AssertionError(message ?? 'assertion failed');
}

function eq(actual, expected, message) {
  if (show(actual) !== show(expected)) throw new AssertionError(`${message ?? 'not equal'}: got ${show(actual)}, want ${show(expected)}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until truthy (returned) or `ms` passes (throws naming `what`). */
async function until(what, fn, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new AssertionError(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** `promise` must reject with a KalamError matching `expect` within `withinMs`; returns it. */
async function rejects(kalam, promise, expect, what, withinMs = 8_000) {
  const started = Date.now();
  const never = Symbol('never settled');
  let err;
  try {
    const v = await Promise.race([promise, sleep(withinMs).then(() => never)]);
    if (v === never) throw new AssertionError(`${what}: still pending after ${withinMs} ms (want a ${expect.code} rejection)`);
    throw new AssertionError(`${what}: resolved, want a ${expect.code} rejection`);
  } catch (e) {
    if (e instanceof AssertionError) throw e;
    err = e;
  }
  ok(err instanceof kalam.KalamError, `${what}: rejected with ${err?.constructor?.name} ${err?.message ?? err}, not a KalamError`);
  for (const [k, v] of Object.entries(expect)) eq(err[k], v, `${what}: error.${k} (${err.message})`);
  err.elapsedMs = Date.now() - started;
  return err;
}

/** `fn()` must THROW (synchronously) a KalamError with `code`. */
function throwsNow(kalam, fn, code, what) {
  let err;
  let result;
  try {
    result = fn();
  } catch (e) {
    err = e;
  }
  if (result && typeof result.then === 'function') result.catch(() => {});
  ok(err !== undefined, `${what}: did not throw`);
  ok(err instanceof kalam.KalamError, `${what}: threw ${err?.constructor?.name} ${err?.message ?? err}, not a KalamError`);
  eq(err.code, code, `${what}: error.code (${err.message})`);
}

async function rootToken(cfg) {
  const r = await fetch(`${cfg.url}/v1/api/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'root', password: cfg.rootPassword }),
  });
  if (!r.ok) throw new Error(`root login: ${r.status}`);
  return (await r.json()).access_token;
}

async function fault(cfg, body) {
  const r = await fetch(`${cfg.url}/v1/api/test/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await rootToken(cfg)}` }, body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`fault ${show(body)}: ${r.status} ${await r.text()}`);
}

function client(kalam, cfg, extra = {}) {
  return kalam.createClient({
    url: cfg.url,
    authProvider: async () => kalam.Auth.basic(cfg.user, cfg.password),
    WebSocket: cfg.WebSocket,
    reconnect: { initialDelayMs: 150, maxDelayMs: 400 },
    ...extra,
  });
}

let tableNo = 0;

/** A fresh table `ns.t<N> (id BIGINT PK, title TEXT, n INT)` of the scenario user, with rows 1..count. */
async function freshTable(kalam, cfg, count) {
  const c = client(kalam, cfg);
  const table = `${cfg.ns}.t${cfg.env}${++tableNo}`;
  const root = client(kalam, cfg, { authProvider: async () => kalam.Auth.basic('root', cfg.rootPassword) });
  await root.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, title TEXT, n INT) WITH (TYPE = 'USER')`);
  if (count) {
    const values = Array.from({ length: count }, (_, i) => `(${i + 1}, 'row ${i + 1}', ${i + 1})`).join(', ');
    await c.query(`INSERT INTO ${table} (id, title, n) VALUES ${values}`);
  }
  return { c, table };
}

async function selectIds(c, table) {
  const rows = await c.queryAll(`SELECT id FROM ${table} ORDER BY id LIMIT 1000`);
  return rows.map((r) => r.id.asString());
}

const hang = () => new Promise(() => {});

export const scenarios = {
  'createClient refuses a missing or empty url and a missing authProvider at once (INVALID_ARGUMENT)': async (kalam, cfg) => {
    const provider = async () => kalam.Auth.none();
    throwsNow(kalam, () => kalam.createClient(), 'INVALID_ARGUMENT', 'createClient()');
    throwsNow(kalam, () => kalam.createClient({}), 'INVALID_ARGUMENT', 'createClient({})');
    throwsNow(kalam, () => kalam.createClient({ url: '', authProvider: provider }), 'INVALID_ARGUMENT', "url: ''");
    throwsNow(kalam, () => kalam.createClient({ url: '   ', authProvider: provider }), 'INVALID_ARGUMENT', "url: '   '");
    throwsNow(kalam, () => kalam.createClient({ url: 8080, authProvider: provider }), 'INVALID_ARGUMENT', 'url: 8080');
    throwsNow(kalam, () => kalam.createClient({ url: cfg.url }), 'INVALID_ARGUMENT', 'no authProvider');
    throwsNow(kalam, () => kalam.createClient({ url: cfg.url, authProvider: 'alice' }), 'INVALID_ARGUMENT', 'authProvider not a function');
    // Valid options construct (nothing is sent until the first call).
    kalam.createClient({ url: cfg.url, authProvider: provider });
    kalam.createClient({ url: cfg.url, auth: kalam.Auth.basic(cfg.user, cfg.password) });
    // The URL's syntax is the core's rule, reported typed by the first call.
    await rejects(kalam, kalam.createClient({ url: 'localhost:8080', authProvider: provider }).query('SELECT 1'), { code: 'INVALID_URL' }, 'bad URL');
  },

  'a hung authProvider: query() rejects with TIMEOUT within timeoutMs, and the next call works': async (kalam, cfg) => {
    let calls = 0;
    const c = client(kalam, cfg, {
      authProvider: () => (++calls === 1 ? hang() : Promise.resolve(kalam.Auth.basic(cfg.user, cfg.password))),
    });
    // Two calls at once: one runs the provider, the other waits for it; both are bounded.
    const [a, b] = await Promise.all([
      rejects(kalam, c.query('SELECT 1', [], { timeoutMs: 1500 }), { code: 'TIMEOUT', retryable: true }, 'query (runs the provider)'),
      rejects(kalam, c.query('SELECT 2', [], { timeoutMs: 1500 }), { code: 'TIMEOUT', retryable: true }, 'query (waits for it)'),
    ]);
    ok(a.elapsedMs >= 1300 && a.elapsedMs < 4000, `rejected after ${a.elapsedMs} ms, want ~1500`);
    ok(b.elapsedMs < 4000, `the waiting call rejected after ${b.elapsedMs} ms`);
    eq(calls, 1, 'the provider was asked once (single flight)');
    // The flight ended: the next call asks the provider again and succeeds.
    const r = await c.query('SELECT 1 AS one');
    eq(r.results[0].rows.map((row) => row.map(String)), [["1"]], "the next query works");
    eq(calls, 2, 'provider calls');
    // The client-wide timeoutMs bounds it too (the repro: timeoutMs 2000).
    const d = client(kalam, cfg, { timeoutMs: 2000, authProvider: hang });
    const e = await rejects(kalam, d.query('SELECT 1'), { code: 'TIMEOUT' }, 'client timeoutMs 2000');
    ok(e.elapsedMs >= 1800 && e.elapsedMs < 4500, `rejected after ${e.elapsedMs} ms, want ~2000`);
    ok(/authProvider/.test(e.message), `the message names the authProvider: ${e.message}`);
    // One that throws, or gives nothing, is a typed AUTH_FAILED at once.
    await rejects(kalam, client(kalam, cfg, { authProvider: () => { throw new Error('vault down'); } }).query('SELECT 1'), { code: 'AUTH_FAILED' }, 'a throwing authProvider', 3_000);
    await rejects(kalam, client(kalam, cfg, { authProvider: async () => undefined }).query('SELECT 1'), { code: 'AUTH_FAILED' }, 'an authProvider giving nothing', 3_000);
  },

  'a hung authProvider: the live socket reports a typed TIMEOUT, then connects once it answers': async (kalam, cfg) => {
    const { table } = await freshTable(kalam, cfg, 2);
    let calls = 0;
    const errors = [];
    const c = client(kalam, cfg, {
      timeoutMs: 1200,
      authProvider: () => (++calls === 1 ? hang() : Promise.resolve(kalam.Auth.basic(cfg.user, cfg.password))),
      onConnectionError: (e) => errors.push(e),
    });
    let rows = null;
    const unsub = await c.live(`SELECT * FROM ${table}`, (r) => { rows = r; });
    const err = await until('a connection error', () => errors[0], 6_000);
    ok(err instanceof kalam.KalamError, 'a KalamError');
    eq(err.code, 'TIMEOUT', `connection error code (${err.message})`);
    eq(err.recoverable, true, 'recoverable');
    await until('the snapshot after the provider answered', () => rows?.length === 2, 8_000);
    await unsub();
    await c.shutdown();
  },

  'liveTable() accepts only namespace.table identifiers (no SQL pasted in)': async (kalam, cfg) => {
    const { c, table } = await freshTable(kalam, cfg, 3);
    let called = 0;
    for (const name of [`${table} WHERE title LIKE '%'`, `${table}; DROP TABLE ${table}`, `${table}--`, table.split('.')[1], `${table}.x`, `${cfg.ns}."t x"`, '']) {
      await rejects(kalam, c.liveTable(name, () => { called += 1; }), { code: 'INVALID_ARGUMENT' }, `liveTable(${show(name)})`);
    }
    eq(c.getSubscriptions().length, 0, 'nothing was subscribed');
    let rows = null;
    const unsub = await c.liveTable(table, (r) => { rows = r; });
    await until('liveTable rows', () => rows?.length === 3);
    eq(rows.map((r) => r.id.asString()), ['1', '2', '3'], 'rows of the quoted table');
    eq(called, 0, 'refused subscriptions never called back');
    await unsub();
    await c.shutdown();
  },

  'batchSize outside 1..999, negative timeoutMs/maxRetries and bad executeAsUser ids are refused (INVALID_ARGUMENT)': async (kalam, cfg) => {
    const { c, table } = await freshTable(kalam, cfg, 1);
    for (const batchSize of [0, 1000, -1, 1.5]) {
      await rejects(kalam, c.live(`SELECT * FROM ${table}`, () => {}, { batchSize }), { code: 'INVALID_ARGUMENT' }, `live batchSize ${batchSize}`);
    }
    const zero = client(kalam, cfg, { batchSize: 0 });
    await rejects(kalam, zero.live(`SELECT * FROM ${table}`, () => {}), { code: 'INVALID_ARGUMENT' }, 'createClient batchSize 0');
    for (const opts of [{ timeoutMs: -1 }, { timeoutMs: 1.5 }, { maxRetries: -2 }]) {
      await rejects(kalam, client(kalam, cfg, opts).query('SELECT 1'), { code: 'INVALID_ARGUMENT' }, `createClient(${show(opts)}).query`);
    }
    for (const user of ['../root', 'a/b', 'a\\b', '']) {
      await rejects(kalam, c.executeAsUser('SELECT 1', user), { code: 'INVALID_ARGUMENT' }, `executeAsUser(${show(user)})`);
    }
    await c.shutdown();
  },

  'lastRows shapes only the first snapshot: after a dropped connection no row vanishes': async (kalam, cfg) => {
    const { c, table } = await freshTable(kalam, cfg, 10);
    let rows = [];
    let resyncs = 0;
    const unsub = await c.live(`SELECT * FROM ${table}`, (r, change) => {
      rows = r;
      if (change.resync) resyncs += 1;
    }, { lastRows: 3 });
    const ids = () => rows.map((r) => r.id.asString());
    await until('the newest 3', () => rows.length === 3);
    eq(ids(), ['8', '9', '10'], 'lastRows: 3');
    await c.insert(table, { id: 11, title: 'row 11', n: 11 });
    await c.insert(table, { id: 12, title: 'row 12', n: 12 });
    await until('5 rows', () => rows.length === 5);
    await fault(cfg, { action: 'drop_sockets' });
    await c.insert(table, { id: 13, title: 'row 13', n: 13 });
    await until('the resync after the reconnect', () => resyncs >= 1 || ids().includes('13'), 8_000);
    await until('6 rows', () => rows.length === 6 && ids().includes('13'), 8_000);
    await sleep(300);
    eq(ids(), ['8', '9', '10', '11', '12', '13'], 'rows after the reconnect');
    await unsub();
    await c.shutdown();
  },

  'an UPDATE of the key leaves no ghost row; STREAM-table deletes are applied; limit keeps what a SELECT keeps': async (kalam, cfg) => {
    const { c, table } = await freshTable(kalam, cfg, 4);
    let rows = [];
    let limited = [];
    const unsub = await c.live(`SELECT * FROM ${table}`, (r) => { rows = r; });
    const unsubLimited = await c.live(`SELECT * FROM ${table}`, (r) => { limited = r; }, { limit: 2 });
    const ids = (rs) => rs.map((r) => r.id.asString());
    await until('the snapshot', () => rows.length === 4 && limited.length === 2);
    eq(ids(limited), ['3', '4'], 'limit 2: the newest two');
    // limit 2 keeps the two most recently written rows (what a fresh snapshot holds): after
    // an update of 3 and an insert of 5 that is 3 and 5, not 4 and 5.
    await c.query(`UPDATE ${table} SET title = 'again' WHERE id = 3`);
    await c.insert(table, { id: 5, title: 'five', n: 5 });
    await until('limit after an update and an insert', () => ids(limited).includes('5'), 8_000);
    await sleep(200);
    eq(ids(limited), ['3', '5'], 'limit 2 after an update and an insert');
    await c.query(`UPDATE ${table} SET id = 40 WHERE id = 1`);
    await until('the key change', () => ids(rows).includes('40'), 8_000);
    await sleep(200);
    eq(ids(rows).sort(), ['2', '3', '4', '40', '5'], 'rows after the key change (no ghost of id 1)');

    const root = client(kalam, cfg, { authProvider: async () => kalam.Auth.basic('root', cfg.rootPassword) });
    const stream = `${cfg.ns}.s${cfg.env}${++tableNo}`;
    await root.query(`CREATE TABLE ${stream} (id BIGINT PRIMARY KEY, ev TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 3600)`);
    await c.query(`INSERT INTO ${stream} (id, ev) VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    let events = [];
    const unsubStream = await c.live(`SELECT * FROM ${stream}`, (r) => { events = r; });
    await until('the stream snapshot', () => events.length === 3);
    await c.query(`DELETE FROM ${stream} WHERE id = 2`);
    await until('the STREAM delete applied', () => show(ids(events)) === show(['1', '3']), 8_000);
    await unsub();
    await unsubLimited();
    await unsubStream();
    await c.shutdown();
  },

  'throwing mapRow/onRows/onCheckpoint/onError/logListener cannot corrupt the rows': async (kalam, cfg) => {
    const { table } = await freshTable(kalam, cfg, 6);
    const c = client(kalam, cfg, { logListener: () => { throw new Error('logger down'); }, logLevel: kalam.LogLevel.Verbose });
    let map = null;
    let calls = 0;
    const errors = [];
    const unsub = await c.live(`SELECT * FROM ${table}`, (_rows, change) => {
      calls += 1;
      map = change.rowMap;
      throw new Error('onRows bug');
    }, {
      mapRow: (row) => {
        const n = row.n.asInt();
        if (n % 3 === 0) throw new Error(`cannot map ${n}`);
        return { id: row.id.asString(), n, mapped: true };
      },
      onCheckpoint: () => { throw new Error('onCheckpoint bug'); },
      onError: (e) => { errors.push(e); throw new Error('onError bug'); },
    });
    await until('the snapshot', () => map?.size === 6);
    const writer = client(kalam, cfg);
    await writer.insert(table, { id: 7, title: 'seven', n: 7 });
    await writer.insert(table, { id: 9, title: 'nine', n: 9 });
    await writer.query(`UPDATE ${table} SET n = 30 WHERE id = 1`);
    await writer.query(`DELETE FROM ${table} WHERE id = 2`);
    const want = await selectIds(writer, table);
    const held = () => [...map.keys()].map((k) => Number(JSON.parse(k))).sort((a, b) => a - b);
    await until(`rows equal SELECT ${show(want)}`, () => show(held()) === show(want.map(Number)), 8_000);
    ok(calls >= 3, `onRows kept being called (${calls})`);
    ok(errors.length >= 1 && errors.every((e) => e instanceof kalam.KalamError && e.code === 'INVALID_ARGUMENT'), `onError heard of mapRow (${errors.map((e) => e.code)})`);
    const row1 = map.get(JSON.stringify('1')) ?? map.get('1');
    ok(row1 && row1.mapped !== true && row1.n?.toJson() === 30, `row 1 (n = 30, mapRow threw) is kept unmapped: ${show(row1)}`);
    const row4 = [...map.values()].find((r) => r.mapped && r.n === 4);
    ok(row4, 'rows mapRow accepted are mapped');
    await unsub();
    await c.shutdown();
  },

  'callbacks may call back into the client (unsubscribe, live, query, getSubscriptions)': async (kalam, cfg) => {
    const { c, table } = await freshTable(kalam, cfg, 2);
    let aCalls = 0;
    let bCalls = 0;
    let cRows = null;
    let queried = null;
    let unsubB = null;
    let started = false;
    const unsubA = await c.live(`SELECT * FROM ${table}`, (rows, change) => {
      aCalls += 1;
      c.getSubscriptions();
      if (!change.initial && unsubB && !started) {
        started = true;
        unsubB();
        c.live(`SELECT * FROM ${table} WHERE id > 1`, (r) => { cRows = r; }).catch((e) => { cRows = e; });
        c.query('SELECT COUNT(*) AS n FROM ' + table).then((r) => { queried = r; }, (e) => { queried = e; });
      }
      return rows;
    });
    await until('A initial', () => aCalls >= 1);
    unsubB = await c.live(`SELECT * FROM ${table}`, () => { bCalls += 1; });
    await until('B initial', () => bCalls >= 1);
    const writer = client(kalam, cfg);
    await writer.insert(table, { id: 3, title: 'three', n: 3 });
    await until('C rows from inside a callback', () => Array.isArray(cRows) && cRows.length === 2, 8_000);
    await until('a query from inside a callback', () => queried !== null);
    ok(!(queried instanceof Error), `query: ${queried?.message}`);
    const bBefore = bCalls;
    await writer.insert(table, { id: 4, title: 'four', n: 4 });
    await until('C sees the next insert', () => cRows.length === 3);
    await until(`A kept going (${aCalls} calls)`, () => aCalls >= 3);
    eq(bCalls, bBefore, 'B, unsubscribed from a callback, is quiet');
    await unsubA();
    await c.shutdown();
    // shutdown() from inside a callback, then SQL on the same client.
    const d = client(kalam, cfg);
    let dCalls = 0;
    await d.live(`SELECT * FROM ${table}`, () => {
      dCalls += 1;
      d.shutdown();
    });
    await until('the callback that shuts the client down', () => dCalls === 1);
    await writer.insert(table, { id: 5, title: 'five', n: 5 });
    await sleep(300);
    eq(dCalls, 1, 'no callback after shutdown()');
    eq(d.getSubscriptions().length, 0, 'no subscriptions after shutdown()');
    const count = await d.queryOne(`SELECT COUNT(*) AS n FROM ${table}`);
    eq(count.n.asString(), '5', 'SQL still works after shutdown()');
  },
};

export async function runScenarios(kalam, cfg, only) {
  const results = [];
  for (const [name, fn] of Object.entries(scenarios)) {
    if (only && !only.includes(name)) continue;
    const t0 = Date.now();
    try {
      await fn(kalam, cfg);
      results.push({ name, ok: true, ms: Date.now() - t0 });
    } catch (e) {
      results.push({ name, ok: false, error: `${e?.stack ?? e}`, ms: Date.now() - t0 });
    }
  }
  return results;
}
