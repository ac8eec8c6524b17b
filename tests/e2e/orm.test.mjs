// @kalam-wasm/orm as users get it: the packed client and orm tarballs installed with
// drizzle-orm into a fresh app folder (tests/e2e/orm/app.mjs), against the test server.
// The CLI generates schema.ts for a namespace with every column type and all table types;
// tsc --strict checks it with the type tests and the README example; the CRUD suite runs on
// the generated schema (compiled); live typed rows follow inserts, updates and deletes.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, promisify } from 'node:util';
import { root, testServer, rootSql } from './support.mjs';
import { ormApp } from './orm/app.mjs';
import { launchChromium } from '../support/browser.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';

const run = Math.random().toString(36).slice(2, 8);
const ns = `orm_${run}`;
const users = { alice: `alice_${run}`, bob: `bob_${run}`, svc: `svc_${run}` };
const password = 'Secret-orm-1';
const exec = promisify(execFile);

let server;
let app;
let m; // modules from the app folder: client, orm, pg (drizzle-orm/pg-core), d (drizzle-orm), ws
let schema; // the generated schema (bigint mode), compiled
let schemaText; // the generated schema (default string mode), compiled
const clients = [];

function client(user, pass = password) {
  const c = m.client.createClient({ url: server.url, authProvider: async () => m.client.Auth.basic(user, pass), WebSocket: m.ws.default });
  clients.push(c);
  return c;
}

const SETUP = [
  `CREATE NAMESPACE ${ns}`,
  `CREATE TABLE ${ns}.everything (
    id BIGINT PRIMARY KEY, flag BOOLEAN NOT NULL DEFAULT false, small SMALLINT, num INT, big BIGINT, f FLOAT, d DOUBLE,
    label TEXT, at TIMESTAMP DEFAULT NOW(), dt DATETIME, day DATE, tm TIME, doc JSON, raw BYTES, uid UUID, attachment FILE,
    vec EMBEDDING(3), price DECIMAL(12,3)
  ) WITH (TYPE = 'SHARED', ACCESS_LEVEL = 'PUBLIC')`,
  `CREATE TABLE ${ns}.notes (id TEXT PRIMARY KEY, topic TEXT NOT NULL, body TEXT, created_at TIMESTAMP DEFAULT NOW()) WITH (TYPE = 'USER')`,
  `CREATE TABLE ${ns}.members (team TEXT NOT NULL, member TEXT NOT NULL, role TEXT, PRIMARY KEY (team, member)) WITH (TYPE = 'USER')`,
  `CREATE TABLE ${ns}.events (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), kind TEXT NOT NULL) WITH (TYPE = 'STREAM', TTL_SECONDS = 3600)`,
  `CREATE USER '${users.alice}' WITH PASSWORD '${password}' ROLE user`,
  `CREATE USER '${users.bob}' WITH PASSWORD '${password}' ROLE user`,
  `CREATE USER '${users.svc}' WITH PASSWORD '${password}' ROLE service`,
];

