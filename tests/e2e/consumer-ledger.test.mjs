// The ledger test of issue 12: 10,000 messages over 3 partitions, consumers of one group
// stopped and restarted at random (the same client again, a new client, a terminated
// worker) while consume answers are lost after their claim, acks fail for 5 s and
// connections are refused for 6 s. At the end every offset of every partition was processed
// at least once, no offset was committed before its handler succeeded (the handlers' ledger
// against the server's ack log), and no runConsumer ended by itself. Prints duplicates,
// the time to drain and the ack delay. In Node and in dedicated Workers in headless Chromium.
// Private servers with a 3 s topic visibility timeout keep redeliveries (and the test) short.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { root, rootPassword, rootSql, startTestServer } from '../support/testserver.mjs';
import { faultProxy } from '../support/fault-proxy.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { launchChromium } from '../support/browser.mjs';

// KALAM_CONSUMER_DIST: another build of the package (e.g. an older commit's) for the Node test.
const dist = process.env.KALAM_CONSUMER_DIST ?? join(root, 'dist', 'consumer');
const { createConsumerClient, runConsumer, Auth } = await import(join(dist, 'node.js'));

const TOTAL = 10_000;
const PARTITIONS = 3;
const VISIBILITY_S = 3;
const SVC = { user: 'svc', password: 'svc-pass-1' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = (lo, hi) => lo + Math.random() * (hi - lo);

let statics;
let browser;
before(async () => {
  statics = await serveStatic(root);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await statics?.close();
});

/** A private server, a proxy in front of it, and the 3-partition topic fed by a table. */
async function setup() {
  const server = await startTestServer(['--topic-visibility-timeout-secs', String(VISIBILITY_S)]);
  const sql = await rootSql(server.url);
  const proxy = await faultProxy(server.url);
  await sql('CREATE NAMESPACE led');
  await sql(`CREATE USER '${SVC.user}' WITH PASSWORD '${SVC.password}' ROLE service`);
  await sql("CREATE TABLE led.src (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), n INT) WITH (TYPE = 'SHARED')");
  await sql(`CREATE TOPIC led.ev PARTITIONS ${PARTITIONS}`);
  await sql('ALTER TOPIC led.ev ADD SOURCE led.src ON INSERT');
  let next = 0;
  const produce = async (n) => {
    const values = Array.from({ length: n }, () => `(${next++})`).join(', ');
    await sql(`INSERT INTO led.src (n) VALUES ${values}`);
  };
  const state = async () => {
    const res = await fetch(`${server.url}/v1/api/test/faults`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${sql.token}` },
      body: JSON.stringify({ action: 'topic_state' }),
    });
    return res.json();
  };
  return { server, sql, proxy, produce, state };
}

/** Runs the production, the faults and `chaos` (consumer churn) and then drains with `drainer`. */
async function scenario(env, { chaos, drainer, ledger, label }) {
  const { sql, proxy, produce, state } = env;
  for (let i = 0; i < 25; i++) await produce(200); // half before the consumers start
  const t0 = Date.now();
  const faults = [];
  const events = (async () => {
    for (let i = 0; i < 25; i++) { await produce(200); await sleep(300); } // the other half meanwhile
  })();
  const at = (ms, what, fn) => (async () => { await sleep(ms); faults.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`); await fn(); })();
  const timeline = Promise.all([
    at(2_000, 'drop 4 consume answers after their claim', () => sql.fault({ action: 'drop_consume_responses', count: 4 })),
    at(5_000, 'acks fail (503) for 5 s', () => sql.fault({ action: 'fail_acks', ms: 5_000 })),
    at(11_000, 'connections refused for 6 s', () => proxy.refuse(6_000)),
    at(18_500, 'server restart (claims forgotten)', () => sql.fault({ action: 'restart' })),
    at(20_000, 'drop 2 consume answers after their claim', () => sql.fault({ action: 'drop_consume_responses', count: 2 })),
  ]);
  await chaos(22_000);
  await Promise.all([events, timeline]);
  const chaosEnd = Date.now();
  await drainer.start();
  let drained = false;
  let last;
  while (Date.now() - chaosEnd < 60_000) {
    last = await state();
    const committed = last.offsets.filter((o) => o.topic_id === 'led.ev').reduce((n, o) => n + o.last_acked_offset + 1, 0);
    if (committed === TOTAL && ledger.unique() === TOTAL) { drained = true; break; }
    await sleep(100);
  }
  const drainMs = Date.now() - chaosEnd;
  await drainer.stop();
  assert.ok(drained, `${label}: not drained 60 s after the chaos: ${ledger.unique()} processed, offsets ${JSON.stringify(last?.offsets)}`);

  // Every offset of every partition was processed at least once.
  const counts = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const done = ledger.partition(p);
    const max = Math.max(-1, ...done.keys());
    const missing = [];
    for (let o = 0; o <= max; o++) if (!done.has(o)) missing.push(o);
    assert.deepEqual(missing, [], `${label}: partition ${p} offsets never processed`);
    counts.push(max + 1);
    const committed = last.offsets.find((o) => o.topic_id === 'led.ev' && o.partition_id === p);
    assert.equal(committed?.last_acked_offset, max, `${label}: partition ${p} committed up to its last offset`);
  }
  assert.equal(counts.reduce((a, b) => a + b, 0), TOTAL);
  assert.ok(counts.every((n) => n > 0), `${label}: every partition got messages: ${counts}`);
  // No offset was committed before its handler succeeded.
  const acks = last.acks.filter((a) => a.topic_id === 'led.ev' && a.group_id === 'workers');
  const violations = [];
  const delays = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const done = ledger.partition(p);
    const mine = acks.filter((a) => a.partition_id === p).sort((a, b) => a.at_ms - b.at_ms);
    let covered = 0; // offsets below are covered by an earlier ack
    for (const a of mine) {
      for (let o = 0; o <= a.upto_offset; o++) {
        const when = done.get(o);
        if (when === undefined || when > a.at_ms) violations.push(`p${p} o${o} acked ${a.upto_offset} at ${a.at_ms}, processed ${when ?? 'never'}`);
      }
      for (; covered <= a.upto_offset; covered++) delays.push(a.at_ms - done.get(covered));
    }
  }
  assert.deepEqual(violations.slice(0, 10), [], `${label}: committed before processed (${violations.length})`);
  delays.sort((a, b) => a - b);
  const q = (f) => delays[Math.min(delays.length - 1, Math.floor(f * delays.length))];
  console.log(`${label}: ${TOTAL} messages over ${PARTITIONS} partitions (${counts.join('/')}), ${ledger.deliveries()} handler runs, ` +
    `${ledger.deliveries() - TOTAL} duplicates; ${ledger.runs()} consumer runs; drained ${drainMs} ms after the chaos ` +
    `(${((Date.now() - t0) / 1000).toFixed(1)} s in all); ${acks.length} acks; ack delay after processing ` +
    `median ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${delays.at(-1)} ms`);
  console.log(`${label}: faults ${faults.join('; ')}`);
}

