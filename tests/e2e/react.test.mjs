// @kalam-wasm/react and the client's live-query controllers as users get them: the PACKED
// client and react tarballs installed with real React 18 and 19 into fresh Vite apps
// (tests/e2e/react/), run in headless Chromium with every root in <StrictMode>, against the
// test server. One regression test per item of the official SDK's bug list (kalamdb #272),
// plus unmount during loading, a query switching SQL, two components sharing one
// subscription, optimistic insert/update/delete confirmed and refused by the server, and the
// controller in Node on the same packed client.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { startTestServer, rootSql } from '../support/testserver.mjs';
import { launchChromium } from '../support/browser.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { root } from '../packages/toolbox.mjs';
import { packTarballs, reactApp, readmeExamples, REACT_VERSIONS } from './react/app.mjs';

const run = Math.random().toString(36).slice(2, 8);
const ns = `rx_${run}`;
const password = 'Secret-react-1';
const TABLES = ['b8', 'b1', 'strict', 'unmount', 'loading', 'multi', 'order', 'share', 'switchq', 'opt', 'conn', 'refetch', 'node', 'drizzle'];

let server;
let sql;
let readme; // the README's examples, renamed for this run
let browser;
const apps = {}; // major -> { page, statics, user, dir }

before(async () => {
  server = await startTestServer();
  sql = await rootSql(server.url);
  await sql(`CREATE NAMESPACE ${ns}`);
  for (const t of TABLES) await sql(`CREATE TABLE ${ns}.t_${t} (id TEXT PRIMARY KEY, title TEXT, n BIGINT) WITH (TYPE = 'USER')`);
  await sql(`CREATE TABLE ${ns}.nums (id BIGINT PRIMARY KEY, v TEXT) WITH (TYPE = 'USER')`);
  // Users may read a PUBLIC shared table but not write it: the server's refusal is the forced failure.
  await sql(`CREATE TABLE ${ns}.locked (id TEXT PRIMARY KEY, title TEXT) WITH (TYPE = 'SHARED', ACCESS_LEVEL = 'PUBLIC')`);
  await sql(`INSERT INTO ${ns}.locked (id, title) VALUES ('L1', 'one'), ('L2', 'two')`);
  readme = readmeExamples((text) => text.replace(/\bapp(?=[.;])/g, `app_${run}`).replace(/\balice\b/g, `alice_${run}`)
    .replaceAll('http://localhost:8080', server.url));
  for (const statement of readme.setup) await sql(statement);
  const tarballs = packTarballs();
  browser = await launchChromium();
  for (const major of Object.keys(REACT_VERSIONS)) {
    const user = `u${major}_${run}`;
    await sql(`CREATE USER '${user}' WITH PASSWORD '${password}' ROLE user`);
    const { dir, dist } = reactApp(major, tarballs, readme.examples);
    const statics = await serveStatic(dist);
    const page = await browser.newPage();
    page.errors = [];
    page.on('pageerror', (err) => page.errors.push(String(err)));
    await page.goto(`${statics.url}/index.html`);
    await page.waitForFunction(() => window.ready === true);
    apps[major] = { page, statics, user, dir };
  }
});

after(async () => {
  await browser?.close();
  for (const a of Object.values(apps)) await a.statics.close();
  await server?.stop();
});

/** Runs `fn` in the page of React `major` with `{ url, ns, user, pass, ...extra }`. */
function inPage(major, fn, extra = {}) {
  const a = apps[major];
  return a.page.evaluate(fn, { url: server.url, ns, user: a.user, pass: password, ...extra });
}

