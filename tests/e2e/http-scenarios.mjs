// The HTTP half of @kalam-wasm/client, end to end against a running test server. The SAME
// code runs in Node, on a page and in a dedicated worker (see http.test.mjs): it only uses
// the package's public API plus `fetch` for the test-only routes (faults, proxy counters).
//
// `runScenarios(kalam, cfg)` resolves with `[{ name, ok, error? }]`, one per scenario; it
// never rejects, so every scenario reports on its own.
//
// cfg: { env, debug, url, proxyUrl, deadUrl, hangUrl, hangStatsUrl, ns, rootPassword, users: { alice, bob, carol,
//        dave: { id, password } } }

// ------------------------------------------------------------------ tiny assertions
// (node:assert does not exist in browsers; these print bigints and nested values.)

function show(v) {
  try {
    return JSON.stringify(v, (_k, x) => {
      if (typeof x === 'bigint') return `${x}n`;
      if (x instanceof Uint8Array) return Array.from(x);
      if (x && typeof x === 'object' && !Array.isArray(x) && Object.getPrototypeOf(x) === Object.prototype) {
        return Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])); // key order is not data
      }
      return x;
    });
  } catch {
    return String(v);
  }
}

class AssertionError extends Error {}

function ok(cond, message) {
  if (!cond) throw new AssertionError(message ?? 'assertion failed');
}

function eq(actual, expected, message) {
  if (!Object.is(actual, expected)) throw new AssertionError(`${message ?? 'not equal'}: got ${show(actual)}, want ${show(expected)}`);
}

function deepEq(actual, expected, message) {
  if (show(actual) !== show(expected)) throw new AssertionError(`${message ?? 'not deep-equal'}: got ${show(actual)}, want ${show(expected)}`);
}

/** Awaits `promise`, which must reject with a KalamError; returns it. */
async function rejects(kalam, promise, expect, message) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  ok(err !== undefined, `${message ?? 'call'}: resolved, expected a rejection with ${show(expect)}`);
  ok(err instanceof kalam.KalamError, `${message ?? 'call'}: rejected with a ${err?.constructor?.name} (${err?.message ?? err}), not a KalamError`);
  ok(err instanceof Error, 'a KalamError is an Error');
  for (const [k, v] of Object.entries(expect)) {
    eq(err[k], v, `${message ?? 'call'}: error.${k} (message: ${err.message})`);
  }
  ok(typeof err.message === 'string' && err.message.length > 0, 'the error has a message');
  return err;
}

// ------------------------------------------------------------------ helpers

