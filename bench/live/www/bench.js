// Browser side of bench/live/run.mjs: our LiveManager vs a bare WebSocket + JSON.parse + Map
// client on the same server and the same frames.
import '/client/index.js';
import { LiveManager } from '/client/live.js';

async function login(url, user, password) {
  const res = await fetch(`${url}/v1/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
  return (await res.json()).access_token;
}

async function sqlExec(url, token, sql) {
  const res = await fetch(`${url}/v1/api/sql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ sql }) });
  const body = await res.json();
  if (body.status !== 'success') throw new Error(JSON.stringify(body));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const p95 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * 0.95))] : NaN;
};

/** A WebSocket that times its message handler (the whole frame -> callback path). */
function timedWebSocket(costs, timeline) {
  return class TimedWebSocket extends WebSocket {
    send(data) {
      timeline.push(['send', performance.now()]);
      super.send(data);
    }
    set onmessage(fn) {
      super.onmessage = fn ? (e) => {
        const t0 = performance.now();
        fn(e);
        const t1 = performance.now();
        costs.push(t1 - t0);
        timeline.push(['message', t0, t1 - t0]);
      } : null;
    }
    get onmessage() {
      return super.onmessage;
    }
  };
}

let ctx;
let manager;
let token;

/**
 * The self-verification checksums, over HTTP like the app client's SQL path. Each answer is
 * handed back in a task of its own, and the time until the next task (a MessageChannel
 * message) is the main-thread cost of handling it (the core compares the figures: O(rows)).
 */