async function cli(args) {
  const bin = join(app.dir, 'node_modules', '.bin', 'kalamdb-orm');
  try {
    const { stdout, stderr } = await exec(bin, args, { cwd: app.dir });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Runs tsc on the app's check/ folder; `outDir` compiles, otherwise only checks. */
async function tsc(files, outDir) {
  const tsconfig = join(app.dir, `tsconfig.${outDir ? 'build' : 'check'}.json`);
  writeFileSync(tsconfig, JSON.stringify({
    compilerOptions: {
      strict: true, target: 'ES2022', module: 'ES2022', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], types: [],
      skipLibCheck: true, ...(outDir ? { outDir, rootDir: join(app.dir, 'check') } : { noEmit: true }),
    },
    files,
  }));
  try {
    await exec(join(root, 'node_modules', '.bin', 'tsc'), ['-p', tsconfig], { cwd: app.dir });
    return { code: 0, output: '' };
  } catch (err) {
    return { code: err.code, output: `${err.stdout}${err.stderr}` };
  }
}

/** The README's ```sql setup and ```ts test blocks, renamed for this run. */
function readmeExample() {
  const readme = readFileSync(join(root, 'pkg-templates', 'orm', 'README.md'), 'utf8');
  const block = (info) => new RegExp(`^\`\`\`${info}\\n([\\s\\S]*?)^\`\`\`$`, 'm').exec(readme)?.[1];
  const rename = (s) => s.replace(/\bshop\b/g, `shop_${run}`).replace(/\balice\b/g, `reader_${run}`);
  return { setup: rename(block('sql setup')), code: rename(block('ts test')).replaceAll('http://localhost:8080', server.url) };
}

before(async () => {
  server = await testServer();
  app = ormApp();
  m = {
    client: await import(app.url('node_modules/@kalam-wasm/client/node.js')),
    orm: await import(app.url('node_modules/@kalam-wasm/orm/index.js')),
    pg: await import(app.url('node_modules/drizzle-orm/pg-core/index.js')),
    d: await import(app.url('node_modules/drizzle-orm/index.js')),
    proxy: await import(app.url('node_modules/drizzle-orm/pg-proxy/index.js')),
    ws: await import(app.url('node_modules/ws/wrapper.mjs')),
  };
  for (const s of SETUP) await rootSql(server, s);
  rmSync(join(app.dir, 'check'), { recursive: true, force: true });
  mkdirSync(join(app.dir, 'check'), { recursive: true });
  // Node 20 has no WebSocket: the example takes the `ws` package, which has no typings here.
  writeFileSync(join(app.dir, 'check', 'ws.d.ts'), "declare module 'ws' { const WebSocket: unknown; export default WebSocket; }\n");
});

after(async () => {
  for (const c of clients) await c.shutdown().catch(() => {});
  await server?.close();
});

test('kalamdb-orm generates the same schema.ts twice, every type mapped, table types and keys kept', { timeout: 60_000 }, async () => {
  const out = (name) => join(app.dir, 'check', name);
  const base = ['--url', server.url, '--user', 'root', '--password', server.rootPassword, '--namespace', ns];
  const first = await cli([...base, '--bigint-mode', 'bigint', '--include-system-columns', '--out', out('schema.ts')]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /4 tables -> /);
  const again = await cli([...base, '--bigint-mode', 'bigint', '--include-system-columns', '--out', out('schema-again.ts')]);
  assert.equal(again.code, 0, again.stderr);
  const text = readFileSync(out('schema.ts'), 'utf8');
  assert.equal(readFileSync(out('schema-again.ts'), 'utf8'), text, 'deterministic');
  rmSync(out('schema-again.ts'));
  const v = `orm_${run}`;
  assert.equal(text, `// Generated by kalamdb-orm (@kalam-wasm/orm) from SHOW TABLES. Regenerate after schema changes.
import { bytes, embedding, file, getKalamTableConfig, kSystemColumns, kTable } from '@kalam-wasm/orm';
import { bigint, boolean, date, doublePrecision, integer, jsonb, numeric, primaryKey, real, smallint, text, time, timestamp, uuid } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';

export const ${v}_events = kTable.stream("${ns}.events", {
  ...kSystemColumns(["_seq"] as const),
  id: bigint("id", { mode: "bigint" }).default(sql\`SNOWFLAKE_ID()\`).primaryKey(),
  kind: text("kind").notNull(),
});
export const ${v}_eventsConfig = getKalamTableConfig(${v}_events)!;
export type Orm${run[0].toUpperCase()}${run.slice(1)}Events = typeof ${v}_events.$inferSelect;
export type NewOrm${run[0].toUpperCase()}${run.slice(1)}Events = typeof ${v}_events.$inferInsert;

export const ${v}_everything = kTable.shared("${ns}.everything", {
  ...kSystemColumns(["_seq","_deleted"] as const),
  id: bigint("id", { mode: "bigint" }).primaryKey(),
  flag: boolean("flag").default(sql\`\`).notNull(),
  small: smallint("small"),
  num: integer("num"),
  big: bigint("big", { mode: "bigint" }),
  f: real("f"),
  d: doublePrecision("d"),
  label: text("label"),
  at: timestamp("at", { mode: 'date' }).default(sql\`NOW()\`),
  dt: timestamp("dt", { mode: 'date' }),
  day: date("day", { mode: 'date' }),
  tm: time("tm"),
  doc: jsonb("doc"),
  raw: bytes("raw"),
  uid: uuid("uid"),
  attachment: file("attachment"),
  vec: embedding("vec", 3),
  price: numeric("price", { precision: 12, scale: 3 }),
});
export const ${v}_everythingConfig = getKalamTableConfig(${v}_everything)!;
export type Orm${run[0].toUpperCase()}${run.slice(1)}Everything = typeof ${v}_everything.$inferSelect;
export type NewOrm${run[0].toUpperCase()}${run.slice(1)}Everything = typeof ${v}_everything.$inferInsert;

export const ${v}_members = kTable.user("${ns}.members", {
  ...kSystemColumns(["_seq","_deleted"] as const),
  team: text("team").notNull(),
  member: text("member").notNull(),
  role: text("role"),
}, (t) => [primaryKey({ columns: [t.team, t.member] })]);
export const ${v}_membersConfig = getKalamTableConfig(${v}_members)!;
export type Orm${run[0].toUpperCase()}${run.slice(1)}Members = typeof ${v}_members.$inferSelect;
export type NewOrm${run[0].toUpperCase()}${run.slice(1)}Members = typeof ${v}_members.$inferInsert;

export const ${v}_notes = kTable.user("${ns}.notes", {
  ...kSystemColumns(["_seq","_deleted"] as const),
  id: text("id").primaryKey(),
  topic: text("topic").notNull(),
  body: text("body"),
  created_at: timestamp("created_at", { mode: 'date' }).default(sql\`NOW()\`),
});
export const ${v}_notesConfig = getKalamTableConfig(${v}_notes)!;
export type Orm${run[0].toUpperCase()}${run.slice(1)}Notes = typeof ${v}_notes.$inferSelect;
export type NewOrm${run[0].toUpperCase()}${run.slice(1)}Notes = typeof ${v}_notes.$inferInsert;
`);
  // From DESCRIBE instead: the same tables and types (the test server's DESCRIBE has no defaults).
  const described = await cli([...base, '--bigint-mode', 'bigint', '--include-system-columns', '--describe', '--out', out('schema-described.ts')]);
  assert.equal(described.code, 0, described.stderr);
  const noDefaults = (s) => s.replace(/\.default\(sql`[^`]*`\)/g, '').replace("import { sql } from 'drizzle-orm';\n", '');
  assert.equal(readFileSync(out('schema-described.ts'), 'utf8'), noDefaults(text));
  rmSync(out('schema-described.ts'));
  // The default mode: BIGINT as exact text, no system columns, no aliases.
  const plain = await cli([...base, '--no-type-aliases', '--out', out('schema-string.ts')]);
  assert.equal(plain.code, 0, plain.stderr);
  const plainText = readFileSync(out('schema-string.ts'), 'utf8');
  assert.match(plainText, /^ {2}big: text\("big"\),$/m);
  assert.doesNotMatch(plainText, /\$inferSelect|kSystemColumns/);
});

test('kalamdb-orm: a clear PERMISSION_DENIED where DESCRIBE needs a role the user lacks; usage errors', { timeout: 60_000 }, async () => {
  const r = await cli(['--url', server.url, '--user', users.alice, '--password', password, '--namespace', ns, '--describe', '--out', join(app.dir, 'never.ts')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^kalamdb-orm: PERMISSION_DENIED: DESCRIBE orm_\w+\.\w+ needs a role this user lacks \(.+\); generate the schema as a dba or system user$/m);
  const bad = await cli(['--url', server.url, '--password', 'x', '--bigint-mode', 'huge']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--bigint-mode must be string, bigint or number/);
  const wrong = await cli(['--url', server.url, '--user', 'root', '--password', 'not-it', '--out', join(app.dir, 'never.ts')]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /kalamdb-orm: UNAUTHORIZED: /);
});

test('tsc --strict: the generated schemas, the type tests (@ts-expect-error) and the README example', { timeout: 60_000 }, async () => {
  cpSync(join(root, 'tests', 'e2e', 'orm', 'types.ts'), join(app.dir, 'check', 'types.ts'));
  const { setup, code } = readmeExample();
  for (const s of setup.split(/;\s*$/m).map((x) => x.trim()).filter(Boolean)) await rootSql(server, s);
  writeFileSync(join(app.dir, 'check', 'readme.ts'), code);
  const files = ['ws.d.ts', 'schema.ts', 'schema-string.ts', 'types.ts', 'readme.ts'].map((f) => join(app.dir, 'check', f));
  const checked = await tsc(files);
  assert.equal(checked.code, 0, checked.output);
  // The checker does check: a wrong value type in a generated table is an error.
  writeFileSync(join(app.dir, 'check', 'bad.ts'), `import { ${ns}_notes } from './schema';\nexport const n: typeof ${ns}_notes.$inferInsert = { id: 1, topic: 'x' };\n`);
  const bad = await tsc([join(app.dir, 'check', 'schema.ts'), join(app.dir, 'check', 'bad.ts')]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.output, /bad\.ts.*TS2322/);
  const built = await tsc(files, join(app.dir, 'build'));
  assert.equal(built.code, 0, built.output);
  schema = await import(app.url('build/schema.js'));
  schemaText = await import(app.url('build/schema-string.js'));
});

test('the README example runs and prints what its comments say', { timeout: 60_000 }, async () => {
  const { code } = readmeExample();
  const expected = code.split('\n').filter((l) => l.includes('console.log(')).map((l) => /\/\/ → (.*)$/.exec(l)[1]);
  const printed = [];
  const original = console.log;
  console.log = (...args) => printed.push(format(...args));
  try {
    await Promise.race([import(app.url('build/readme.js')), new Promise((_, fail) => setTimeout(() => fail(new Error(`the README example did not finish; printed: ${printed}`)), 20_000).unref())]);
  } finally {
    console.log = original;
  }
  assert.deepEqual(printed, expected);
});

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

test('CRUD through the driver on the generated schema: every type, 64-bit edges, exact values', { timeout: 60_000 }, async () => {
  const { d } = m;
  const t = schema[`${ns}_everything`];
  const root = client('root', server.rootPassword);
  const db = m.orm.kalamDriver(root);
  const at = new Date('2024-05-01T12:34:56.789Z');
  const rows = [
    { id: I64_MAX, flag: true, small: 32767, num: 2147483647, big: I64_MIN, f: 1.5, d: -2.25, label: "it's \"quoted\" ; --", at, dt: at,
      day: new Date('2024-05-01'), tm: '23:59:59.999999', doc: { s: '123', n: 1, list: [true, null] }, raw: new Uint8Array([0, 1, 127, 128, 255]),
      vec: [0.5, -1.25, 3], price: '123456789.125' },
    { id: I64_MIN, flag: false, small: -32768, num: -2147483648, big: I64_MAX, f: 0, d: 1e-300, label: '', at: new Date('1970-01-01T00:00:00.001Z'),
      dt: null, day: new Date('1969-12-31'), tm: '00:00:00', doc: '123', raw: new Uint8Array([]), vec: [0, 0, 0], price: '-0.001' },
    { id: 9007199254740993n, big: 9007199254740993n, label: null }, // everything else left to defaults / NULL
    { id: 0n, big: 0n, label: 'zero' },
  ];
  await db.insert(t).values(rows.slice(0, 2));
  await db.insert(t).values(rows.slice(2));
  const back = await db.select().from(t).orderBy(t.id).limit(10);
  assert.deepEqual(back.map((r) => r.id), [I64_MIN, 0n, 9007199254740993n, I64_MAX]);
  const byId = new Map(back.map((r) => [r.id, r]));
  for (const want of rows.slice(0, 2)) {
    const got = byId.get(want.id);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, `${want.id} ${k}`);
    assert.equal(typeof got._seq, 'string');
    assert.ok(m.client.SeqId.from(got._seq).toBigInt() > 0n);
    assert.equal(got._deleted, false);
  }
  const defaults = byId.get(9007199254740993n);
  assert.equal(defaults.flag, false);
  assert.ok(defaults.at instanceof Date && Math.abs(defaults.at.getTime() - Date.now()) < 60_000, `default NOW(): ${defaults.at}`);
  for (const k of ['small', 'num', 'f', 'd', 'label', 'dt', 'day', 'tm', 'doc', 'raw', 'uid', 'attachment', 'vec', 'price']) assert.equal(defaults[k], null, k);

  // The same rows through the default (string) schema: BIGINT as exact digits.
  const ts = schemaText[`${ns}_everything`];
  const texts = await db.select({ id: ts.id, big: ts.big }).from(ts).where(d.eq(ts.id, String(I64_MAX)));
  assert.deepEqual(texts, [{ id: String(I64_MAX), big: String(I64_MIN) }]);

  // Other column modes: microseconds kept as text, BIGINT as a (rounded) number.
  await root.query(`UPDATE ${ns}.everything SET dt = '2024-05-01T12:34:56.789123Z' WHERE id = 0`);
  const modes = m.orm.kTable.shared(`${ns}.everything`, { id: m.pg.bigint('id', { mode: 'number' }), dt: m.pg.timestamp('dt', { mode: 'string' }) });
  assert.deepEqual(await db.select().from(modes).where(d.eq(modes.id, 0)), [{ id: 0, dt: '2024-05-01T12:34:56.789123' }]);
  assert.deepEqual(await db.select({ id: modes.id }).from(modes).where(d.between(modes.id, 9007199254740000, 9007199254750000)), [{ id: 9007199254740992 }],
    '9007199254740993 rounds in number mode');

  // Filters with bound values, aggregates, projections, a self join.
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.and(d.gt(t.big, 0n), d.lt(t.big, I64_MAX))), [{ id: 9007199254740993n }]);
  assert.deepEqual(await db.select({ label: t.label }).from(t).where(d.eq(t.label, rows[0].label)), [{ label: rows[0].label }]);
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.inArray(t.id, [0n, I64_MIN])).orderBy(d.desc(t.id)), [{ id: 0n }, { id: I64_MIN }]);
  assert.deepEqual(await db.select({ n: d.count(), top: d.max(t.id), small: d.min(t.small) }).from(t), [{ n: 4, top: I64_MAX, small: -32768 }]);
  assert.equal(await db.$count(t, d.isNull(t.price)), 2);
  assert.deepEqual(await db.select({ id: t.id }).from(t).orderBy(t.id).limit(2).offset(1), [{ id: 0n }, { id: 9007199254740993n }]);
  // ORDER BY … LIMIT comes back in key order from KalamDB 0.4.3 (§12.5): the driver sorts
  // again, as the server's SQL means it (NULLS LAST ascending, FIRST descending; BIGINT and
  // DECIMAL exactly).
  assert.deepEqual((await db.select({ id: t.id, small: t.small }).from(t).orderBy(d.desc(t.small)).limit(3)).map((r) => r.small), [null, null, 32767]);
  assert.deepEqual((await db.select({ id: t.id, label: t.label }).from(t).orderBy(d.asc(t.label), d.desc(t.id)).limit(4)).map((r) => r.label),
    ['', rows[0].label, 'zero', null]);
  assert.deepEqual((await db.select({ big: t.big }).from(t).orderBy(d.desc(t.big)).limit(2)).map((r) => r.big), [I64_MAX, 9007199254740993n]);
  // An ORDER BY column that is not selected is fetched too (and dropped) to sort by it.
  assert.deepEqual(await db.select({ label: t.label }).from(t).orderBy(d.desc(t.big)).limit(2), [{ label: '' }, { label: null }]);
  assert.deepEqual(await db.select({ label: t.label }).from(t).where(d.isNotNull(t.label)).orderBy(d.asc(t.small), t.id).limit(3).offset(1),
    [{ label: rows[0].label }, { label: 'zero' }]);
  assert.deepEqual((await db.select({ id: t.id, price: t.price }).from(t).where(d.isNotNull(t.price)).orderBy(t.price).limit(5)).map((r) => r.price), ['-0.001', '123456789.125']);
  // Temporal filters with bound Date/text values.
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.and(d.gte(t.at, new Date('2024-05-01T12:34:56.789Z')), d.lt(t.at, new Date('2024-05-02')))), [{ id: I64_MAX }]);
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.between(t.at, new Date('1970-01-01'), new Date('1970-01-02'))), [{ id: I64_MIN }]);
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.eq(t.day, new Date('1969-12-31'))), [{ id: I64_MIN }]);
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.gt(t.tm, '12:00:00')), [{ id: I64_MAX }]);
  const other = m.pg.alias(t, 'other');
  const joined = await db.select({ a: t.id, b: other.label }).from(t).innerJoin(other, d.eq(t.id, other.id)).where(d.eq(t.id, 0n));
  assert.deepEqual(joined, [{ a: 0n, b: 'zero' }]);

  // Rows giving different columns: one INSERT per column set, defaults applied where omitted.
  await db.insert(t).values([{ id: 101n, label: 'has label' }, { id: 102n, flag: true }, { id: 103n, label: 'again' }]);
  assert.deepEqual(await db.select({ id: t.id, label: t.label, flag: t.flag }).from(t).where(d.between(t.id, 100n, 200n)).orderBy(t.id).limit(10),
    [{ id: 101n, label: 'has label', flag: false }, { id: 102n, label: null, flag: true }, { id: 103n, label: 'again', flag: false }]);
  await db.delete(t).where(d.between(t.id, 100n, 200n));

  // update and delete with bound values
  await db.update(t).set({ price: '999999999.999', doc: [1, 'two'], raw: new Uint8Array([9]), tm: '12:00:00.000001' }).where(d.eq(t.id, 0n));
  const [updated] = await db.select({ price: t.price, doc: t.doc, raw: t.raw, tm: t.tm }).from(t).where(d.eq(t.id, 0n));
  assert.deepEqual(updated, { price: '999999999.999', doc: [1, 'two'], raw: new Uint8Array([9]), tm: '12:00:00.000001' });
  await db.update(t).set({ label: 'early' }).where(d.lt(t.at, new Date('2000-01-01')));
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.eq(t.label, 'early')), [{ id: I64_MIN }]);
  await db.delete(t).where(d.eq(t.id, 0n));
  assert.deepEqual(await db.select({ id: t.id }).from(t).where(d.eq(t.id, 0n)), []);
  assert.equal(await db.$count(t), 3);

  // db.execute: plain rows as the client decodes them.
  const raw = await db.execute(d.sql`SELECT COUNT(*) AS n FROM ${t}`);
  assert.deepEqual(raw, [{ n: '3' }]);
});

test('FILE through the driver: an upload reads back as a FileRef that downloads; a FileRef can be written', { timeout: 60_000 }, async () => {
  const { d } = m;
  const t = schema[`${ns}_everything`];
  const root = client('root', server.rootPassword);
  const db = m.orm.kalamDriver(root);
  const pdf = new File([new Uint8Array([0x25, 0x50, 0x44, 0x46])], 'Report.pdf', { type: 'application/pdf' });
  await root.queryWithFiles(`INSERT INTO ${ns}.everything (id, attachment) VALUES (77, FILE("doc"))`, { doc: pdf });
  const [row] = await db.select({ attachment: t.attachment }).from(t).where(d.eq(t.id, 77n));
  assert.ok(row.attachment instanceof m.client.FileRef);
  assert.equal(row.attachment.name, 'Report.pdf');
  assert.equal(row.attachment.relativeUrl(), `/v1/files/${ns}/everything/${row.attachment.sub}/${row.attachment.stored_name}`);
  assert.deepEqual([...new Uint8Array(await (await row.attachment.download()).arrayBuffer())], [0x25, 0x50, 0x44, 0x46]);
  await db.insert(t).values({ id: 78n, attachment: row.attachment });
  const [copy] = await db.select({ attachment: t.attachment }).from(t).where(d.eq(t.id, 78n));
  assert.equal(copy.attachment.id, row.attachment.id);
  assert.equal(copy.attachment.sha256, row.attachment.sha256);
});

test('USER tables: isolation per user, asUser and executeAsUser through the driver', { timeout: 60_000 }, async () => {
  const { d } = m;
  const notes = schema[`${ns}_notes`];
  const alice = m.orm.kalamDriver(client(users.alice));
  const bob = m.orm.kalamDriver(client(users.bob));
  await alice.insert(notes).values({ id: 'n1', topic: 'mine' });
  await bob.insert(notes).values({ id: 'n1', topic: 'also mine' }); // the same key in Bob's partition
  assert.deepEqual((await alice.select({ id: notes.id, topic: notes.topic }).from(notes)), [{ id: 'n1', topic: 'mine' }]);
  assert.deepEqual((await bob.select({ id: notes.id, topic: notes.topic }).from(notes)), [{ id: 'n1', topic: 'also mine' }]);
  await bob.delete(notes).where(d.eq(notes.id, 'n1'));
  assert.equal(await alice.$count(notes), 1, 'Bob deletes only his own row');

  const svc = client(users.svc);
  const asAlice = m.orm.kalamDriver(svc, { asUser: users.alice });
  await asAlice.insert(notes).values({ id: 'n2', topic: 'from svc' });
  assert.deepEqual((await asAlice.select({ id: notes.id }).from(notes).orderBy(notes.id)).map((r) => r.id), ['n1', 'n2']);
  assert.deepEqual(await m.orm.kalamDriver(svc).select({ id: notes.id }).from(notes), [], 'svc itself has no notes');
  const res = await m.orm.executeAsUser(svc, alice.select({ topic: notes.topic }).from(notes).where(d.eq(notes.id, 'n2')), users.alice);
  assert.equal(res.results[0].as_user, users.alice);
  assert.deepEqual(res.results[0].rows, [['from svc']]);

  // kTable's systemColumns option adds them at run time; the config records the table.
  const withSystem = m.orm.kTable.user(`${ns}.notes`, { id: m.pg.text('id').primaryKey(), topic: m.pg.text('topic') }, { systemColumns: true });
  const [n1] = await alice.select().from(withSystem).where(d.eq(withSystem.id, 'n1'));
  assert.deepEqual(Object.keys(n1).sort(), ['_deleted', '_seq', 'id', 'topic']);
  assert.equal(n1._deleted, false);
  assert.deepEqual(m.orm.getKalamTableConfig(withSystem), { qualifiedName: `${ns}.notes`, namespace: ns, name: 'notes', tableId: `${ns}:notes`, tableType: 'user', systemColumns: ['_seq', '_deleted'] });
  assert.equal(schema[`${ns}_notesConfig`].tableType, 'user');
  assert.equal(schema[`${ns}_eventsConfig`].tableType, 'stream');

  // composite keys and STREAM tables
  const members = schema[`${ns}_members`];
  await alice.insert(members).values([{ team: 'core', member: 'a', role: 'dev' }, { team: 'core', member: 'b' }]);
  await alice.update(members).set({ role: 'lead' }).where(d.and(d.eq(members.team, 'core'), d.eq(members.member, 'b')));
  assert.deepEqual((await alice.select({ member: members.member, role: members.role }).from(members).orderBy(members.member)),
    [{ member: 'a', role: 'dev' }, { member: 'b', role: 'lead' }]);
  const events = schema[`${ns}_events`];
  await alice.insert(events).values([{ kind: 'opened' }, { kind: 'closed' }]);
  const ev = await alice.select().from(events).orderBy(events.kind);
  assert.deepEqual(ev.map((e) => e.kind), ['closed', 'opened']);
  assert.ok(ev.every((e) => typeof e.id === 'bigint' && e.id > 0n && typeof e._seq === 'string'));
});

test('errors are KalamErrors: server refusals, unsupported SQL forms, the official drizzle(kalamDriver()) form', { timeout: 60_000 }, async () => {
  const { d, orm, client: kc } = m;
  const t = schema[`${ns}_everything`];
  const notes = schema[`${ns}_notes`];
  const bobClient = client(users.bob);
  const bob = orm.kalamDriver(bobClient);
  const isKalam = (code) => (err) => err instanceof kc.KalamError && err.code === code;
  await assert.rejects(bob.insert(t).values({ id: 5n }), isKalam('PERMISSION_DENIED'), 'a user may not write a shared table');
  const missing = orm.kTable.shared(`${ns}.nope`, { id: m.pg.text('id') });
  await assert.rejects(bob.select().from(missing), isKalam('SQL_EXECUTION_ERROR'));
  await assert.rejects(bob.insert(notes).values({ id: 'x', topic: 't' }).returning(), (e) => isKalam('INVALID_ARGUMENT')(e) && /RETURNING/.test(e.message));
  await assert.rejects(bob.insert(notes).values({ id: 'x', topic: 't' }).onConflictDoNothing(), (e) => isKalam('INVALID_ARGUMENT')(e) && /ON CONFLICT/.test(e.message));
  await assert.rejects(bob.update(notes).set({ body: 'b' }).returning(), isKalam('INVALID_ARGUMENT'));
  await assert.rejects(bob.transaction(async () => {}), isKalam('INVALID_ARGUMENT'));
  await assert.rejects(bob.insert(notes).values({ id: 'n9', topic: null }), isKalam('SQL_EXECUTION_ERROR'), 'NOT NULL');
  const uid = orm.kTable.shared(`${ns}.everything`, { id: m.pg.bigint('id', { mode: 'bigint' }), uid: m.pg.uuid('uid') });
  await assert.rejects(orm.kalamDriver(client('root', server.rootPassword)).insert(uid).values({ id: 90n, uid: '0190f1a2-1111-7222-8333-444455556666' }),
    isKalam('SQL_EXECUTION_ERROR'), 'KalamDB cannot insert a UUID from text');
  const offline = orm.kalamDriver(kc.createClient({ url: 'http://127.0.0.1:9', auth: kc.Auth.basic('x', 'y'), maxRetries: 0 }));
  await assert.rejects(offline.select().from(notes), isKalam('NETWORK'));
  assert.throws(() => orm.embedding('v', 0), isKalam('INVALID_ARGUMENT'));

  // The official spelling: Drizzle's own database on the callback; Drizzle wraps errors.
  const official = m.proxy.drizzle(orm.kalamDriver(bobClient));
  await official.insert(notes).values({ id: 'o1', topic: 'official' });
  assert.deepEqual(await official.select({ topic: notes.topic }).from(notes).where(d.eq(notes.id, 'o1')), [{ topic: 'official' }]);
  await assert.rejects(official.select().from(missing), (e) => e.cause instanceof kc.KalamError && e.cause.code === 'SQL_EXECUTION_ERROR');
});

/** Collects the callbacks of a live table; `until(pred)` waits for the rows to match. */
function liveRecorder() {
  const calls = [];
  let waiters = [];
  const onRows = (rows, change) => {
    calls.push({ rows: rows.map((r) => ({ ...r })), change });
    waiters = waiters.filter((w) => !(w.pred(calls.at(-1)) && (w.ok(), true)));
  };
  const until = (pred, what) => new Promise((ok, fail) => {
    if (calls.length && pred(calls.at(-1))) return ok();
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${what}; last rows ${JSON.stringify(calls.at(-1)?.rows, (k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`)), 10_000);
    waiters.push({ pred, ok: () => { clearTimeout(timer); ok(); } });
  });
  return { calls, onRows, until };
}