function memoryLedger() {
  const parts = Array.from({ length: PARTITIONS }, () => new Map());
  let deliveries = 0;
  let runs = 0;
  return {
    record(p, o, at) { deliveries += 1; if (!parts[p].has(o)) parts[p].set(o, at); },
    partition: (p) => parts[p],
    unique: () => parts.reduce((n, m) => n + m.size, 0),
    deliveries: () => deliveries,
    runs: () => runs,
    run: () => { runs += 1; },
  };
}

test('ledger in Node: every offset processed, none committed before its handler succeeded', { timeout: 150_000 }, async () => {
  const env = await setup();
  const ledger = memoryLedger();
  const endedByThemselves = [];
  const start = (c) => {
    const stop = new AbortController();
    ledger.run();
    const done = runConsumer({
      client: c, name: 'ledger', topic: 'led.ev', groupId: 'workers', start: 'earliest', batchSize: 50,
      partitions: PARTITIONS, visibilityTimeoutMs: VISIBILITY_S * 1000, stopSignal: stop.signal,
      onMessage: async (ctx) => {
        if (Math.random() < 0.05) await sleep(5);
        ledger.record(ctx.message.partition_id, ctx.message.offset, Date.now());
      },
    }).then(() => { if (!stop.signal.aborted) endedByThemselves.push('returned'); },
      (e) => endedByThemselves.push(`${e.code}: ${e.message}`));
    return { stop: async () => { stop.abort(); await done; } };
  };
  const newClient = () => createConsumerClient({ url: env.proxy.url, auth: Auth.basic(SVC.user, SVC.password), timeoutMs: 5_000 });
  let drain;
  try {
    await scenario(env, {
      label: 'ledger (Node)',
      ledger,
      chaos: async (ms) => {
        const until = Date.now() + ms;
        // Three slots; each runs consumers for 0.3-2.5 s at a time, on its own client again
        // or on a new one, and sometimes leaves a gap before the next.
        await Promise.all([0, 1, 2].map(async () => {
          let c = newClient();
          while (Date.now() < until) {
            if (Math.random() < 0.5) c = newClient();
            const run = start(c);
            await sleep(rand(300, 2_500));
            await run.stop();
            if (Math.random() < 0.3) await sleep(rand(0, 800));
          }
        }));
      },
      drainer: {
        start: async () => { drain = start(newClient()); },
        stop: async () => { await drain.stop(); },
      },
    });
    assert.deepEqual(endedByThemselves, [], 'no runConsumer ended by itself');
  } finally {
    await env.proxy.close();
    await env.server.stop();
  }
});