for (const major of Object.keys(REACT_VERSIONS)) {
  const R = `React ${major}`;

  test(`${R}: the app runs the installed React version`, async () => {
    const version = await inPage(major, () => window.T.version);
    assert.equal(version, REACT_VERSIONS[major]);
    // A development build, where <StrictMode> runs every effect twice on mount.
    assert.equal(await inPage(major, () => window.T.until(() => window.T.strictEffects() >= 2, 'probe effects').then(() => window.T.strictEffects())), 2);
  });

  test(`${R}: B8 the first render says loading (never idle), then live with the snapshot`, async () => {
    const seen = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_b8`, { id: 'a', title: 'A', n: 1 });
      const seen = [];
      function P() {
        const { rows, state } = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_b8` });
        seen.push(`${state.status}:${rows.length}:${state.loading}`);
        return null;
      }
      const m = mount(c, h(P));
      await until(() => seen.includes('live:1:false'), 'live:1');
      m.unmount();
      await c.shutdown();
      return seen;
    });
    assert.equal(seen[0], 'loading:0:true');
    assert.ok(!seen.some((s) => s.startsWith('idle')), seen.join(' '));
    assert.ok(!seen.some((s) => s.startsWith('live:0')), `no empty live flash: ${seen.join(' ')}`);
  });

  test(`${R}: B1 inline lambdas and parent re-renders do not resubscribe; deps do`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, React, R, client, mount, until, sleep } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_b1`, { id: 'a', title: 'A', n: 1 });
      let force;
      let setDep;
      let ctx;
      function Child({ dep }) {
        ctx = R.useLiveQuery({
          query: `SELECT * FROM ${ns}.t_b1`,
          getKey: (row) => row.id.asString(), // a new function every render
          mapRow: (row) => row,
          select: (context) => context,
          deps: [dep],
        });
        return h('span', null, String(ctx.rows.length));
      }
      function Parent() {
        const [, setN] = React.useState(0);
        const [dep, setD] = React.useState(1);
        force = () => setN((n) => n + 1);
        setDep = setD;
        return h(Child, { dep });
      }
      const m = mount(c, h(Parent));
      await until(() => ctx?.state.status === 'live', 'live');
      const first = c.liveCalls;
      for (let i = 0; i < 5; i++) {
        force();
        await sleep(20);
      }
      const afterRenders = c.liveCalls;
      const subsAfterRenders = c.getSubscriptions().length;
      setDep(2);
      await until(() => c.liveCalls > afterRenders && ctx.state.status === 'live', 'resubscribed');
      await until(() => c.getSubscriptions().length === 1, 'old subscription gone');
      const afterDeps = c.liveCalls;
      m.unmount();
      await c.shutdown();
      return { first, afterRenders, subsAfterRenders, afterDeps };
    });
    assert.equal(r.first, 1, 'StrictMode mount: one live() call');
    assert.equal(r.afterRenders, 1, 'five parent re-renders with inline lambdas: no new subscription');
    assert.equal(r.subsAfterRenders, 1);
    assert.equal(r.afterDeps, 2, 'a deps change: exactly one new subscription');
  });

  test(`${R}: StrictMode start/dispose race leaves exactly one subscription; controller dispose before start resolved unsubscribes`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, K, client, mount, until, sleep, ids } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_strict`, { id: 's1', title: 'S', n: 1 });
      let ctx;
      function P() {
        ctx = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_strict` });
        return null;
      }
      const m = mount(c, h(P));
      await until(() => ctx?.state.status === 'live', 'live');
      await sleep(50);
      const hook = { liveCalls: c.liveCalls, subs: c.getSubscriptions().length, rows: ids(ctx.rows) };
      // The controller alone: start() and dispose() in the same tick, five times over.
      const controllers = [];
      for (let i = 0; i < 5; i++) {
        const q = K.createLiveQuery(c, `SELECT * FROM ${ns}.t_strict`);
        const started = q.start();
        await q.dispose();
        await started;
        controllers.push(q);
      }
      await sleep(100);
      const afterRace = { subs: c.getSubscriptions().length, statuses: controllers.map((q) => q.getSnapshot().status) };
      m.unmount();
      await until(() => c.getSubscriptions().length === 0, 'all gone after unmount');
      await c.shutdown();
      return { hook, afterRace };
    });
    assert.deepEqual(r.hook, { liveCalls: 1, subs: 1, rows: ['s1'] });
    assert.equal(r.afterRace.subs, 1, 'controllers disposed while subscribing left no subscription behind');
    assert.deepEqual(r.afterRace.statuses, Array(5).fill('disposed'));
  });

  test(`${R}: unmount unsubscribes; later changes never reach the unmounted component`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until, sleep } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_unmount`, { id: 'u1', title: 'U', n: 1 });
      let renders = 0;
      let ctx;
      function P() {
        renders++;
        ctx = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_unmount` });
        return null;
      }
      const m = mount(c, h(P));
      await until(() => ctx?.state.status === 'live' && ctx.rows.length === 1, 'live');
      const subsMounted = c.getSubscriptions().length;
      m.unmount();
      const rendersAtUnmount = renders;
      await until(() => c.getSubscriptions().length === 0, 'unsubscribed', 2000);
      await c.insert(`${ns}.t_unmount`, { id: 'u2', title: 'U2', n: 2 });
      await sleep(300);
      await c.shutdown();
      return { subsMounted, rendersAfter: renders - rendersAtUnmount };
    });
    assert.equal(r.subsMounted, 1);
    assert.equal(r.rendersAfter, 0);
  });

  test(`${R}: unmount during loading (snapshot held back by the server) unsubscribes and never renders again`, async () => {
    await sql.fault({ action: 'stall_frames', on: true });
    let phase1;
    try {
      phase1 = await inPage(major, async ({ url, ns, user, pass }) => {
        const { h, R, client, mount, until, sleep } = window.T;
        const c = client(url, user, pass);
        window.__load = { c, renders: 0, statuses: [] };
        function P() {
          window.__load.renders++;
          const { state } = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_loading` });
          window.__load.statuses.push(state.status);
          return null;
        }
        // Unmounted in the same tick as mounted (before live() resolved) ...
        const quick = mount(c, h(P));
        quick.unmount();
        // ... and one unmounted while its snapshot is still loading.
        const m = mount(c, h(P));
        await until(() => c.liveCalls >= 1, 'subscribing');
        await sleep(300);
        const loading = window.__load.statuses.at(-1);
        m.unmount();
        window.__load.rendersAtUnmount = window.__load.renders;
        return { loading, liveCalls: c.liveCalls };
      });
    } finally {
      await sql.fault({ action: 'stall_frames', on: false });
    }
    const phase2 = await inPage(major, async () => {
      const { until, sleep } = window.T;
      const s = window.__load;
      await until(() => s.c.getSubscriptions().length === 0, 'unsubscribed', 3000);
      await sleep(500);
      const out = { subs: s.c.getSubscriptions().length, rendersAfter: s.renders - s.rendersAtUnmount };
      await s.c.shutdown();
      return out;
    });
    assert.equal(phase1.loading, 'loading');
    assert.ok(phase1.liveCalls <= 2, `live() calls: ${phase1.liveCalls}`);
    assert.deepEqual(phase2, { subs: 0, rendersAfter: 0 });
  });

  test(`${R}: B5 a failing query in <LiveQueries> leaves its siblings' rows and updates alone`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until, ids } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_multi`, { id: 'm1', title: 'M', n: 1 });
      let ctx;
      const queries = {
        good: { query: `SELECT * FROM ${ns}.t_multi` },
        bad: { query: `SELECT * FROM ${ns}.does_not_exist` },
      };
      const m = mount(c, h(R.LiveQueries, { queries }, (context) => {
        ctx = context;
        return h('b', null, String(context.good.rows.length));
      }));
      await until(() => ctx?.good.state.status === 'live' && ctx.bad.state.status === 'error', 'good live, bad failed');
      await c.insert(`${ns}.t_multi`, { id: 'm2', title: 'M2', n: 2 });
      await until(() => ctx.good.rows.length === 2, 'sibling still live');
      const out = {
        good: ids(ctx.good.rows), goodStatus: ctx.good.state.status, goodError: ctx.good.state.error?.code ?? null,
        badStatus: ctx.bad.state.status, badError: ctx.bad.state.error?.code, aggregateError: ctx.state.error?.code,
        loading: ctx.state.loading, text: m.el.textContent,
      };
      m.unmount();
      await c.shutdown();
      return out;
    });
    assert.deepEqual(r, {
      good: ['m1', 'm2'], goodStatus: 'live', goodError: null, badStatus: 'error', badError: 'NOT_FOUND', aggregateError: 'NOT_FOUND',
      loading: false, text: '2',
    });
  });

  test(`${R}: an updated row keeps its place (optimistic and server versions); nothing jumps to the end`, async () => {
    const orders = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until, ids } = window.T;
      const c = client(url, user, pass);
      for (const id of ['a', 'b', 'c']) await c.insert(`${ns}.t_order`, { id, title: id, n: 1 });
      let ctx;
      const orders = [];
      function P() {
        ctx = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_order` });
        if (ctx.rows.length) orders.push(ids(ctx.rows).join(''));
        return null;
      }
      const m = mount(c, h(P));
      await until(() => ctx?.rows.length === 3, 'three rows');
      await ctx.update(`${ns}.t_order`, 'a', { title: 'A!' }); // through the hook (optimistic)
      await c.update(`${ns}.t_order`, 'b', { title: 'B!' }); // by the client directly (server path only)
      await until(() => ctx.rows.map((r) => r.title.asString()).join('') === 'A!B!c' && ctx.rows[0]._seq, 'both updates from the server');
      m.unmount();
      await c.shutdown();
      return orders;
    });
    assert.ok(orders.length >= 3);
    assert.deepEqual([...new Set(orders)], ['abc']);
  });

  test(`${R}: two components with the same query share one subscription`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, React, R, client, mount, until, sleep } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_share`, { id: 'x1', title: 'X', n: 1 });
      const ctx = {};
      let setBoth;
      function View({ name }) {
        ctx[name] = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_share` });
        return null;
      }
      function P() {
        const [both, set] = React.useState(true);
        setBoth = set;
        return h(React.Fragment, null, h(View, { name: 'a' }), both ? h(View, { name: 'b' }) : null);
      }
      const m = mount(c, h(P));
      await until(() => ctx.a?.rows.length === 1 && ctx.b?.rows.length === 1, 'both loaded');
      const mounted = { liveCalls: c.liveCalls, subs: c.getSubscriptions().length };
      await c.insert(`${ns}.t_share`, { id: 'x2', title: 'X2', n: 2 });
      await until(() => ctx.a.rows.length === 2 && ctx.b.rows.length === 2, 'both updated');
      const sameRows = ctx.a.rows === ctx.b.rows;
      setBoth(false);
      await sleep(100);
      const oneLeft = c.getSubscriptions().length;
      await c.insert(`${ns}.t_share`, { id: 'x3', title: 'X3', n: 3 });
      await until(() => ctx.a.rows.length === 3, 'remaining one updated');
      m.unmount();
      await until(() => c.getSubscriptions().length === 0, 'none after unmount', 2000);
      await c.shutdown();
      return { mounted, sameRows, oneLeft, liveCalls: c.liveCalls };
    });
    assert.deepEqual(r, { mounted: { liveCalls: 1, subs: 1 }, sameRows: true, oneLeft: 1, liveCalls: 1 });
  });

  test(`${R}: a query switching SQL shows the new query's rows only and drops the old subscription`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, React, R, client, mount, until, ids } = window.T;
      const c = client(url, user, pass);
      for (const [id, title] of [['x1', 'x'], ['y1', 'y'], ['y2', 'y']]) await c.insert(`${ns}.t_switchq`, { id, title, n: 1 });
      let ctx;
      let setWhich;
      let switched = false;
      const afterSwitch = [];
      function P() {
        const [which, set] = React.useState('x');
        setWhich = set;
        ctx = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_switchq WHERE title = '${which}'` });
        if (switched) afterSwitch.push(`${which}:${ctx.state.status}:${ids(ctx.rows).join(',')}`);
        return null;
      }
      const m = mount(c, h(P));
      await until(() => ctx?.state.status === 'live', 'x live');
      const before = ids(ctx.rows);
      switched = true;
      setWhich('y');
      await until(() => ctx.state.status === 'live' && ctx.rows.length === 2, 'y live');
      await until(() => c.getSubscriptions().length === 1, 'old subscription gone', 2000);
      const subs = c.getSubscriptions().map((s) => s.sql);
      m.unmount();
      await c.shutdown();
      return { before, after: ids(ctx.rows), afterSwitch, subs };
    });
    assert.deepEqual(r.before, ['x1']);
    assert.deepEqual(r.after, ['y1', 'y2']);
    for (const s of r.afterSwitch) assert.match(s, /^y:(loading:|live:y1,y2)$/, `after the switch: ${r.afterSwitch.join(' ')}`);
    assert.equal(r.subs.length, 1);
    assert.match(r.subs[0], /title = 'y'/);
  });

  test(`${R}: optimistic insert/update/delete show at once and are reconciled with the server's rows (no flicker, no duplicate)`, async () => {
    await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until, ids } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_opt`, { id: 'p1', title: 'old', n: 1 });
      await c.insert(`${ns}.t_opt`, { id: 'p2', title: 'doomed', n: 2 });
      const log = [];
      const o = { c, log, mark: -1 };
      window.__opt = o;
      function P() {
        o.ctx = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_opt` });
        log.push(o.ctx.rows.map((r) => `${r.id.asString()}=${r.title.asString()}${r._seq ? '' : '*'}`).join(','));
        return null;
      }
      o.m = mount(c, h(P));
      await until(() => ids(o.ctx.rows).join() === 'p1,p2', 'loaded');
      o.p1Seq = o.ctx.rows[0]._seq.asString();
    });
    // The server's change notifications are held back: what shows now is the overlay.
    await sql.fault({ action: 'stall_frames', on: true });
    let during;
    try {
      during = await inPage(major, async ({ ns }) => {
        const { until } = window.T;
        const o = window.__opt;
        o.mark = o.log.length;
        const ins = o.ctx.insert(`${ns}.t_opt`, { id: 'o1', title: 'new', n: 5 });
        await until(() => o.log.at(-1).includes('o1=new*'), 'insert shown before the server answered');
        const shownBeforeAnswer = o.log.at(-1);
        await ins;
        await o.ctx.update(`${ns}.t_opt`, 'p1', { title: 'upd' });
        await o.ctx.remove(`${ns}.t_opt`, 'p2');
        const st = () => o.ctx.state;
        await until(() => o.log.at(-1) === 'p1=upd,o1=new*' && !st().inserting && !st().updating.size && !st().deleting.size, 'all three in the overlay, none in flight');
        return { shownBeforeAnswer, rows: o.log.at(-1) };
      });
    } finally {
      await sql.fault({ action: 'stall_frames', on: false });
    }
    const r = await inPage(major, async () => {
      const { until, sleep } = window.T;
      const o = window.__opt;
      const p1 = () => o.ctx.rows.find((row) => row.id.asString() === 'p1');
      await until(() => o.log.at(-1) === 'p1=upd,o1=new' && p1()._seq.asString() !== o.p1Seq, 'the server rows replaced the overlay');
      await sleep(200);
      const out = { log: o.log.slice(o.mark), error: o.ctx.state.error?.code ?? null, p1Server: p1()._seq.asString() !== o.p1Seq };
      o.m.unmount();
      await o.c.shutdown();
      return out;
    });
    assert.equal(during.shownBeforeAnswer, 'p1=old,p2=doomed,o1=new*');
    assert.equal(during.rows, 'p1=upd,o1=new*');
    assert.equal(r.p1Server, true);
    assert.equal(r.error, null);
    // Every render from the first optimistic one on: o1 exactly once; after the update p1 never
    // old again; after the delete p2 never back; ending with the server's rows.
    const from = r.log.findIndex((s) => s.includes('o1='));
    assert.ok(from >= 0, r.log.join(' | '));
    let updated = false;
    let deleted = false;
    for (const s of r.log.slice(from)) {
      assert.equal(s.split(',').filter((x) => x.startsWith('o1=')).length, 1, `o1 once: ${r.log.join(' | ')}`);
      if (s.includes('p1=upd')) updated = true;
      if (updated) assert.ok(!s.includes('p1=old'), `no flicker back to old: ${r.log.join(' | ')}`);
      if (!s.includes('p2=')) deleted = true;
      if (deleted) assert.ok(!s.includes('p2='), `deleted row never back: ${r.log.join(' | ')}`);
    }
    assert.equal(r.log.at(-1), 'p1=upd,o1=new');
  });

  test(`${R}: optimistic writes the server refuses (PERMISSION_DENIED) roll back with the error; clearError clears it`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until } = window.T;
      const c = client(url, user, pass);
      const log = [];
      let ctx;
      function P() {
        ctx = R.useLiveQuery({ query: `SELECT * FROM ${ns}.locked` });
        log.push(ctx.rows.map((r) => `${r.id.asString()}=${r.title.asString()}`).join(','));
        return null;
      }
      const m = mount(c, h(P));
      await until(() => log.at(-1) === 'L1=one,L2=two', 'loaded');
      const results = {};
      for (const [name, write, shown] of [
        ['insert', () => ctx.insert(`${ns}.locked`, { id: 'Lx', title: 'mine' }), 'L1=one,L2=two,Lx=mine'],
        ['update', () => ctx.update(`${ns}.locked`, 'L1', { title: 'changed' }), 'L1=changed,L2=two'],
        ['remove', () => ctx.remove(`${ns}.locked`, 'L2'), 'L1=one'],
      ]) {
        const mark = log.length;
        const err = await write().then(() => null, (e) => e);
        await until(() => log.at(-1) === 'L1=one,L2=two' && ctx.state.error, 'rolled back');
        results[name] = {
          shown: log.slice(mark).includes(shown), code: err?.code, isKalamError: err instanceof window.T.K.KalamError,
          stateError: ctx.state.error?.code, rows: log.at(-1),
        };
      }
      ctx.clearError();
      await until(() => !ctx.state.error, 'error cleared');
      const cleared = ctx.state.error === undefined;
      m.unmount();
      await c.shutdown();
      return { results, cleared };
    });
    for (const name of ['insert', 'update', 'remove']) {
      assert.deepEqual(r.results[name], { shown: true, code: 'PERMISSION_DENIED', isKalamError: true, stateError: 'PERMISSION_DENIED', rows: 'L1=one,L2=two' }, name);
    }
    assert.equal(r.cleared, true);
  });

  test(`${R}: B6/B7/B11 overlapping inserts keep inserting until the last ends; a failure keeps other writes tracked; numeric keys`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until, gate } = window.T;
      const real = client(url, user, pass);
      await real.insert(`${ns}.nums`, { id: 42, v: 'x' });
      const gates = [gate(), gate(), gate()];
      let calls = 0;
      // The real client's writes, each held until the test opens its gate (not a mock: the write runs).
      const gated = {
        insert: async (...a) => { const g = gates[calls++]; if (g) await g.wait(); return real.insert(...a); },
        update: async (...a) => { await gates[2].wait(); return real.update(...a); },
        delete: (...a) => real.delete(...a),
      };
      let mu;
      function P() {
        mu = R.useMutationActions(gated);
        return null;
      }
      const m = mount(real, h(P));
      await until(() => mu, 'mounted');
      const i1 = mu.insert(`${ns}.nums`, { id: 1, v: 'a' });
      const i2 = mu.insert(`${ns}.nums`, { id: 2, v: 'b' });
      await until(() => mu.pendingInserts === 2 && mu.inserting, 'two in flight');
      gates[0].open();
      await i1;
      await until(() => mu.pendingInserts === 1, 'one left');
      const afterFirst = mu.inserting;
      gates[1].open();
      await i2;
      await until(() => mu.pendingInserts === 0, 'none left');
      const afterBoth = mu.inserting;
      const u = mu.update(`${ns}.nums`, 42, { v: 'y' });
      await until(() => mu.updating.has(42), 'numeric key tracked');
      calls = 99; // the next insert is not held
      const failed = await mu.insert(`${ns}.locked`, { id: 'nope', title: 'x' }).then(() => null, (e) => e.code);
      await until(() => mu.error, 'error set');
      const duringError = { updating: [...mu.updating], error: mu.error.code };
      gates[2].open();
      await u;
      await until(() => mu.updating.size === 0, 'update done');
      const row = await real.queryOne(`SELECT v FROM ${ns}.nums WHERE id = 42`);
      mu.clearError();
      await until(() => !mu.error, 'cleared');
      m.unmount();
      await real.shutdown();
      return { afterFirst, afterBoth, failed, duringError, v: row.v.asString() };
    });
    assert.deepEqual(r, { afterFirst: true, afterBoth: false, failed: 'PERMISSION_DENIED', duringError: { updating: [42], error: 'PERMISSION_DENIED' }, v: 'y' });
  });

  test(`${R}: the connection state is folded into status (live -> reconnecting -> live) and refetch never flashes empty`, async () => {
    await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, R, client, mount, until } = window.T;
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_conn`, { id: 'k1', title: 'K', n: 1 });
      const s = { c, log: [] };
      window.__conn = s;
      function P() {
        s.ctx = R.useLiveQuery({ query: `SELECT * FROM ${ns}.t_conn` });
        s.log.push(`${s.ctx.state.status}:${s.ctx.state.connected}:${s.ctx.rows.length}`);
        return null;
      }
      s.m = mount(c, h(P));
      await until(() => s.ctx?.state.status === 'live', 'live');
      s.mark = s.log.length;
    });
    await sql.fault({ action: 'drop_sockets' });
    const r = await inPage(major, async () => {
      const { until, sleep } = window.T;
      const s = window.__conn;
      await until(() => s.log.slice(s.mark).some((x) => x.startsWith('reconnecting:false:1')), 'reconnecting seen');
      await until(() => s.log.at(-1) === 'live:true:1', 'live again', 10_000);
      const drop = s.log.slice(s.mark);
      const mark = s.log.length;
      const calls = s.c.liveCalls;
      await s.ctx.refetch();
      await until(() => s.c.liveCalls === calls + 1 && s.c.getSubscriptions().length === 1 && s.ctx.state.status === 'live', 'refetched');
      await sleep(100);
      const refetch = s.log.slice(mark);
      s.m.unmount();
      await s.c.shutdown();
      return { drop, refetch };
    });
    assert.ok(r.drop.every((x) => x.endsWith(':1')), `rows kept through the drop: ${r.drop.join(' ')}`);
    assert.ok(r.refetch.every((x) => x === 'live:true:1'), `refetch: ${r.refetch.join(' ')}`);
  });

  test(`${R}: Drizzle mode: typed rows of a kTable, inline where lambdas compiled (no resubscribe until the SQL changes), optimistic writes through the table, B18 column encoders, orderBy + limit as the core's ordered window`, async () => {
    const r = await inPage(major, async ({ url, ns, user, pass }) => {
      const { h, React, R, O, D, PG, client, mount, until, sleep } = window.T;
      const todos = O.kTable.user(`${ns}.t_drizzle`, { id: PG.text('id').primaryKey(), title: PG.text('title'), n: PG.bigint('n', { mode: 'bigint' }) });
      const c = client(url, user, pass);
      await c.insert(`${ns}.t_drizzle`, { id: 'd0', title: 'x', n: 1 });
      await c.insert(`${ns}.t_drizzle`, { id: 'e0', title: 'y', n: 1 });
      let ctx;
      let ordered;
      let force;
      let setWhich;
      const log = [];
      const show = (rows) => rows.map((row) => `${row.id}:${typeof row.n}:${row.n}`).join(',');
      function P() {
        const [which, setW] = React.useState('x');
        const [, setN] = React.useState(0);
        force = () => setN((n) => n + 1);
        setWhich = setW;
        ctx = R.useLiveQuery({ table: todos, where: (t) => D.eq(t.title, which) });
        ordered = R.useLiveQuery({ table: todos, orderBy: (t) => [D.desc(t.n), t.id], limit: 2 });
        log.push(show(ctx.rows));
        return null;
      }
      const m = mount(c, h(P));
      await until(() => ctx?.state.status === 'live' && ctx.rows.length === 1, 'live');
      const first = show(ctx.rows);
      const calls = c.liveCalls;
      for (let i = 0; i < 3; i++) {
        force();
        await sleep(20);
      }
      const afterRenders = c.liveCalls;
      const mark = log.length;
      await ctx.insert(todos).values({ id: 'd1', title: 'x', n: 5n });
      await ctx.update(todos, 'd1').set({ n: 7n });
      await until(() => show(ctx.rows) === 'd0:bigint:1,d1:bigint:7' && c.getSubscriptions().length === 2, 'server rows');
      await until(() => show(ordered.rows) === 'd1:bigint:7,d0:bigint:1', 'ordered window: n desc, then id');
      const writes = log.slice(mark);
      setWhich('y');
      await until(() => ctx.state.status === 'live' && show(ctx.rows) === 'e0:bigint:1', 'switched');
      // B18: a column's own encoder (Drizzle customType toDriver) runs for writes through the hooks.
      const shout = PG.customType({ dataType: () => 'text', toDriver: (v) => String(v).toUpperCase() });
      const loud = O.kTable.user(`${ns}.t_drizzle`, { id: PG.text('id').primaryKey(), title: shout('title'), n: PG.bigint('n', { mode: 'bigint' }) });
      await ctx.insert(loud).values({ id: 'z1', title: 'quiet', n: 3n });
      const encoded = (await c.queryOne(`SELECT title FROM ${ns}.t_drizzle WHERE id = 'z1'`)).title.asString();
      await until(() => show(ordered.rows) === 'd1:bigint:7,z1:bigint:3', 'z1 enters the window');
      const out = { first, calls, afterRenders, afterSwitch: c.liveCalls, writes, ordered: [ordered.state.status, c.getSubscriptions().map((sub) => sub.sql).find((q) => q.includes('ORDER')) ?? 'stripped'], encoded };
      m.unmount();
      await c.shutdown();
      return out;
    });
    assert.equal(r.first, 'd0:bigint:1');
    assert.equal(r.calls, 2, 'the filtered and the ordered query');
    assert.equal(r.afterRenders, 2, 're-renders with new where/orderBy lambdas: same SQL, no new subscription');
    assert.equal(r.afterSwitch, 3, 'a different filter value: one new subscription');
    const from = r.writes.findIndex((x) => x.includes('d1:'));
    assert.ok(from >= 0, r.writes.join(' | '));
    for (const x of r.writes.slice(from)) assert.equal(x.split(',').filter((y) => y.startsWith('d1:')).length, 1, r.writes.join(' | '));
    assert.deepEqual(r.ordered, ['live', 'stripped'], 'the ORDER BY is stripped before subscribing');
    assert.equal(r.encoded, 'QUIET');
  });

  test(`${R}: the README's examples render what their comments say`, async () => {
    assert.ok(readme.examples.length >= 3);
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    try {
      for (const [i, example] of readme.examples.entries()) {
        await page.goto(`${apps[major].statics.url}/readme-${i}.html`);
        for (const step of example.steps) {
          if (step.click) await page.getByRole('button', { name: step.click, exact: true }).click({ timeout: 8000 });
          else {
            await page.waitForFunction((text) => document.getElementById('root')?.textContent.includes(text), step.shows, { timeout: 8000 })
              .catch(async () => assert.fail(`example ${i}: waited for "${step.shows}", page shows "${await page.textContent('#root')}"`));
          }
        }
      }
    } finally {
      await page.close();
    }
    assert.deepEqual(errors, []);
  });

  test(`${R}: no uncaught page errors`, () => {
    assert.deepEqual(apps[major].page.errors, []);
  });
}