test('live tables: typed rows follow inserts, updates and deletes; where, orderBy, subscribeTable', { timeout: 60_000 }, async () => {
  const { d, orm } = m;
  const notes = schema[`${ns}_notes`];
  const carolName = `carol_${run}`;
  await rootSql(server, `CREATE USER '${carolName}' WITH PASSWORD '${password}' ROLE user`);
  const carol = client(carolName);
  const db = orm.kalamDriver(carol);
  await db.insert(notes).values([{ id: 'a', topic: 'live', body: 'first' }, { id: 'z', topic: 'other' }]);
  const rec = liveRecorder();
  const stop = await orm.liveTable(db, notes, { where: d.eq(notes.topic, 'live'), orderBy: d.desc(notes.id) }, rec.onRows);
  await rec.until((c) => c.change.initial, 'the snapshot');
  assert.deepEqual(rec.calls[0].rows.map((r) => [r.id, r.body]), [['a', 'first']]);
  const first = rec.calls[0].rows[0];
  assert.ok(first.created_at instanceof Date && typeof first._seq === 'string' && first._deleted === false);
  await db.insert(notes).values({ id: 'b', topic: 'live', body: 'second' });
  await rec.until((c) => c.rows.length === 2, 'the insert');
  assert.deepEqual(rec.calls.at(-1).rows.map((r) => r.id), ['b', 'a'], 'orderBy desc(id)');
  await db.update(notes).set({ body: 'edited' }).where(d.eq(notes.id, 'a'));
  await rec.until((c) => c.rows.some((r) => r.body === 'edited'), 'the update');
  assert.equal(rec.calls.at(-1).change.updated.length, 1);
  await db.delete(notes).where(d.eq(notes.id, 'b'));
  await rec.until((c) => c.rows.length === 1, 'the delete');
  assert.deepEqual(rec.calls.at(-1).rows.map((r) => [r.id, r.body]), [['a', 'edited']]);
  assert.ok(rec.calls.every((c) => c.rows.every((r) => r.topic === 'live')), 'the filter holds');
  await stop();

  // The official argument order on a client, and subscribeTable's typed events.
  const events = [];
  const off = await orm.subscribeTable(carol, notes, (e) => events.push(e), { where: d.eq(notes.id, 'a') });
  const official = liveRecorder();
  const stop2 = await orm.liveTable(carol, notes, official.onRows);
  await official.until((c) => c.change.initial && c.rows.length === 2, 'the official-order snapshot');
  await db.update(notes).set({ body: 'again' }).where(d.eq(notes.id, 'a'));
  await official.until((c) => c.rows.some((r) => r.body === 'again'), 'the update (official order)');
  for (let i = 0; i < 200 && !events.some((e) => e.type === 'change'); i++) await new Promise((r) => setTimeout(r, 25));
  const change = events.find((e) => e.type === 'change');
  assert.ok(change, `a change event (${events.map((e) => e.type)})`);
  assert.equal(change.rows[0].body, 'again');
  assert.ok(change.rows[0].created_at instanceof Date);
  await off();
  await stop2();

  // orderBy is the live SQL's ORDER BY (the core's ordered window sorts), and with it limit
  // is the SQL's LIMIT: the first N of the order, not the client's newest-N option.
  const sent = [];
  const probe = { live: async (sql, _onRows, o) => (sent.push([sql, o.limit]), async () => {}), liveEvents: async () => async () => {} };
  await orm.liveTable(probe, notes, { orderBy: [d.desc(notes.id), notes.topic], limit: 2 }, () => {});
  await orm.liveTable(probe, notes, { limit: 3 }, () => {});
  assert.deepEqual(sent, [[`SELECT * FROM "${ns}"."notes" ORDER BY "id" desc, "topic" LIMIT 2`, undefined], [`SELECT * FROM "${ns}"."notes"`, 3]]);
  await assert.rejects(orm.liveTable(probe, notes, { orderBy: [] }, () => {}), (e) => e.code === 'INVALID_ARGUMENT');
  const top = liveRecorder();
  const stop3 = await orm.liveTable(db, notes, { orderBy: d.desc(notes.id), limit: 2 }, top.onRows);
  await top.until((c) => c.change.initial, 'the top-2 snapshot');
  assert.deepEqual(top.calls.at(-1).rows.map((r) => r.id), ['z', 'a']);
  await db.insert(notes).values([{ id: 'y', topic: 'other' }, { id: 'b', topic: 'live' }]);
  await top.until((c) => c.rows.map((r) => r.id).join() === 'z,y', 'y enters the window, a leaves');
  await db.delete(notes).where(d.eq(notes.id, 'z'));
  await top.until((c) => c.rows.map((r) => r.id).join() === 'y,b', 'the window refills after z left');
  await stop3();
});

