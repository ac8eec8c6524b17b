// Browser side of bench/ordered/run.mjs, injected into the bench/live page (which has loaded
// the client): one LiveManager whose socket times its message handler (the core, the ordered
// window, the JS mirror and onRows) per change frame.
import { LiveManager } from '/client/live.js';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

let costs = [];
let manager;
let ctx;

function timedWebSocket() {
  return class TimedWebSocket extends WebSocket {
    set onmessage(fn) {
      super.onmessage = fn ? (e) => {
        const t0 = performance.now();
        fn(e);
        costs.push(performance.now() - t0);
      } : null;
    }
    get onmessage() {
      return super.onmessage;
    }
  };
}

async function post(path, body, token) {
  const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  return (await fetch(`${ctx.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) })).json();
}

async function setup({ url, user, password }) {
  ctx = { url };
  ctx.token = (await post('/v1/api/auth/login', { user, password })).access_token;
  manager?.shutdown();
  manager = new LiveManager({ url, disableCompression: true, getToken: async () => ctx.token, WebSocket: timedWebSocket(), batchSize: 999, log: () => {} });
  await manager.connect();
  return true;
}

/**
 * Subscribes `sql`, then runs `count` UPDATEs (one change frame each, awaited one by one) and
 * returns the handler time per change frame. `n` takes values above every seeded one, so
 * with ORDER BY n DESC each change moves a row into the window and pushes another out.
 */
async function changeCost({ sql, table, ids, count, base, rowsArray }) {
  let onChange = null;
  let windowSize = 0;
  const unsub = await new Promise((ok) => {
    const p = manager.live(sql, (rows, change) => {
      windowSize = rows.length || change.rowMap.size;
      if (change.initial) ok(p);
      else onChange?.();
    }, { rowsArray, batchSize: 999 });
  });
  costs = [];
  for (let i = 0; i < count; i++) {
    const seen = new Promise((ok) => { onChange = ok; });
    const res = await post('/v1/api/sql', { sql: `UPDATE ${table} SET n = ${base + i} WHERE id = ${ids[i % ids.length]}` }, ctx.token);
    if (res.status !== 'success') throw new Error(JSON.stringify(res));
    await seen;
  }
  const frames = costs.slice();
  await unsub();
  return { meanMs: mean(frames), medianMs: median(frames), frames: frames.length, windowSize };
}

window.ordered = { setup, changeCost, resolutionMs: () => {
  let a = performance.now();
  let b = a;
  while (b === a) b = performance.now();
  return b - a;
} };
window.orderedReady = true;