async function runSql(sql) {
  const t0 = performance.now();
  const res = await fetch(`${ctx.url}/v1/api/sql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ sql }) });
  const text = await res.text();
  const roundTrip = performance.now() - t0;
  return new Promise((ok) => {
    const ch = new MessageChannel();
    const t1 = performance.now();
    ch.port1.onmessage = () => {
      ctx.checks.push({ roundTrip, handleMs: performance.now() - t1 });
      ch.port1.close();
    };
    ok(text);
    ch.port2.postMessage(0);
  });
}

export async function setup({ url, user, password, disableCompression = true, verify = {} }) {
  ctx = { url, user, password, costs: [], timeline: [], checks: [] };
  token = await login(url, user, password);
  manager?.shutdown();
  manager = new LiveManager({
    url, disableCompression, getToken: async () => token, WebSocket: timedWebSocket(ctx.costs, ctx.timeline), log: () => {},
    runSql, verify,
  });
  await manager.connect();
  return true;
}

/**
 * Our client: subscribe and time until the complete snapshot reached onRows. `batchSize`
 * null leaves it out: the package default (what apps get).
 */
export async function oursSnapshot({ sql, rowsArray = true, verify = false, batchSize = 999 }) {
  const t0 = performance.now();
  let n = 0;
  let unsub;
  await new Promise((ok) => {
    manager.live(sql, (rows, change) => {
      if (change.initial) {
        n = change.rowMap.size;
        ok();
      }
    }, { rowsArray, verify, ...(batchSize === null ? {} : { batchSize }) }).then((u) => { unsub = u; });
  });
  const ms = performance.now() - t0;
  await unsub?.();
  return { rows: n, ms, rowsPerSec: (n / ms) * 1000 };
}

/** The baseline: bare WebSocket, JSON.parse, Map keyed by id, next_batch paging. */
function bareClient(url, tok) {
  const wsUrl = `${url.replace(/^http/, 'ws')}/v1/ws?compress=false`;
  const ws = new WebSocket(wsUrl);
  const state = { ws, maps: new Map(), waiters: new Map(), onChange: null, seq: 0, sends: [] };
  const ready = new Promise((ok, fail) => {
    ws.onerror = () => fail(new Error('bare socket failed'));
    ws.onopen = () => ws.send(JSON.stringify({ type: 'authenticate', method: 'jwt', token: tok, protocol: { serialization: 'json', compression: 'gzip' } }));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'auth_success') { ok(); return; }
      const map = state.maps.get(m.subscription_id);
      if (!map) return;
      if (m.type === 'initial_data_batch') {
        for (const r of m.rows) map.set(r.id, r);
        if (m.batch_control.has_more) {
          // last_seq_id is an exact integer on the wire: re-read it from the raw text.
          const last = /"last_seq_id":(\d+)/.exec(e.data)[1];
          // Stay under the server's 50 messages/s (excess is dropped) with the same budget
          // as our client: at most 40 sends in any 1100 ms.
          const now = performance.now();
          while (state.sends.length && now - state.sends[0] >= 1100) state.sends.shift();
          const wait = state.sends.length >= 40 ? state.sends[0] + 1100 - now : 0;
          const send = () => {
            state.sends.push(performance.now());
            ws.send(`{"type":"next_batch","subscription_id":"${m.subscription_id}","last_seq_id":${last}}`);
          };
          if (wait > 0) setTimeout(send, wait);
          else send();
        } else {
          state.waiters.get(m.subscription_id)?.(map.size);
        }
      } else if (m.type === 'change') {
        if (m.change_type === 'delete') for (const r of m.old_values) map.delete(r.id);
        else for (const r of m.rows) map.set(r.id, { ...map.get(r.id), ...r });
        state.onChange?.(m);
      }
    };
  });
  state.ready = ready;
  state.subscribe = (sql) => {
    const id = `bare-${++state.seq}`;
    state.maps.set(id, new Map());
    return new Promise((ok) => {
      state.waiters.set(id, ok);
      ws.send(JSON.stringify({ type: 'subscribe', subscription: { id, sql, options: { batch_size: 999 } } }));
    });
  };
  state.unsubscribe = () => {
    for (const id of state.maps.keys()) ws.send(JSON.stringify({ type: 'unsubscribe', subscription_id: id }));
    state.maps.clear();
  };
  return state;
}

export async function bareSnapshot({ sql }) {
  const bare = bareClient(ctx.url, token);
  await bare.ready;
  const t0 = performance.now();
  const n = await bare.subscribe(sql);
  const ms = performance.now() - t0;
  bare.unsubscribe();
  bare.ws.close();
  return { rows: n, ms, rowsPerSec: (n / ms) * 1000 };
}

/**
 * Our per-change cost with the table's rows materialized: the page updates one row `count`
 * times and records the time spent handling each change frame (socket message handler,
 * which runs the core, the JS mirror and onRows).
 */
export async function oursChangeCost({ sql, table, count = 100, rowsArray = true, ids, verify = false }) {
  let resolveChange = null;
  let userMs = 0;
  const unsub = await new Promise((ok) => {
    let u;
    const p = manager.live(sql, (rows, change) => {
      if (change.initial) { ok(p); return; }
      const t0 = performance.now();
      // a typical consumer: read the changed row
      for (const r of change.updated) r.title.asString();
      userMs += performance.now() - t0;
      resolveChange?.();
    }, { rowsArray, batchSize: 999, verify });
  }).then((p) => p);
  ctx.costs.length = 0;
  for (let i = 0; i < count; i++) {
    const id = ids[i % ids.length];
    const seen = new Promise((ok) => { resolveChange = ok; });
    await sqlExec(ctx.url, token, `UPDATE ${table} SET title = 'u${i}' WHERE id = ${id}`);
    await seen;
  }
  const costs = [...ctx.costs];
  await unsub();
  const mean = costs.reduce((a, b) => a + b, 0) / costs.length;
  return { medianMs: median(costs), meanMs: mean, p95Ms: p95(costs), frames: costs.length };
}

/**
 * Insert-to-callback latency for ONE client (`which`: 'ours' | 'bare'), subscribed alone: the
 * page inserts a row over HTTP and records when the callback saw it. run.mjs alternates
 * blocks of both clients so server and machine noise hit both alike.
 */
export async function latency({ sql, table, count = 10, startId, which }) {
  const lat = [];
  let seen = null;
  let stop;
  if (which === 'ours') {
    const unsub = await new Promise((ok) => {
      const p = manager.live(sql, (rows, change) => {
        if (change.initial) { ok(p); return; }
        if (change.inserted.length) seen?.(performance.now());
      }, { batchSize: 999 });
    }).then((p) => p);
    stop = () => unsub();
  } else {
    const bare = bareClient(ctx.url, token);
    await bare.ready;
    await bare.subscribe(sql);
    bare.onChange = (m) => { if (m.change_type === 'insert') seen?.(performance.now()); };
    stop = async () => {
      bare.unsubscribe();
      bare.ws.close();
    };
  }
  for (let i = 0; i < count; i++) {
    const p = new Promise((ok) => { seen = ok; });
    const t0 = performance.now();
    sqlExec(ctx.url, token, `INSERT INTO ${table} (id, title, n) VALUES (${startId + i}, 'lat', 1)`);
    lat.push((await p) - t0);
  }
  await stop();
  return lat;
}

export function stats(samples) {
  return { medianMs: median(samples), p95Ms: p95(samples) };
}

/** performance.now() resolution: 5 µs when the page is cross-origin isolated, else 100 µs. */
export function timerResolutionMs() {
  return globalThis.crossOriginIsolated ? 0.005 : 0.1;
}

/** Our socket's sends and message handlers (start, duration) since the last call (profile.mjs). */
export function takeTimeline() {
  return ctx.timeline.splice(0);
}

/**
 * What one self-verification check costs with the table's rows materialized: a subscription
 * checks itself every `intervalMs` (set in `setup`) for `ms`; per check, the checksum
 * query's round trip and the main-thread time of handling its answer.
 */
export async function verifyCost({ sql, ms = 3000 }) {
  const unsub = await new Promise((ok) => {
    const p = manager.live(sql, (rows, change) => { if (change.initial) ok(p); }, { rowsArray: false, batchSize: 999, verify: true });
  }).then((p) => p);
  ctx.checks.length = 0;
  await new Promise((ok) => setTimeout(ok, ms));
  const checks = [...ctx.checks];
  await unsub();
  return {
    checks: checks.length,
    roundTripMedianMs: median(checks.map((c) => c.roundTrip)),
    handleMedianMs: median(checks.map((c) => c.handleMs)),
    handleP95Ms: p95(checks.map((c) => c.handleMs)),
  };
}
