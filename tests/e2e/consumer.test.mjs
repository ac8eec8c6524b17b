// @kalam-wasm/consumer against a real test server: 1,000 messages produced through a table
// source, consumed by groups and workers in Node and in dedicated Web Workers in headless
// Chromium (at-least-once: acked after processing; redelivered when a worker dies).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { root, rootPassword, rootSql, startTestServer } from '../support/testserver.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { launchChromium } from '../support/browser.mjs';

const { createConsumerClient, runConsumer, Auth } = await import(join(root, 'dist', 'consumer', 'node.js'));

const TOPIC = 'cons.ev';
const TOTAL = 1000;
let server;
let sql;
let statics;
let browser;

before(async () => {
  // Short visibility timeout so unacked claims of a killed worker come back quickly.
  server = await startTestServer(['--topic-visibility-timeout-secs', '2']);
  sql = await rootSql(server.url);
  await sql('CREATE NAMESPACE cons');
  await sql("CREATE TABLE cons.events (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), n INT, body TEXT) WITH (TYPE = 'SHARED')");
  await sql(`CREATE TOPIC ${TOPIC}`);
  await sql(`ALTER TOPIC ${TOPIC} ADD SOURCE cons.events ON INSERT`);
  for (let start = 0; start < TOTAL; start += 100) {
    const values = Array.from({ length: 100 }, (_, i) => `(${start + i}, 'm${start + i}')`).join(', ');
    await sql(`INSERT INTO cons.events (n, body) VALUES ${values}`);
  }
  statics = await serveStatic(root);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await statics?.close();
  await server?.stop();
});

function client() {
  return createConsumerClient({ url: server.url, auth: Auth.basic('root', rootPassword) });
}

/** Runs a consumer in Node until it has seen `want` messages (or `ms` passed). */
async function consumeInNode(group, want, extra = {}) {
  const seen = [];
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 20_000);
  await runConsumer({
    client: client(), name: `node-${group}`, topic: TOPIC, groupId: group, start: 'earliest', batchSize: 100, stopSignal: stop.signal,
    ...extra,
    onMessage: async (ctx) => {
      await extra.onMessage?.(ctx);
      seen.push(ctx.message.payload.n);
      if (seen.length >= want) stop.abort();
    },
  });
  clearTimeout(timer);
  return seen;
}

function assertExactlyAll(ns, label) {
  assert.equal(ns.length, TOTAL, `${label}: ${ns.length} deliveries`);
  assert.equal(new Set(ns).size, TOTAL, `${label}: every message once`);
  assert.equal(Math.min(...ns), 0);
  assert.equal(Math.max(...ns), TOTAL - 1);
}

test('two groups each see all 1,000 messages (Node)', async () => {
  const [a, b] = await Promise.all([consumeInNode('group-a', TOTAL), consumeInNode('group-b', TOTAL)]);
  assertExactlyAll(a, 'group-a');
  assertExactlyAll(b, 'group-b');
  // Everything was acked: the group has nothing left.
  const rest = await client().consumeBatch({ topic: TOPIC, group_id: 'group-a', start: 'earliest', batch_size: 10 });
  assert.equal(rest.messages.length, 0);
});

test('a handler that throws ends in onFailed while the rest flow, and the loop survives', async () => {
  const failed = [];
  const retries = [];
  const seen = await consumeInNode('group-fail', TOTAL - 10, {
    retry: { maxAttempts: 2, initialBackoffMs: 5, maxBackoffMs: 20 },
    onMessage: async (ctx) => {
      if (ctx.message.payload.n % 100 === 7) throw new Error(`bad message ${ctx.message.payload.n}`);
    },
    onRetry: (info) => retries.push(info.attempt),
    onFailed: (ctx) => failed.push(ctx.message.payload.n),
  });
  assert.equal(seen.length, TOTAL - 10);
  assert.deepEqual(failed.sort((x, y) => x - y), [7, 107, 207, 307, 407, 507, 607, 707, 807, 907]);
  assert.equal(retries.length, 10, 'one retry per failing message before giving up');
  const rest = await client().consumeBatch({ topic: TOPIC, group_id: 'group-fail', start: 'earliest', batch_size: 10 });
  assert.equal(rest.messages.length, 0, 'failed messages were acked (ackOnFailed defaults to true)');
});

test('stopping a Node consumer interrupts its idle poll loop', async () => {
  const c = client();
  let polls = 0;
  const original = c.consumeBatch.bind(c);
  c.consumeBatch = (req) => { polls += 1; return original(req); };
  const stop = new AbortController();
  const run = runConsumer({ client: c, name: 'idle', topic: TOPIC, groupId: 'group-a', start: 'earliest', stopSignal: stop.signal, onMessage: () => {} });
  while (polls < 2) await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  const pollsAtStop = polls;
  await run;
  assert.ok(polls <= pollsAtStop + 1, `at most the in-flight poll completes after stop (${polls} vs ${pollsAtStop})`);
});