test('in headless Chromium: the installed packages load by an import map; the driver and a live table run', { timeout: 60_000 }, async () => {
  const dir = join(app.dir, 'browser');
  mkdirSync(dir, { recursive: true });
  const imports = {
    '@kalam-wasm/client': '/node_modules/@kalam-wasm/client/index.js',
    '@kalam-wasm/orm': '/node_modules/@kalam-wasm/orm/index.js',
    'drizzle-orm': '/node_modules/drizzle-orm/index.js',
    'drizzle-orm/pg-core': '/node_modules/drizzle-orm/pg-core/index.js',
    'drizzle-orm/pg-proxy': '/node_modules/drizzle-orm/pg-proxy/index.js',
  };
  writeFileSync(join(dir, 'index.html'), `<!doctype html><script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module">
import { createClient, Auth, KalamError } from '@kalam-wasm/client';
import { kalamDriver, kTable, liveTable } from '@kalam-wasm/orm';
import { text, timestamp } from 'drizzle-orm/pg-core';
import { eq } from 'drizzle-orm';
const q = new URLSearchParams(location.search);
const notes = kTable.user(q.get('table'), { id: text('id').primaryKey(), topic: text('topic').notNull(), created_at: timestamp('created_at', { mode: 'date' }) });
try {
  const client = createClient({ url: q.get('url'), authProvider: async () => Auth.basic(q.get('user'), q.get('password')) });
  const db = kalamDriver(client);
  await db.insert(notes).values({ id: 'web', topic: 'browser' });
  const [row] = await db.select().from(notes).where(eq(notes.id, 'web'));
  const live = await new Promise((resolve) => { liveTable(db, notes, { where: eq(notes.topic, 'browser') }, (rows) => resolve(rows)); });
  const error = await db.select().from(kTable('nope.nope', { id: text('id') })).catch((e) => e);
  window.__result = { topic: row.topic, isDate: row.created_at instanceof Date, live: live.map((r) => r.id), kalamError: error instanceof KalamError, code: error.code };
  await client.shutdown();
} catch (e) {
  window.__result = { failed: String(e && e.stack || e) };
}
</script>`);
  const web = await serveStatic(app.dir);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const user = `web_${run}`;
    await rootSql(server, `CREATE USER '${user}' WITH PASSWORD '${password}' ROLE user`);
    const query = new URLSearchParams({ url: server.url, user, password, table: `${ns}.notes` });
    await page.goto(`${web.url}/browser/index.html?${query}`);
    await page.waitForFunction(() => window.__result, null, { timeout: 30_000 });
    assert.deepEqual(await page.evaluate(() => window.__result), { topic: 'browser', isDate: true, live: ['web'], kalamError: true, code: 'SQL_EXECUTION_ERROR' });
  } finally {
    await browser.close();
    await web.close();
  }
});

test('the size report lists the orm package (JS gzip, within its budget)', { timeout: 60_000 }, async () => {
  const { reportSizes } = await import('../../scripts/size-report.mjs');
  const original = console.log;
  console.log = () => {};
  let rows;
  try {
    rows = reportSizes(['orm']);
  } finally {
    console.log = original;
  }
  assert.equal(rows.length, 1);
  assert.equal(rows[0].bundle, '@kalam-wasm/orm');
  assert.equal(rows[0].kind, 'js');
  assert.ok(rows[0].gzip > 1000 && rows[0].gzip <= rows[0].budget, `gzip ${rows[0].gzip} of ${rows[0].budget}`);
});