test('ledger in dedicated Workers (Chromium): same, with terminated workers', { timeout: 150_000 }, async () => {
  const env = await setup();
  const page = await browser.newPage();
  await page.goto(`${statics.url}/tests/e2e/consumer-page.html`);
  // The page owns the workers; Node drives them and collects the ledger at the end.
  await page.evaluate(({ url, password }) => {
    const w = window;
    w.records = [];
    w.ended = [];
    w.warnings = [];
    w.runs = 0;
    w.slots = [];
    w.spawn = () => new Promise((resolve) => {
      const worker = new Worker('/tests/e2e/consumer-ledger-worker.js', { type: 'module' });
      worker.onmessage = ({ data }) => {
        if (data.type === 'ready') resolve(worker);
        if (data.type === 'done') w.records.push([data.p, data.o, data.at]);
        if (data.type === 'warn') w.warnings.push(data.message);
        if (data.type === 'ended') {
          worker.running = false;
          if (!data.byStop) w.ended.push(`${data.code}: ${data.message}`);
        }
      };
    });
    // `newClient`: a new client in the worker; the root user reads the partition count.
    w.run = async (slot, newClient) => {
      w.slots[slot] ??= await w.spawn();
      w.runs += 1;
      w.slots[slot].running = true;
      w.slots[slot].postMessage({ cmd: 'run', url, user: 'root', password, topic: 'led.ev', group: 'workers', batchSize: 50, visibilityTimeoutMs: 3000, newClient });
    };
    w.stop = async (slot) => {
      const worker = w.slots[slot];
      if (!worker) return;
      worker.postMessage({ cmd: 'stop' });
      while (worker.running) await new Promise((r) => setTimeout(r, 10));
    };
    // Abrupt: no stop, no ack flush, unfinished handlers lost.
    w.kill = (slot) => { w.slots[slot]?.terminate(); w.slots[slot] = undefined; };
  }, { url: env.proxy.url, password: rootPassword });
  let pulled = 0;
  const parts = Array.from({ length: PARTITIONS }, () => new Map());
  let deliveries = 0;
  const pull = async () => {
    const fresh = await page.evaluate((from) => window.records.slice(from), pulled);
    pulled += fresh.length;
    for (const [p, o, at] of fresh) { deliveries += 1; if (!parts[p].has(o)) parts[p].set(o, at); }
  };
  const ledger = {
    partition: (p) => parts[p],
    unique: () => parts.reduce((n, m) => n + m.size, 0),
    deliveries: () => deliveries,
    runs: () => 0,
  };
  let runs = 0;
  const puller = setInterval(() => { pull().catch(() => {}); }, 100);
  try {
    await scenario(env, {
      label: 'ledger (Chromium workers)',
      ledger: { ...ledger, unique: () => ledger.unique(), runs: () => runs },
      chaos: async (ms) => {
        const until = Date.now() + ms;
        await Promise.all([0, 1, 2].map(async (slot) => {
          while (Date.now() < until) {
            const r = Math.random();
            await page.evaluate(({ s, n }) => window.run(s, n), { s: slot, n: r < 0.4 });
            runs += 1;
            await sleep(rand(300, 2_500));
            if (Math.random() < 0.25) await page.evaluate((s) => window.kill(s), slot);
            else await page.evaluate((s) => window.stop(s), slot);
            if (Math.random() < 0.3) await sleep(rand(0, 800));
          }
        }));
      },
      drainer: {
        start: async () => { await page.evaluate(() => window.run(3, true)); runs += 1; },
        stop: async () => { await page.evaluate(() => window.stop(3)); await pull(); },
      },
    });
    clearInterval(puller);
    const { ended, warnings } = await page.evaluate(() => ({ ended: window.ended, warnings: window.warnings }));
    assert.deepEqual(ended, [], 'no runConsumer ended by itself');
    assert.deepEqual(warnings, [], 'the partition count was read from system.topics');
  } finally {
    clearInterval(puller);
    await page.close();
    await env.proxy.close();
    await env.server.stop();
  }
});