async function workerPage() {
  const page = await browser.newPage();
  await page.goto(`${statics.url}/tests/e2e/consumer-page.html`);
  return page;
}

test('two dedicated Web Workers in one group see each message exactly once', async () => {
  const page = await workerPage();
  const result = await page.evaluate(async ({ url, password, topic, total }) => {
    const got = [];
    const workers = [0, 1].map((i) => new Worker('/tests/e2e/consumer-worker.js', { type: 'module' }));
    const perWorker = [0, 0];
    await Promise.all(workers.map((w, i) => new Promise((resolve, reject) => {
      w.onmessage = ({ data }) => {
        if (data.type === 'ready') w.postMessage({ cmd: 'run', url, password, topic, group: 'group-workers', name: `w${i}`, batchSize: 50 });
        if (data.type === 'message') {
          got.push(data.n);
          perWorker[i] += 1;
          if (got.length >= total) workers.forEach((x) => x.postMessage({ cmd: 'stop' }));
        }
        if (data.type === 'stopped') resolve();
        if (data.type === 'error') reject(new Error(`${data.code}: ${data.message}`));
      };
    })));
    workers.forEach((w) => w.terminate());
    return { got, perWorker };
  }, { url: server.url, password: rootPassword, topic: TOPIC, total: TOTAL });
  assertExactlyAll(result.got, 'two workers');
  assert.ok(result.perWorker.every((n) => n > 0), `both workers took part: ${result.perWorker}`);
  await page.close();
});

test('a worker killed mid-batch has its unacked messages redelivered to the next one', async () => {
  const page = await workerPage();
  const result = await page.evaluate(async ({ url, password, topic }) => {
    const start = (name, delayMs, until) => new Promise((resolve, reject) => {
      const w = new Worker('/tests/e2e/consumer-worker.js', { type: 'module' });
      const offsets = [];
      w.onmessage = ({ data }) => {
        if (data.type === 'ready') w.postMessage({ cmd: 'run', url, password, topic, group: 'group-kill', name, batchSize: 40, delayMs });
        if (data.type === 'message') {
          offsets.push(Number(data.offset));
          if (until(offsets)) { w.terminate(); resolve(offsets); } // abrupt: no stop, no ack flush
        }
        if (data.type === 'error') reject(new Error(`${data.code}: ${data.message}`));
      };
    });
    // The first worker dies after 10 of its 40 claimed messages, before acking any.
    const killed = await start('doomed', 5, (o) => o.length >= 10);
    // Once the 2 s visibility timeout has expired the claims, the next worker of the group
    // gets them again, first. (Starting earlier would be safe too: it would hold its acks
    // until the dead worker's range came back; consumer-guarantees.test.mjs checks that.)
    await new Promise((r) => setTimeout(r, 2500));
    const next = await start('heir', 0, (o) => o.length >= 40);
    return { killed, next };
  }, { url: server.url, password: rootPassword, topic: TOPIC });
  assert.deepEqual(result.killed, Array.from({ length: 10 }, (_, i) => i));
  assert.deepEqual(result.next.slice(0, 10), result.killed, 'the dead worker\'s unacked claims come first');
  await page.close();
});

test('abort stops a worker within one poll', async () => {
  const page = await workerPage();
  const ms = await page.evaluate(async ({ url, password, topic }) => new Promise((resolve, reject) => {
    const w = new Worker('/tests/e2e/consumer-worker.js', { type: 'module' });
    let stoppedAt = 0;
    w.onmessage = ({ data }) => {
      if (data.type === 'ready') {
        // group-a consumed everything already: the worker is idle-polling.
        w.postMessage({ cmd: 'run', url, password, topic, group: 'group-a', name: 'idle', batchSize: 10 });
        setTimeout(() => { stoppedAt = performance.now(); w.postMessage({ cmd: 'stop' }); }, 600);
      }
      if (data.type === 'stopped') { resolve(performance.now() - stoppedAt); w.terminate(); }
      if (data.type === 'error') reject(new Error(`${data.code}: ${data.message}`));
    };
  }), { url: server.url, password: rootPassword, topic: TOPIC });
  // The idle pause is interrupted by the abort; only an in-flight poll (one round trip) may finish.
  assert.ok(ms < 1000, `stopped ${ms.toFixed(0)} ms after abort`);
  await page.close();
});