async function rawLogin(cfg, user, password) {
  const r = await fetch(`${cfg.url}/v1/api/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }),
  });
  if (r.status !== 200) throw new Error(`login ${user}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

async function fault(cfg, body) {
  const { access_token: token } = await rawLogin(cfg, 'root', cfg.rootPassword);
  const r = await fetch(`${cfg.url}/v1/api/test/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
  });
  if (r.status !== 200) throw new Error(`fault ${show(body)}: HTTP ${r.status} ${await r.text()}`);
}

/** Connections the never-answering server got requests on since the last call (then closed). */
async function hangStats(cfg) {
  return (await fetch(cfg.hangStatsUrl)).json();
}

/** The counting proxy in front of the server (http.test.mjs): per-path request counts, in-flight peak. */
async function proxy(cfg, control, proxyUrl = cfg.proxyUrl) {
  const r = await fetch(`${proxyUrl}/__proxy/${control ? 'reset' : 'stats'}`, {
    method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(control ?? {}),
  });
  const stats = await r.json();
  // CORS preflights (browsers only, cached per URL) are not the client's doing.
  stats.counts = Object.fromEntries(Object.entries(stats.counts).filter(([k]) => !k.startsWith('OPTIONS ')));
  return stats;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function basic(kalam, cfg, who, extra = {}) {
  const u = cfg.users[who];
  return kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.basic(u.id, u.password), ...extra });
}

function rootClient(kalam, cfg, extra = {}) {
  return kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.basic('root', cfg.rootPassword), ...extra });
}

// 'Ünïcode Report (final) v2.PDF' → 'ncode-report-final-v2.pdf' (PROTOCOL.md §1.8: lowercase,
// keep [a-z0-9], space/_/- → '-', drop the rest, collapse and trim '-'; ext lowercased).
const UPLOAD_NAME = 'Ünïcode Report (final) v2.PDF';
const UPLOAD_STORED_SUFFIX = '-ncode-report-final-v2.pdf';

const BIG = 9007199254740993n; // 2^53 + 1: not representable as a JS number
const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;

// ------------------------------------------------------------------ scenarios

export const scenarios = {
  async 'Auth helpers and login/getAccessToken/refreshToken/me'(kalam, cfg) {
    deepEq(kalam.Auth.basic('u', 'p'), { type: 'basic', user: 'u', password: 'p' });
    deepEq(kalam.Auth.jwt('t'), { type: 'jwt', token: 't' });
    deepEq(kalam.Auth.none(), { type: 'none' });
    const u = cfg.users.alice;
    const client = kalam.createClient({ url: cfg.proxyUrl, authProvider: async () => kalam.Auth.basic(u.id, u.password) });
    const login = await client.login();
    eq(login.user.id, u.id, 'login user');
    eq(login.user.role, 'user');
    ok(typeof login.access_token === 'string' && login.access_token.split('.').length === 3, 'a JWT access token');
    ok(typeof login.refresh_token === 'string', 'a refresh token');
    eq(await client.getAccessToken(), login.access_token, 'getAccessToken is the login token');
    const me = await client.me();
    eq(me.user.id, u.id, 'me()');
    eq(me.admin_ui_access, false);
    // refreshToken() rotates with the stored refresh token; refreshToken(token) with a given one.
    const rotated = await client.refreshToken();
    ok(rotated.access_token, 'refreshed access token');
    eq(await client.getAccessToken(), rotated.access_token, 'the client uses the refreshed token');
    await proxy(cfg, {});
    await client.getAccessToken();
    deepEq((await proxy(cfg)).counts, {}, 'a valid token is returned without a request');
    const forced = await client.getAccessToken({ forceRefresh: true });
    eq(forced.split('.').length, 3, 'forceRefresh gives a JWT');
    deepEq((await proxy(cfg)).counts, { 'POST /v1/api/auth/refresh': 1 }, 'forceRefresh renews with the refresh token');
    const again = await client.refreshToken(rotated.refresh_token);
    eq(again.user.id, u.id);
    eq((await client.queryOne('SELECT 1 AS one')).one.asInt(), 1, 'queries work after refresh');
    // A JWT obtained elsewhere works as Auth.jwt; forceRefresh without a way to renew fails typed.
    const jwtClient = kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.jwt(again.access_token) });
    eq((await jwtClient.me()).user.id, u.id, 'Auth.jwt client');
    // login() with JWT credentials is a usage error, typed.
    await rejects(kalam, jwtClient.login(), { code: 'INVALID_ARGUMENT' }, 'login() with a JWT');
  },

  async 'health, setupStatus, setup on a configured server'(kalam, cfg) {
    const client = kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.none() });
    const health = await client.health();
    eq(health.status, 'healthy');
    ok(typeof health.version === 'string', 'version');
    eq(health.api_version, 'v1');
    const status = await client.setupStatus();
    eq(status.needs_setup, false, 'root has a password');
    const err = await rejects(kalam, client.setup({ user: 'admin2', password: 'Admin-pass-123', rootPassword: 'x' }),
      { status: 409, retryable: false }, 'setup on a configured server');
    eq(err.code, 'ALREADY_CONFIGURED', 'setup error code');
  },

  async 'first-run setup on an unconfigured server'(kalam, cfg) {
    const anon = kalam.createClient({ url: cfg.unconfiguredUrl, authProvider: async () => kalam.Auth.none() });
    eq((await anon.setupStatus()).needs_setup, true, 'needs setup');
    const rootLogin = kalam.createClient({ url: cfg.unconfiguredUrl, authProvider: async () => kalam.Auth.basic('root', '') });
    const early = await rejects(kalam, rootLogin.query('SELECT 1'), { retryable: false }, 'root without a password before setup');
    ok(early.status >= 400, `typed (${early.code} ${early.status})`);
    const done = await anon.setup({ user: 'admin', password: 'Admin-pass-123', rootPassword: 'Root-pass-123', email: null });
    ok(typeof done.message === 'string', 'setup message');
    eq((await anon.setupStatus()).needs_setup, false, 'configured');
    const admin = kalam.createClient({ url: cfg.unconfiguredUrl, authProvider: async () => kalam.Auth.basic('admin', 'Admin-pass-123') });
    eq((await admin.me()).user.role, 'dba', 'the setup user is a dba');
    const root = kalam.createClient({ url: cfg.unconfiguredUrl, authProvider: async () => kalam.Auth.basic('root', 'Root-pass-123') });
    eq((await root.login()).user.role, 'system', 'root has its password');
    const again = await rejects(kalam, anon.setup({ user: 'admin2', password: 'Admin-pass-123', rootPassword: 'x' }), { status: 409 }, 'second setup');
    eq(again.code, 'ALREADY_CONFIGURED');
  },

  async 'tokens are refreshed before they expire'(kalam, cfg) {
    // A server whose access tokens live 2 s: the client renews ahead of expiry (refresh
    // token), so no request is ever answered TOKEN_EXPIRED.
    const alice = kalam.createClient({ url: cfg.shortTtlProxyUrl, authProvider: async () => kalam.Auth.basic(cfg.users.alice.id, cfg.users.alice.password) });
    await alice.query('SELECT 1');
    for (let i = 0; i < 2; i++) {
      await sleep(2100);
      await proxy(cfg, {}, cfg.shortTtlProxyUrl);
      eq((await alice.queryOne('SELECT 5 AS five')).five.asInt(), 5);
      deepEq((await proxy(cfg, undefined, cfg.shortTtlProxyUrl)).counts, { 'POST /v1/api/auth/refresh': 1, 'POST /v1/api/sql': 1 },
        `round ${i + 1}: one refresh ahead of the query, one query`);
    }
  },

  async 'every value type round-trips, NULLs included'(kalam, cfg) {
    const alice = basic(kalam, cfg, 'alice');
    const t = `${cfg.ns}.types`;
    const when = new Date('2024-05-01T12:34:56.789Z');
    const doc = { a: 1, nested: [1, 2, { b: 'x' }], s: 'é"\'', big: '12345678901234567890' };
    await alice.insert(t, {
      id: 'full', big: BIG, dec: '12345.67', dbl: 3.14159, flag: true, txt: "it's \"quoted\" ünï 😀", doc,
      ts: when, day: '2024-05-01', raw: 'hi', tm: '12:34:56.789012', vec: [0.5, -1, 2.25], i: -42, dt: when,
    });
    await alice.insert(t, { id: 'max', big: I64_MAX, dec: '-0.05', dbl: -1.5e-7, flag: false, txt: '', doc: [], ts: null, day: null, raw: null });
    await alice.insert(t, { id: 'min', big: I64_MIN });
    await alice.insert(t, { id: 'nulls', big: null, dec: null, dbl: null, flag: null, txt: null, doc: null, ts: null, day: null, raw: null, tm: null, vec: null, uid: null, i: null, dt: null });

    const full = await alice.queryOne(`SELECT * FROM ${t} WHERE id = $1`, ['full']);
    ok(full, 'row "full"');
    eq(full.id.asString(), 'full');
    eq(full.big.asBigInt(), BIG, 'BIGINT above 2^53 is exact');
    eq(full.big.asString(), '9007199254740993', 'BIGINT as text');
    eq(full.big.asInt(), null, 'asInt refuses a BIGINT it cannot hold exactly');
    eq(full.dec.asDecimal(), '12345.67', 'DECIMAL exact string');
    eq(full.dec.asFloat(), 12345.67);
    eq(full.dbl.asFloat(), 3.14159, 'DOUBLE');
    eq(full.flag.asBool(), true, 'BOOLEAN');
    eq(full.txt.asString(), "it's \"quoted\" ünï 😀", 'TEXT');
    deepEq(full.doc.asJson(), doc, 'JSON');
    ok(full.ts.asDate() instanceof Date, 'asDate gives a Date');
    eq(full.ts.asDate().toISOString(), when.toISOString(), 'TIMESTAMP');
    eq(full.day.asDate().toISOString(), '2024-05-01T00:00:00.000Z', 'DATE');
    deepEq(full.raw.asBytes(), Uint8Array.from([104, 105]), 'BYTES');
    ok(full.raw.asBytes() instanceof Uint8Array, 'asBytes gives a Uint8Array');
    eq(full.tm.asTimeString(), '12:34:56.789012', 'TIME');
    eq(full.tm.asMicros(), 45296789012n, 'TIME as µs');
    eq(full.ts.asMicros(), BigInt(when.getTime()) * 1000n, 'TIMESTAMP as µs');
    eq(full.dt.asDate().toISOString(), when.toISOString(), 'DATETIME');
    deepEq(full.vec.asEmbedding(), [0.5, -1, 2.25], 'EMBEDDING');
    eq(full.i.asInt(), -42, 'INT');
    eq(full.i.asBigInt(), -42n, 'INT as bigint');
    eq(full.i.asFloat(), -42);
    eq(full.flag.asInt(), 1, 'asInt of a boolean');
    eq(full.dbl.asInt(), 3, 'asInt truncates a DOUBLE');
    eq(full.big.asFloat(), 9007199254740992, 'asFloat of a BIGINT is approximate');
    eq(full.txt.asBool(), null, 'asBool of text that is not a boolean');
    eq(full.doc.asString(), JSON.stringify(full.doc.asJson()), 'asString of JSON is its text');
    eq(full.doc.asObject().a, 1, 'asObject');
    eq(full.big.dataType, 'BigInt', 'dataType');
    eq(String(full.big), '9007199254740993', 'toString');
    eq(full._seq.asSeqId().toString(), full._seq.asString(), '_seq as SeqId');
    ok(full._seq.asSeqId().toBigInt() > 0n, '_seq positive');
    eq(JSON.stringify({ s: full._seq.asSeqId() }), `{"s":"${full._seq.asString()}"}`, 'SeqId JSON is an exact string');

    const max = await alice.queryOne(`SELECT big, dec, dbl, flag, txt, doc FROM ${t} WHERE id = $1`, ['max']);
    eq(max.big.asBigInt(), I64_MAX, 'i64 max');
    eq(max.dec.asDecimal(), '-0.05', 'negative DECIMAL');
    eq(max.dbl.asFloat(), -1.5e-7);
    eq(max.flag.asBool(), false, 'false is not NULL');
    eq(max.flag.isNull(), false);
    eq(max.txt.asString(), '', 'empty TEXT is not NULL');
    deepEq(max.doc.asJson(), [], 'JSON array');
    eq((await alice.queryOne(`SELECT big FROM ${t} WHERE id = $1`, ['min'])).big.asBigInt(), I64_MIN, 'i64 min');

    const nulls = await alice.queryOne(`SELECT * FROM ${t} WHERE id = $1`, ['nulls']);
    for (const col of ['big', 'dec', 'dbl', 'flag', 'txt', 'doc', 'ts', 'day', 'raw', 'f', 'tm', 'vec', 'uid', 'i', 'dt']) {
      const cell = nulls[col];
      ok(cell, `column ${col} present`);
      eq(cell.isNull(), true, `${col} is NULL`);
      for (const m of ['asString', 'asInt', 'asBigInt', 'asFloat', 'asBool', 'asDate', 'asBytes', 'asDecimal', 'asFile', 'asSeqId',
        'asEmbedding', 'asUuid', 'asMicros', 'asTimeString', 'asObject', 'asArray', 'asJson']) {
        eq(cell[m](), null, `${col}.${m}() of NULL`);
      }
      eq(cell.toJson(), null);
      eq(String(cell), 'NULL', 'toString of NULL');
    }

    // A bigint parameter is bound exactly (a JS number would round to 2^53).
    const byBig = await alice.queryAll(`SELECT id FROM ${t} WHERE big = $1`, [BIG]);
    deepEq(byBig.map((r) => r.id.asString()), ['full'], 'WHERE big = $1 with a bigint param');
    const none = await alice.queryAll(`SELECT id FROM ${t} WHERE big = $1`, [BIG - 1n]);
    deepEq(none, [], '2^53 does not match 2^53+1');
    // Schema and raw shapes of query().
    const res = await alice.query(`SELECT id, big, dec, doc FROM ${t} WHERE id = 'full'`);
    eq(res.status, 'success');
    deepEq(res.results[0].schema.map((f) => [f.name, f.data_type]), [['id', 'Text'], ['big', 'BigInt'], ['dec', { Decimal: { precision: 10, scale: 2 } }], ['doc', 'Json']], 'schema');
    deepEq(res.results[0].rows, [['full', '9007199254740993', '12345.67', doc]], 'positional rows');
    eq(res.results[0].row_count, 1);
    // The official SDK's shape: named_rows of plain values.
    deepEq(res.results[0].named_rows, [{ id: 'full', big: '9007199254740993', dec: '12345.67', doc }], 'named_rows');
  },

  async 'JSON documents keep their key order'(kalam, cfg) {
    const alice = basic(kalam, cfg, 'alice');
    const doc = { zeta: 1, alpha: { y: 2, b: 3 }, mid: [{ k2: 1, k1: 2 }] };
    await alice.insert(`${cfg.ns}.types`, { id: 'order', doc });
    const got = (await alice.queryOne(`SELECT doc FROM ${cfg.ns}.types WHERE id = 'order'`)).doc.asJson();
    eq(JSON.stringify(got), JSON.stringify(doc), 'the stored text and the decoded value have the same key order');
  },

  async 'USER tables are isolated between users'(kalam, cfg) {
    const alice = basic(kalam, cfg, 'alice');
    const bob = basic(kalam, cfg, 'bob');
    const t = `${cfg.ns}.notes`;
    await alice.insert(t, { id: 'a1', body: 'alice 1' });
    await alice.insert(t, { id: 'a2', body: 'alice 2' });
    await bob.insert(t, { id: 'b1', body: 'bob 1' });
    deepEq((await alice.queryAll(`SELECT id FROM ${t} ORDER BY id`)).map((r) => r.id.asString()), ['a1', 'a2'], 'alice sees hers');
    deepEq((await bob.queryAll(`SELECT id FROM ${t} ORDER BY id`)).map((r) => r.id.asString()), ['b1'], 'bob sees his');
    const upd = await bob.update(t, 'a1', { body: 'hacked' });
    eq(upd.results[0].row_count, 0, "bob's update of alice's row touches nothing");
    await bob.delete(t, 'a2');
    eq((await alice.queryOne(`SELECT body FROM ${t} WHERE id = 'a1'`)).body.asString(), 'alice 1', 'alice 1 unchanged');
    ok(await alice.queryOne(`SELECT id FROM ${t} WHERE id = 'a2'`), "bob's delete did not remove alice's row");
    // Same key, different users: both exist.
    await bob.insert(t, { id: 'a1', body: 'bob a1' });
    eq((await bob.queryOne(`SELECT body FROM ${t} WHERE id = 'a1'`)).body.asString(), 'bob a1');
    eq((await alice.queryOne(`SELECT body FROM ${t} WHERE id = 'a1'`)).body.asString(), 'alice 1');
  },

  async 'insert/update/delete with hostile text ids and composite keys'(kalam, cfg) {
    const alice = basic(kalam, cfg, 'alice');
    const t = `${cfg.ns}.items`;
    const ids = ["'; DROP TABLE x; --", 'select', 'DELETE', 'id = id OR 1=1', 'Robert"); DROP TABLE items;--', '$1', "o'clock", 'ünï 😀'];
    for (const [i, id] of ids.entries()) {
      const r = await alice.insert(t, { id, title: `t${i}`, n: i });
      eq(r.results.at(-1).row_count, 1, `insert ${show(id)}`);
    }
    eq((await alice.queryAll(`SELECT id FROM ${t}`)).length, ids.length, 'all inserted');
    for (const [i, id] of ids.entries()) {
      const r = await alice.update(t, id, { title: `u${i}`, n: null });
      eq(r.results.at(-1).row_count, 1, `update ${show(id)} touches exactly one row`);
    }
    const rows = await alice.queryAll(`SELECT id, title, n FROM ${t} ORDER BY n`);
    for (const row of rows) {
      const i = ids.indexOf(row.id.asString());
      ok(i >= 0, `id ${show(row.id.asString())} came back verbatim`);
      eq(row.title.asString(), `u${i}`, `title of ${show(row.id.asString())}`);
      eq(row.n.isNull(), true, 'n set to NULL');
    }
    for (const id of ids.slice(0, 4)) await alice.delete(t, id);
    deepEq((await alice.queryAll(`SELECT id FROM ${t}`)).map((r) => r.id.asString()).sort(), ids.slice(4).sort(), 'exactly the deleted ids are gone');
    // The table (and "x") survived; the DROP text was data.
    eq((await alice.queryOne(`SELECT COUNT(*) AS c FROM ${t}`)).c.asInt(), ids.length - 4);

    const p = `${cfg.ns}.pairs`;
    await alice.insert(p, { a: 'select', b: 1, v: 'one' });
    await alice.insert(p, { a: 'select', b: 2, v: 'two' });
    await alice.insert(p, { a: "'; --", b: 1, v: 'three' });
    const up = await alice.update(p, { a: 'select', b: 2 }, { v: 'TWO' });
    eq(up.results.at(-1).row_count, 1, 'composite-key update touches one row');
    await alice.delete(p, { a: "'; --", b: 1 });
    deepEq((await alice.queryAll(`SELECT a, b, v FROM ${p} ORDER BY b`)).map((r) => [r.a.asString(), r.b.asInt(), r.v.asString()]),
      [['select', 1, 'one'], ['select', 2, 'TWO']], 'composite keys');
    // A bigint key and a bare numeric key.
    const k = `${cfg.ns}.bigkeys`;
    await alice.insert(k, { id: BIG, v: 'big' });
    await alice.insert(k, { id: 7, v: 'seven' });
    await alice.update(k, BIG, { v: 'BIG' });
    await alice.delete(k, 7);
    deepEq((await alice.queryAll(`SELECT id, v FROM ${k}`)).map((r) => [r.id.asBigInt(), r.v.asString()]), [[BIG, 'BIG']], 'bigint keys');
    // Usage errors are typed and local.
    await rejects(kalam, alice.update(t, {}, { title: 'x' }), { code: 'INVALID_ARGUMENT' }, 'empty key');
    await rejects(kalam, alice.delete(t, null), { code: 'INVALID_ARGUMENT' }, 'null key');
    await rejects(kalam, alice.insert('a.b.c', { id: 1 }), { code: 'INVALID_ARGUMENT' }, 'bad table name');
    // A server error is typed with the server's code.
    const err = await rejects(kalam, alice.insert(t, { id: 'select', title: 'dup' }).then(() => alice.insert(t, { id: 'select', title: 'dup' })),
      { status: 400, retryable: false }, 'duplicate primary key');
    eq(err.code, 'SQL_EXECUTION_ERROR', 'duplicate key code');
    await rejects(kalam, alice.query('SELEC nonsense'), { status: 400, retryable: false }, 'bad SQL');
  },

  async 'executeAsUser runs as the target user'(kalam, cfg) {
    const root = rootClient(kalam, cfg);
    const alice = basic(kalam, cfg, 'alice');
    const t = `${cfg.ns}.notes`;
    await alice.insert(t, { id: 'x1', body: 'mine' });
    const res = await root.executeAsUser(`SELECT id, body FROM ${t} WHERE id = $1;`, cfg.users.alice.id, ['x1']);
    eq(res.results[0].as_user, cfg.users.alice.id, 'as_user');
    deepEq(res.results[0].rows, [['x1', 'mine']], "alice's row, seen as alice");
    await root.executeAsUser(`INSERT INTO ${t} (id, body) VALUES ('x2', 'written by root as alice')`, cfg.users.alice.id);
    eq((await alice.queryOne(`SELECT body FROM ${t} WHERE id = 'x2'`)).body.asString(), 'written by root as alice');
    // Bob sees none of it; a plain user cannot impersonate another.
    const bob = basic(kalam, cfg, 'bob');
    eq(await bob.queryOne(`SELECT id FROM ${t} WHERE id = 'x2'`), null);
    const err = await rejects(kalam, bob.executeAsUser(`SELECT id FROM ${t}`, cfg.users.alice.id), { retryable: false }, 'user impersonating another');
    ok(['PERMISSION_DENIED', 'SQL_EXECUTION_ERROR'].includes(err.code), `impersonation refused (${err.code})`);
    await rejects(kalam, root.executeAsUser('  ;  ', cfg.users.alice.id), { code: 'INVALID_ARGUMENT' }, 'empty SQL');
    // User ids with quotes are escaped, never spliced.
    const odd = await root.executeAsUser(`SELECT id FROM ${t}`, "nobody' OR '1'='1");
    eq(odd.results[0].as_user, "nobody' OR '1'='1", 'quoted user id');
    deepEq(odd.results[0].rows, [], 'an unknown user has no rows');
  },

  async 'upload and download a binary file with a name that needs sanitising'(kalam, cfg) {
    const alice = basic(kalam, cfg, 'alice');
    const t = `${cfg.ns}.docs`;
    const bytes = new Uint8Array(70_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + (i >> 8)) & 0xff;
    bytes.set([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0xfe, 0x0d, 0x0a], 0);
    const file = new File([bytes], UPLOAD_NAME, { type: 'application/pdf' });
    const up = await alice.queryWithFiles(`INSERT INTO ${t} (id, title, f) VALUES ($1, $2, FILE("report"))`, { report: file }, ['d1', 'report']);
    eq(up.results.at(-1).row_count, 1, 'uploaded');

    const rows = await alice.queryRows(`SELECT id, title, f FROM ${t} WHERE id = $1`, t, ['d1']);
    eq(rows.length, 1);
    ok(rows[0] instanceof kalam.KalamRow, 'a KalamRow');
    eq(rows[0].data.id, 'd1', 'row.data');
    const ref = rows[0].file('f');
    ok(ref instanceof kalam.FileRef, 'row.file() is a FileRef');
    eq(ref.name, UPLOAD_NAME, 'original name kept');
    eq(ref.size, bytes.length, 'size');
    ok(/^f\d{4}$/.test(ref.sub), `subfolder ${ref.sub}`);
    ok(/^\d+$/.test(ref.id), 'snowflake id as string');
    eq(ref.stored_name, `${ref.id}${UPLOAD_STORED_SUFFIX}`, 'stored name');
    eq(ref.relativeUrl(), `/v1/files/${cfg.ns}/docs/${ref.sub}/${ref.stored_name}`, 'the server route, by stored name');
    eq(ref.downloadUrl(), `${cfg.url}/v1/files/${cfg.ns}/docs/${ref.sub}/${ref.stored_name}`, 'absolute URL');
    const blob = await ref.download();
    ok(blob instanceof Blob, 'download() gives a Blob');
    eq(blob.size, bytes.length, 'downloaded size');
    const got = new Uint8Array(await blob.arrayBuffer());
    ok(got.every((b, i) => b === bytes[i]), 'the bytes match');
    // The same file through queryAll/asFile (the table comes from the SQL).
    const cell = (await alice.queryOne(`SELECT f FROM ${t} WHERE id = 'd1'`)).f;
    const ref2 = cell.asFile();
    eq(ref2.relativeUrl(), ref.relativeUrl(), 'asFile() locates the file by the queried table');
    eq((await ref2.download()).size, bytes.length);
    // Bob, with the same path, gets his own (empty) scope: FILE_NOT_FOUND, typed.
    const bob = basic(kalam, cfg, 'bob');
    const bobRef = kalam.KalamCellValue.from(ref.toJSON()).asFile();
    ok(bobRef === null || bobRef, 'a FileRef without a client');
    const rows2 = await bob.queryRows(`SELECT f FROM ${t}`, t);
    eq(rows2.length, 0, 'bob has no docs');
    // Root reads alice's file with user_id.
    const root = rootClient(kalam, cfg);
    const asRoot = (await root.executeAsUser(`SELECT f FROM ${t} WHERE id = 'd1'`, cfg.users.alice.id));
    const rootRef = kalam.rowsOf(asRoot)[0].f.asFile();
    const rootBlob = await rootRef.download({ userId: cfg.users.alice.id });
    eq(rootBlob.size, bytes.length, 'root downloads with userId');
    // The official SDK's signature: onProgress as the 4th argument.
    const progress = [];
    const small = new Blob([Uint8Array.from([1, 2, 3])], { type: 'application/octet-stream' });
    await alice.queryWithFiles(`INSERT INTO ${t} (id, title, f) VALUES ('d2', 'blob', FILE('bin'))`, { bin: small }, [], (p) => progress.push(p));
    const d2 = (await alice.queryRows(`SELECT f FROM ${t} WHERE id = 'd2'`, t))[0].file('f');
    eq(d2.name, 'bin', 'a Blob is named after its placeholder');
    eq(d2.stored_name, `${d2.id}-bin.bin`, 'no extension → .bin');
    deepEq(Array.from(new Uint8Array(await (await d2.download()).arrayBuffer())), [1, 2, 3]);
    if (typeof XMLHttpRequest !== 'undefined') ok(progress.length > 0 && progress.at(-1).percent === 100, `upload progress reported: ${show(progress)}`);
    // Upload errors are typed.
    await rejects(kalam, alice.queryWithFiles(`INSERT INTO ${t} (id, f) VALUES ('d3', FILE("missing"))`, {}, []), { retryable: false }, 'placeholder without a file');
  },

  async 'an expired token mid-session is renewed once and the call succeeds'(kalam, cfg) {
    const t = `${cfg.ns}.notes`;
    // Basic credentials: refresh token (also expired) → re-login.
    const alice = basic(kalam, cfg, 'alice');
    await alice.insert(t, { id: 'e1', body: 'before' });
    const before = await alice.getAccessToken();
    await sleep(1100); // the fault works at second granularity
    await fault(cfg, { action: 'expire_tokens' });
    eq((await alice.queryOne(`SELECT body FROM ${t} WHERE id = 'e1'`)).body.asString(), 'before', 'the read succeeds after renewal');
    ok((await alice.getAccessToken()) !== before, 'a new token');
    // A write after expiry is retried once too (the server refused it before running it).
    await sleep(1100);
    await fault(cfg, { action: 'expire_tokens' });
    await alice.insert(t, { id: 'e2', body: 'after' });
    eq((await alice.queryAll(`SELECT id FROM ${t} WHERE id = 'e2'`)).length, 1, 'the write ran exactly once');


    // JWT from an authProvider: the provider is asked again, once, for 10 concurrent calls.
    let calls = 0;
    const viaProxy = kalam.createClient({
      url: cfg.proxyUrl,
      authProvider: async () => {
        calls += 1;
        const login = await rawLogin(cfg, cfg.users.alice.id, cfg.users.alice.password);
        return kalam.Auth.jwt(login.access_token);
      },
    });
    eq((await viaProxy.queryAll(`SELECT id FROM ${t} WHERE id = 'e1'`)).length, 1);
    eq(calls, 1, 'provider asked once up front');
    await sleep(1100);
    await fault(cfg, { action: 'expire_tokens' });
    await proxy(cfg, {});
    const results = await Promise.all(Array.from({ length: 10 }, () => viaProxy.queryOne(`SELECT body FROM ${t} WHERE id = 'e1'`)));
    ok(results.every((r) => r.body.asString() === 'before'), 'all 10 succeed');
    eq(calls, 2, 'single flight: the provider was asked once for all 10 expired calls');
    const stats = await proxy(cfg);
    eq(stats.counts['POST /v1/api/sql'], 20, '10 rejected + 10 retried requests, no more');

    // Basic credentials through the proxy: one refresh/login for 10 concurrent expired calls.
    const bob = kalam.createClient({ url: cfg.proxyUrl, authProvider: async () => kalam.Auth.basic(cfg.users.bob.id, cfg.users.bob.password) });
    await bob.query('SELECT 1');
    await sleep(1100);
    await fault(cfg, { action: 'expire_tokens' });
    await proxy(cfg, {});
    await Promise.all(Array.from({ length: 10 }, () => bob.query('SELECT 1')));
    const s2 = await proxy(cfg);
    const refreshes = s2.counts['POST /v1/api/auth/refresh'] ?? 0;
    const logins = s2.counts['POST /v1/api/auth/login'] ?? 0;
    ok(refreshes <= 1 && logins <= 1 && refreshes + logins >= 1,
      `one renewal for 10 calls (a refresh, falling back to one login when the refresh token expired too): ${show(s2.counts)}`);
    eq(s2.counts['POST /v1/api/sql'], 20, '10 rejected + 10 retried');

    // A fixed JWT with no way to renew: typed, not retried forever.
    const fixed = kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.jwt(before) });
    await rejects(kalam, fixed.query('SELECT 1'), { code: 'TOKEN_EXPIRED', status: 401, retryable: false }, 'expired fixed JWT');
  },

  async 'an upload after an expired token is renewed and sent once more'(kalam, cfg) {
    const alice = basic(kalam, cfg, 'alice');
    await alice.query('SELECT 1');
    // With and without a progress callback (XMLHttpRequest in browsers, fetch elsewhere).
    for (const [i, fourth] of [[1, undefined], [2, () => {}]]) {
      await sleep(1100);
      await fault(cfg, { action: 'expire_tokens' });
      await alice.queryWithFiles(`INSERT INTO ${cfg.ns}.docs (id, f) VALUES ($1, FILE('x'))`, { x: new Blob(['abc']) }, [`up${i}`], fourth);
      const ref = (await alice.queryOne(`SELECT f FROM ${cfg.ns}.docs WHERE id = $1`, [`up${i}`])).f.asFile();
      eq(await (await ref.download()).text(), 'abc', `upload ${i} after expiry`);
    }
  },

  async 'a wrong password is a typed error, and the client stays usable'(kalam, cfg) {
    const carol = cfg.users.carol;
    let password = 'definitely-wrong';
    const client = kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.basic(carol.id, password) });
    const err = await rejects(kalam, client.query('SELECT 1'), { status: 401, retryable: false }, 'wrong password');
    eq(err.code, 'UNAUTHORIZED', 'wrong password code');
    await rejects(kalam, client.login(), { code: 'UNAUTHORIZED', status: 401 }, 'login() with a wrong password');
    await rejects(kalam, kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.basic('no-such-user', 'x') }).query('SELECT 1'),
      { code: 'UNAUTHORIZED', status: 401 }, 'unknown user');
    // Concurrent calls share one rejected login.
    const viaProxy = kalam.createClient({ url: cfg.proxyUrl, authProvider: async () => kalam.Auth.basic(carol.id, 'also-wrong') });
    await proxy(cfg, {});
    const all = await Promise.allSettled(Array.from({ length: 5 }, () => viaProxy.query('SELECT 1')));
    deepEq(all.map((r) => r.status === 'rejected' && r.reason.code), Array(5).fill('UNAUTHORIZED'), 'all five rejected');
    deepEq((await proxy(cfg)).counts, { 'POST /v1/api/auth/login': 1 }, 'one login for five calls, no SQL sent');
    // No credentials at all: the server's code.
    const anon = kalam.createClient({ url: cfg.url, authProvider: async () => kalam.Auth.none() });
    await rejects(kalam, anon.query('SELECT 1'), { code: 'MISSING_AUTHORIZATION', status: 401 }, 'no credentials');
    // A provider that throws: typed, retryable.
    const broken = kalam.createClient({ url: cfg.url, authProvider: async () => { throw new Error('vault offline'); } });
    const perr = await rejects(kalam, broken.query('SELECT 1'), { code: 'AUTH_FAILED' }, 'throwing provider');
    ok(perr.message.includes('vault offline'), 'the provider error message is kept');
    // The same client works once the provider returns the right password.
    password = carol.password;
    eq((await client.queryOne('SELECT 1 AS one')).one.asInt(), 1, 'recovers with the right password');
  },

  async 'an unreachable server is NETWORK and retryable'(kalam, cfg) {
    const client = kalam.createClient({ url: cfg.deadUrl, authProvider: async () => kalam.Auth.jwt('x.y.z'), maxRetries: 1, timeoutMs: 5000 });
    await rejects(kalam, client.query('SELECT 1'), { code: 'NETWORK', retryable: true }, 'closed port');
    const basicClient = kalam.createClient({ url: cfg.deadUrl, authProvider: async () => kalam.Auth.basic('a', 'b'), maxRetries: 0 });
    await rejects(kalam, basicClient.query('SELECT 1'), { code: 'NETWORK', retryable: true }, 'login to a closed port');
    await rejects(kalam, basicClient.login(), { code: 'NETWORK', retryable: true }, 'login() to a closed port');
    await rejects(kalam, client.insert('t', { id: 1 }), { code: 'NETWORK', retryable: true }, 'a write to a closed port');
  },

  async 'a server that never answers is TIMEOUT'(kalam, cfg) {
    await hangStats(cfg);
    const client = kalam.createClient({ url: cfg.hangUrl, authProvider: async () => kalam.Auth.jwt('x.y.z'), timeoutMs: 400, maxRetries: 0 });
    await rejects(kalam, client.query('SELECT 1'), { code: 'TIMEOUT', retryable: true }, 'default timeout');
    await rejects(kalam, client.query('SELECT 1', [], { timeoutMs: 150 }), { code: 'TIMEOUT', retryable: true }, 'per-call timeout');
    await rejects(kalam, client.insert('t', { id: 1 }), { code: 'TIMEOUT', retryable: true }, 'write timeout');
    const files = kalam.createClient({ url: cfg.hangUrl, authProvider: async () => kalam.Auth.jwt('x.y.z'), timeoutMs: 300 });
    await rejects(kalam, files.queryWithFiles("INSERT INTO a.b (f) VALUES (FILE('x'))", { x: new Blob(['x']) }), { code: 'TIMEOUT' }, 'upload timeout');
    const login = kalam.createClient({ url: cfg.hangUrl, authProvider: async () => kalam.Auth.basic('a', 'b'), timeoutMs: 300, maxRetries: 0 });
    await hangStats(cfg);
    await rejects(kalam, login.query('SELECT 1'), { code: 'TIMEOUT', retryable: true }, 'login timeout');
    eq((await hangStats(cfg)).connections, 1, 'one login attempt');
    // Five calls waiting for the same hanging login share its failure; they do not each
    // try again in turn (which would take 5 timeouts for the last one).
    const five = await Promise.allSettled(Array.from({ length: 5 }, () => login.query('SELECT 1')));
    deepEq(five.map((r) => r.status === 'rejected' && r.reason.code), Array(5).fill('TIMEOUT'), 'all five time out');
    eq((await hangStats(cfg)).connections, 1, 'one login attempt for five waiting calls');
  },

  async 'an AbortSignal aborts: ABORTED'(kalam, cfg) {
    await hangStats(cfg);
    const client = kalam.createClient({ url: cfg.hangUrl, authProvider: async () => kalam.Auth.jwt('x.y.z'), timeoutMs: 10_000 });
    const ac = new AbortController();
    const pending = client.query('SELECT 1', [], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await rejects(kalam, pending, { code: 'ABORTED', retryable: false }, 'aborted in flight');
    const pre = new AbortController();
    pre.abort();
    await rejects(kalam, client.query('SELECT 1', [], { signal: pre.signal }), { code: 'ABORTED' }, 'aborted before sending');
    const ac2 = new AbortController();
    const write = client.delete('t', 'x', { signal: ac2.signal });
    setTimeout(() => ac2.abort(), 50);
    await rejects(kalam, write, { code: 'ABORTED' }, 'aborted write');
    const ac3 = new AbortController();
    const up = client.queryWithFiles("INSERT INTO a.b (f) VALUES (FILE('x'))", { x: new Blob(['x']) }, [], { signal: ac3.signal });
    setTimeout(() => ac3.abort(), 50);
    await rejects(kalam, up, { code: 'ABORTED' }, 'aborted upload');
    // The same with a progress callback (XMLHttpRequest in browsers), in flight and before.
    const ac5 = new AbortController();
    const up2 = client.queryWithFiles("INSERT INTO a.b (f) VALUES (FILE('x'))", { x: new Blob(['x']) }, [], { signal: ac5.signal, onProgress: () => {} });
    setTimeout(() => ac5.abort(), 50);
    await rejects(kalam, up2, { code: 'ABORTED' }, 'aborted upload with progress');
    await rejects(kalam, client.queryWithFiles("INSERT INTO a.b (f) VALUES (FILE('x'))", { x: new Blob(['x']) }, [], { signal: pre.signal, onProgress: () => {} }),
      { code: 'ABORTED' }, 'pre-aborted upload with progress');
    const files = kalam.createClient({ url: cfg.hangUrl, authProvider: async () => kalam.Auth.jwt('x.y.z'), timeoutMs: 200 });
    await rejects(kalam, files.queryWithFiles("INSERT INTO a.b (f) VALUES (FILE('x'))", { x: new Blob(['x']) }, [], () => {}), { code: 'TIMEOUT' }, 'upload with progress times out');
    // An aborted signal is honoured before any login is sent.
    const fresh = kalam.createClient({ url: cfg.proxyUrl, authProvider: async () => kalam.Auth.basic(cfg.users.alice.id, cfg.users.alice.password) });
    await proxy(cfg, {});
    await rejects(kalam, fresh.query('SELECT 1', [], { signal: pre.signal }), { code: 'ABORTED' }, 'aborted before the first login');
    await rejects(kalam, fresh.insert(`${cfg.ns}.notes`, { id: 'never' }, { signal: pre.signal }), { code: 'ABORTED' }, 'aborted write before login');
    deepEq((await proxy(cfg)).counts, {}, 'nothing was sent');
    // Aborting a request the real server has (held by the proxy): ABORTED, not retried,
    // and a sibling call on the same client still gets its answer.
    const held = kalam.createClient({ url: cfg.proxyUrl, authProvider: async () => kalam.Auth.basic(cfg.users.alice.id, cfg.users.alice.password), maxRetries: 3 });
    await held.query('SELECT 1');
    await proxy(cfg, { barrier: 100, barrierTimeoutMs: 1000 });
    const ac6 = new AbortController();
    const victim = held.query('SELECT 6 AS six', [], { signal: ac6.signal });
    const sibling = held.queryOne('SELECT 7 AS seven');
    setTimeout(() => ac6.abort(), 100);
    await rejects(kalam, victim, { code: 'ABORTED' }, 'aborted while the server has it');
    eq((await sibling).seven.asInt(), 7, 'the sibling completes');
    eq((await proxy(cfg, {})).counts['POST /v1/api/sql'], 2, 'the aborted read was not retried');
    // A call waiting for another call's (hanging) login is released by its own abort, and
    // before that login ends.
    const slowLogin = kalam.createClient({ url: cfg.hangUrl, authProvider: async () => kalam.Auth.basic('a', 'b'), timeoutMs: 3000, maxRetries: 0 });
    const order = [];
    const first = slowLogin.query('SELECT 1').catch((e) => { order.push(`first:${e.code}`); });
    await sleep(20);
    const ac7 = new AbortController();
    const waiting = slowLogin.query('SELECT 1', [], { signal: ac7.signal }).catch((e) => { order.push(`waiting:${e.code}`); });
    setTimeout(() => ac7.abort(), 100);
    await Promise.all([first, waiting]);
    deepEq(order, ['waiting:ABORTED', 'first:TIMEOUT'], 'the aborted waiter settles first; the login still runs for the other');
    // A real server answer after an aborted sibling: the client is not poisoned.
    const alice = basic(kalam, cfg, 'alice');
    const ac4 = new AbortController();
    ac4.abort();
    await rejects(kalam, alice.query('SELECT 1', [], { signal: ac4.signal }), { code: 'ABORTED' });
    eq((await alice.queryOne('SELECT 2 AS two')).two.asInt(), 2);
  },

  async 'an abort while parked on another call\'s sign-in rejects at once, uploads with progress too'(kalam, cfg) {
    let release;
    const gate = new Promise((resolve) => { release = resolve; });
    const u = cfg.users.alice;
    const client = kalam.createClient({ url: cfg.url, timeoutMs: 10_000, authProvider: async () => { await gate; return kalam.Auth.basic(u.id, u.password); } });
    const first = client.query('SELECT 1 AS one'); // asks the provider, which hangs until released
    for (const extra of [{}, { onProgress: () => {} }]) {
      const ac = new AbortController();
      const started = Date.now();
      const up = client.queryWithFiles(`INSERT INTO ${cfg.ns}.docs (id, f) VALUES ($1, FILE('x'))`, { x: new Blob(['abc']) }, ['parked'], { ...extra, signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      await rejects(kalam, up, { code: 'ABORTED' }, `parked upload aborted (${Object.keys(extra)})`);
      ok(Date.now() - started < 2_000, `rejected at once, not after the sign-in (${Date.now() - started} ms)`);
    }
    release();
    eq((await first).status, 'success', 'the sign-in went on for the call that started it');
  },

  async 'reads retry on 503; writes are not retried blindly'(kalam, cfg) {
    const alice = kalam.createClient({ url: cfg.proxyUrl, authProvider: async () => kalam.Auth.basic(cfg.users.alice.id, cfg.users.alice.password), maxRetries: 5 });
    await alice.query('SELECT 1'); // logged in before the fault
    await proxy(cfg, {});
    await fault(cfg, { action: 'refuse_connections', ms: 400 });
    eq((await alice.queryOne('SELECT 3 AS three')).three.asInt(), 3, 'the read succeeds after the refusal ends');
    const s = await proxy(cfg);
    ok(s.counts['POST /v1/api/sql'] >= 2, `the read was retried (${s.counts['POST /v1/api/sql']} attempts)`);
    await proxy(cfg, {});
    await fault(cfg, { action: 'refuse_connections', ms: 400 });
    const err = await rejects(kalam, alice.insert(`${cfg.ns}.notes`, { id: 'r1', body: 'x' }), { status: 503, retryable: true }, 'a write during refusal');
    ok(err.code, 'code');
    eq((await proxy(cfg)).counts['POST /v1/api/sql'], 1, 'the write was sent once');
    await sleep(500);
  },

  async 'official SDK helpers: initialize, getAuthType, wrapRow, namespace option, FileRef helpers'(kalam, cfg) {
    const u = cfg.users.dave;
    // The namespace option: unqualified names everywhere, FILE cells included.
    const client = kalam.createClient({ url: cfg.url, namespace: cfg.ns, authProvider: async () => kalam.Auth.basic(u.id, u.password) });
    eq(client.getAuthType(), null, 'no credentials asked yet');
    await client.initialize();
    await client.insert('notes', { id: 'n1', body: 'in my namespace' });
    eq(client.getAuthType(), 'basic', 'basic after the first call');
    eq((await client.queryOne("SELECT body FROM notes WHERE id = 'n1'")).body.asString(), 'in my namespace');
    await client.update('notes', 'n1', { body: 'updated' });
    eq((await client.queryOne('SELECT body FROM notes')).body.asString(), 'updated');
    await client.queryWithFiles("INSERT INTO docs (id, f) VALUES ('nf', FILE('p'))", { p: new File([Uint8Array.from([7, 8, 9])], 'Photo 1.JPG', { type: 'image/jpeg' }) });
    const [row] = await client.queryRows("SELECT id, f FROM docs WHERE id = 'nf'", 'docs');
    const ref = row.file('f');
    eq(ref.relativeUrl(), `/v1/files/${cfg.ns}/docs/${ref.sub}/${ref.id}-photo-1.jpg`, 'namespace from the client option');
    deepEq(Array.from(new Uint8Array(await (await ref.download()).arrayBuffer())), [7, 8, 9], 'download in the client namespace');
    eq(row.cell('id').asString(), 'nf', 'KalamRow.cell');
    eq(row.typedData.id.asString(), 'nf', 'KalamRow.typedData');
    const wrapped = client.wrapRow((await client.queryAll("SELECT f FROM docs WHERE id = 'nf'"))[0], `${cfg.ns}.docs`);
    eq(wrapped.file('f').relativeUrl(), ref.relativeUrl(), 'wrapRow');
    await client.delete('notes', 'n1');
    eq(await client.queryOne('SELECT id FROM notes'), null, 'deleted in the client namespace');

    // FileRef helpers on raw wire values (what the official SDK parses).
    const wire = JSON.stringify({ id: '383266719688294400', sub: 'f0001', name: 'Report Q1 (final).PDF', size: 1048576, mime: 'application/pdf', sha256: 'ab' });
    const parsed = kalam.FileRef.from(wire);
    eq(parsed.storedName(), '383266719688294400-report-q1-final.pdf', 'stored name computed like the server');
    eq(kalam.storedFileName('1', '!!!'), '1.bin');
    eq(kalam.storedFileName('1', 'a.tar.gz'), '1-atar.gz');
    eq(parsed.relativePath(), 'f0001/383266719688294400-report-q1-final.pdf');
    eq(parsed.getDownloadUrl('http://h:1/', 'app', 'docs'), 'http://h:1/v1/files/app/docs/f0001/383266719688294400-report-q1-final.pdf');
    eq(parsed.isPdf(), true);
    eq(parsed.getTypeDescription(), 'PDF');
    eq(parsed.formatSize(), '1.0 MB');
    eq(kalam.parseFileRef(JSON.parse(wire)).id, '383266719688294400', 'parseFileRef of an object');
    eq(kalam.parseFileRefs([wire, null, 'nope']).length, 1, 'parseFileRefs skips non-files');
    eq(kalam.KalamCellValue.from(wire).asFileUrl('http://h', 'app', 'docs'), 'http://h/v1/files/app/docs/f0001/383266719688294400-report-q1-final.pdf');
    await rejects(kalam, parsed.download(), { code: 'INVALID_ARGUMENT' }, 'a FileRef without a client');

    // Cell predicates and DATE-only.
    const cell = kalam.KalamCellValue.from('2024-05-01');
    eq(cell.isString(), true);
    eq(cell.isNumber(), false);
    eq(cell.asDateOnly().toISOString(), '2024-05-01T00:00:00.000Z');
    eq(kalam.KalamCellValue.from(19844, 'Date').asDateOnly().toISOString(), '2024-05-01T00:00:00.000Z');
    eq(kalam.KalamCellValue.from([1]).isArray(), true);
    eq(kalam.KalamCellValue.from({ a: 1 }).isObject(), true);
    eq(kalam.KalamCellValue.from(true).isBool(), true);

    // Auth helpers.
    eq(kalam.buildAuthHeader(kalam.Auth.jwt('t')), 'Bearer t');
    eq(kalam.buildAuthHeader(kalam.Auth.none()), undefined);
    ok((() => { try { kalam.buildAuthHeader(kalam.Auth.basic('u', 'p')); return false; } catch (e) { return e instanceof kalam.KalamError; } })(), 'basic has no header');
    eq(kalam.encodeBasicAuth('ü', 'p:w'), 'w7w6cDp3', 'UTF-8 base64');
    eq(kalam.isAuthenticated(kalam.Auth.none()), false);
    eq(kalam.isAuthenticated(kalam.Auth.jwt('t')), true);
  },

  async 'concurrent calls run concurrently'(kalam, cfg) {
    const alice = kalam.createClient({ url: cfg.proxyUrl, authProvider: async () => kalam.Auth.basic(cfg.users.alice.id, cfg.users.alice.password) });
    // Browsers open at most 6 HTTP/1.1 connections per origin; Node has no such cap.
    const n = 20;
    const expected = cfg.env === 'node' ? n : 6;
    // The proxy holds every SQL request until `expected` are in flight at once (or 8 s
    // pass): a client that serialises its calls would peak at 1.
    await proxy(cfg, { barrier: expected, barrierTimeoutMs: 8000 });
    const rows = await Promise.all(Array.from({ length: n }, (_, i) => alice.queryOne('SELECT $1 AS i', [i])));
    deepEq(rows.map((r) => r.i.asInt()), Array.from({ length: n }, (_, i) => i), 'each call got its own answer');
    const s = await proxy(cfg, {});
    eq(s.barrierTimedOut, false, `the barrier filled (peak ${s.maxInFlight} in flight)`);
    ok(s.maxInFlight >= expected, `${s.maxInFlight} requests were in flight at once, want >= ${expected}`);
    eq(s.counts['POST /v1/api/auth/login'], 1, 'one login for 20 concurrent first calls');
  },
};

export async function runScenarios(kalam, cfg, only) {
  const results = [];
  for (const [name, fn] of Object.entries(scenarios)) {
    if (only && !only.includes(name)) continue;
    try {
      if (cfg.debug) console.info(`[e2e ${cfg.env}] ${name}`);
      await fn(kalam, cfg);
      results.push({ name, ok: true });
    } catch (e) {
      results.push({ name, ok: false, error: `${e?.name ?? 'Error'}: ${e?.message ?? e}${e?.code ? ` [code ${e.code}]` : ''}\n${e?.stack ?? ''}` });
    }
  }
  return results;
}