test('the cost without faults: 1 and 3 workers of one group, 3,000 messages', { timeout: 60_000 }, async () => {
  const env = await setup();
  try {
    for (let i = 0; i < 15; i++) await env.produce(200);
    for (const [group, workers] of [['solo', 1], ['trio', 3]]) {
      const ledger = memoryLedger();
      const stops = [];
      const t0 = Date.now();
      const runs = Array.from({ length: workers }, () => {
        const stop = new AbortController();
        stops.push(stop);
        return runConsumer({
          client: createConsumerClient({ url: env.server.url, auth: Auth.basic(SVC.user, SVC.password) }),
          name: 'calm', topic: 'led.ev', groupId: group, start: 'earliest', batchSize: 50, partitions: PARTITIONS,
          stopSignal: stop.signal,
          onMessage: (ctx) => ledger.record(ctx.message.partition_id, ctx.message.offset, Date.now()),
        });
      });
      let state;
      for (;;) {
        state = await env.state();
        const committed = state.offsets.filter((o) => o.group_id === group).reduce((n, o) => n + o.last_acked_offset + 1, 0);
        if (committed === 3_000) break;
        assert.ok(Date.now() - t0 < 40_000, `${group}: not drained`);
        await sleep(50);
      }
      const ms = Date.now() - t0;
      stops.forEach((s) => s.abort());
      await Promise.all(runs);
      const delays = [];
      for (let p = 0; p < PARTITIONS; p++) {
        const acks = state.acks.filter((a) => a.group_id === group && a.partition_id === p).sort((a, b) => a.at_ms - b.at_ms);
        let covered = 0;
        for (const a of acks) for (; covered <= a.upto_offset; covered++) delays.push(a.at_ms - ledger.partition(p).get(covered));
      }
      delays.sort((a, b) => a - b);
      assert.equal(ledger.unique(), 3_000);
      console.log(`no faults, ${workers} worker(s): 3000 messages in ${ms} ms, ${ledger.deliveries() - 3_000} duplicates, ` +
        `ack delay median ${delays[delays.length >> 1]} ms, p95 ${delays[Math.floor(delays.length * 0.95)]} ms, max ${delays.at(-1)} ms`);
    }
  } finally {
    await env.proxy.close();
    await env.server.stop();
  }
});