test('typings: an app type-checks against the packed typings (tsc --strict, react-jsx, Drizzle rows inferred)', { timeout: 120_000 }, async () => {
  const dir = apps[19].dir;
  copyFileSync(join(root, 'tests', 'e2e', 'react', 'types.tsx'), join(dir, 'types.tsx'));
  writeFileSync(join(dir, 'tsconfig.check.json'), JSON.stringify({
    compilerOptions: {
      strict: true, target: 'ES2022', module: 'ES2022', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], types: [],
      jsx: 'react-jsx', skipLibCheck: true, noEmit: true,
    },
    files: ['types.tsx'],
  }));
  // React's typings come from the repository's @types/react (the app installs no typings).
  const output = await promisify(execFile)(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.check.json'], { cwd: dir })
    .then(() => '', (err) => `${err.stdout}${err.stderr}`);
  assert.equal(output, '');
});

test('controller in Node (packed client): snapshots, identity, dispose while subscribing, refetch, unorderable ORDER BY and LIMIT without ORDER BY refused', async () => {
  const dir = apps[Object.keys(REACT_VERSIONS)[0]].dir;
  const K = await import(pathToFileURL(join(dir, 'node_modules', '@kalam-wasm', 'client', 'node.js')).href);
  const { default: WebSocket } = await import(pathToFileURL(join(root, 'node_modules', 'ws', 'wrapper.mjs')).href);
  const user = apps[Object.keys(REACT_VERSIONS)[0]].user;
  const client = K.createClient({ url: server.url, authProvider: async () => K.Auth.basic(user, password), WebSocket });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (fn, what, ms = 8000) => {
    const end = Date.now() + ms;
    while (!fn()) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await sleep(10);
    }
  };
  try {
    await client.insert(`${ns}.t_node`, { id: 'n1', title: 'N', n: 1 });
    const q = K.createLiveQuery(client, `SELECT * FROM ${ns}.t_node`, { getKey: 'id' });
    assert.equal(q.getSnapshot().status, 'idle');
    const seen = [];
    q.subscribe((s) => seen.push(s));
    await q.start();
    await until(() => q.getSnapshot().status === 'live', 'live');
    const live = q.getSnapshot();
    assert.equal(q.getSnapshot(), live, 'same object while nothing changes');
    assert.ok(Object.isFrozen(live));
    assert.equal(live.rows.length, 1);
    assert.equal(live.connected, true);
    assert.equal(seen[0].status, 'loading');
    await until(() => q.getSnapshot().lastSeqId !== undefined, 'checkpoint');
    assert.equal(typeof q.getSnapshot().lastSeqId.toString(), 'string');
    assert.equal(q.rowKey(live.rows[0]), 'n1');
    await client.insert(`${ns}.t_node`, { id: 'n2', title: 'N2', n: 2 });
    await until(() => q.getSnapshot().rows.length === 2, 'change');
    // refetch: a new subscription, rows never empty, the old one gone afterwards.
    const during = [];
    const off = q.subscribe((s) => during.push(s.rows.length));
    await q.refetch();
    await until(() => client.getSubscriptions().length === 1 && q.getSnapshot().status === 'live', 'refetched');
    off();
    assert.ok(during.every((n) => n === 2), during.join(','));
    // Two refetches back to back (the second before the first has its snapshot): one subscription stays.
    await q.refetch();
    await q.refetch();
    await until(() => client.getSubscriptions().length === 1 && q.getSnapshot().rows.length === 2, 'one subscription after two refetches');
    await sleep(200);
    assert.equal(client.getSubscriptions().length, 1);
    // dispose while start() is still subscribing: nothing stays subscribed.
    const q2 = K.createLiveQuery(client, `SELECT * FROM ${ns}.t_node`);
    const started = q2.start();
    await q2.dispose();
    await started;
    await sleep(100);
    assert.equal(client.getSubscriptions().length, 1);
    assert.equal(q2.getSnapshot().status, 'disposed');
    // ORDER BY/LIMIT in live SQL are applied by the Rust materializer (tests/e2e/live-order.test.mjs);
    // what it cannot order is refused with INVALID_ARGUMENT (no TypeScript sorting).
    for (const bad of [`SELECT * FROM ${ns}.t_node ORDER BY lower(n)`, `SELECT * FROM ${ns}.t_node LIMIT 5`]) {
      const qb = K.createLiveQuery(client, bad);
      await qb.start();
      assert.equal(qb.getSnapshot().status, 'error', bad);
      assert.equal(qb.getSnapshot().error.code, 'INVALID_ARGUMENT');
      assert.ok(qb.getSnapshot().error instanceof K.KalamError);
      await qb.dispose();
    }
    const qo = K.createLiveQuery(client, `SELECT * FROM ${ns}.t_node`, { orderBy: 'n DESC' });
    await qo.start();
    assert.equal(qo.getSnapshot().error?.code, 'INVALID_ARGUMENT');
    await qo.dispose();
    assert.throws(() => K.createLiveQuery(client, ''), (e) => e.code === 'INVALID_ARGUMENT');
    // Connection state folded into status.
    const statuses = [];
    q.subscribe((s) => statuses.push(s.status));
    await sql.fault({ action: 'drop_sockets' });
    await until(() => statuses.includes('reconnecting') && q.getSnapshot().status === 'live', 'reconnected', 10_000);
    await q.refetch(); // registered, snapshot not there yet: stop() must end both subscriptions
    await q.stop();
    assert.equal(q.getSnapshot().status, 'idle');
    assert.equal(client.getSubscriptions().length, 0);
  } finally {
    await client.shutdown();
  }
});
