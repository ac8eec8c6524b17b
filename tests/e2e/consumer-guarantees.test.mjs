// The consumer never skips a message (issue 12): the three failures seen on a real server
// and the test server, as regression tests, and how fast a stop takes effect.
// A private test server with a 2 s topic visibility timeout, so redeliveries come quickly;
// consumers sign in as a service user (no system tables) and reach the server through a
// TCP fault proxy where the network misbehaves.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { root, rootSql, startTestServer } from '../support/testserver.mjs';
import { faultProxy } from '../support/fault-proxy.mjs';

const dist = process.env.KALAM_CONSUMER_DIST ?? join(root, 'dist', 'consumer');
const { createConsumerClient, runConsumer, Auth } = await import(join(dist, 'node.js'));

const SVC = { user: 'svc', password: 'svc-pass-1' };
const VISIBILITY_S = 2;
let server;
let sql;
let proxy;
let table = 0;

before(async () => {
  server = await startTestServer(['--topic-visibility-timeout-secs', String(VISIBILITY_S)]);
  sql = await rootSql(server.url);
  proxy = await faultProxy(server.url);
  await sql('CREATE NAMESPACE g12');
  await sql(`CREATE USER '${SVC.user}' WITH PASSWORD '${SVC.password}' ROLE service`);
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A fresh one-partition topic fed by a table; `produce(n)` inserts n rows (n = 0, 1, ...). */
async function topic(count) {
  table += 1;
  const name = `g12.t${table}`;
  await sql(`CREATE TABLE g12.src${table} (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), n INT) WITH (TYPE = 'SHARED')`);
  await sql(`CREATE TOPIC ${name}`);
  await sql(`ALTER TOPIC ${name} ADD SOURCE g12.src${table} ON INSERT`);
  let next = 0;
  const produce = async (n) => {
    const values = Array.from({ length: n }, () => `(${next++})`).join(', ');
    await sql(`INSERT INTO g12.src${table} (n) VALUES ${values}`);
  };
  if (count) await produce(count);
  return { name, produce };
}

function client(url = proxy.url) {
  return createConsumerClient({ url, auth: Auth.basic(SVC.user, SVC.password), timeoutMs: 5_000 });
}

async function committed(topicName, group) {
  const res = await fetch(`${server.url}/v1/api/test/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${sql.token}` },
    body: JSON.stringify({ action: 'topic_state' }),
  });
  const state = await res.json();
  return state.offsets.filter((o) => o.topic_id === topicName && o.group_id === group)
    .map((o) => [o.partition_id, o.last_acked_offset]);
}

/** Runs a consumer until `until(seen)` or `ms`; `ended` tells whether it ended by itself. */
function consume({ c = client(), topicName, group, batchSize = 10, until = () => false, ms = 15_000, onMessage, ...extra }) {
  const stop = new AbortController();
  const seen = [];
  const errors = [];
  let stopped = false;
  const timer = setTimeout(() => { stopped = true; stop.abort(); }, ms);
  const done = runConsumer({
    client: c, name: 'g12', topic: topicName, groupId: group, start: 'earliest', batchSize, partitions: 1,
    stopSignal: stop.signal, onError: (e) => errors.push(e), ...extra,
    onMessage: async (ctx) => {
      await onMessage?.(ctx);
      seen.push(Number(ctx.message.offset_exact));
      if (until(seen)) { stopped = true; stop.abort(); }
    },
  }).then(() => ({ ended: !stopped }), (error) => ({ ended: true, error }))
    .finally(() => clearTimeout(timer));
  return { seen, errors, done, stop: () => { stopped = true; stop.abort(); } };
}

test('regression: a new consumer of the group after a stop does not commit the claimed, unprocessed rest', async () => {
  const t = await topic(30);
  // Worker A claims 0-9, processes 0-2 and stops; worker B (a new client) starts at once.
  const a = consume({ topicName: t.name, group: 'restart', until: (s) => s.length >= 3 });
  assert.deepEqual(await a.done, { ended: false });
  assert.deepEqual(a.seen, [0, 1, 2]);
  const startedAt = Date.now();
  const all = new Set(a.seen);
  const b = consume({ topicName: t.name, group: 'restart', until: (s) => { s.forEach((o) => all.add(o)); return all.size >= 30; } });
  const result = await b.done;
  const missing = Array.from({ length: 30 }, (_, i) => i).filter((o) => !all.has(o));
  assert.deepEqual(missing, [], `never processed: ${missing}`);
  assert.equal(result.ended, false);
  console.log(`restart: all 30 processed ${Date.now() - startedAt} ms after B started (visibility ${VISIBILITY_S} s); B handled ${b.seen.length}`);
  await sleep(300);
  assert.deepEqual(await committed(t.name, 'restart'), [[0, 29]]);
});

test('regression: connections refused for 6 s do not end the loop; acks go out afterwards', async () => {
  const t = await topic(200);
  let errorsDuringOutage = 0;
  const run = consume({
    topicName: t.name, group: 'blip', batchSize: 20, ms: 40_000,
    onMessage: () => sleep(15), // 200 messages take 3 s: the outage hits polls and acks
    until: (s) => new Set(s).size >= 260,
  });
  while (run.seen.length < 40) await sleep(20);
  const outage = proxy.refuse(6_000);
  await sleep(6_000);
  errorsDuringOutage = run.errors.length;
  await outage;
  await t.produce(60);
  const result = await run.done;
  assert.equal(result.ended, false, `the loop ended by itself: ${result.error?.code} ${result.error?.message}`);
  assert.equal(new Set(run.seen).size, 260);
  assert.ok(errorsDuringOutage > 0, 'the outage was reported through onError');
  const ops = new Set(run.errors.map((e) => e.operation));
  assert.ok(ops.has('consume') || ops.has('ack'), `reported operations: ${[...ops]}`);
  assert.ok(run.errors.every((e) => e.retryInMs > 0 && e.retryInMs <= 5_000 * 1.3), 'capped backoff');
  await sleep(300);
  assert.deepEqual(await committed(t.name, 'blip'), [[0, 259]], 'every ack was sent once the network was back');
});

test('regression: a stop during a retry backoff is not a failure; the message is redelivered', async () => {
  const t = await topic(3);
  const failed = [];
  const retries = [];
  const stop = new AbortController();
  const run = runConsumer({
    client: client(), name: 'g12', topic: t.name, groupId: 'retry-stop', start: 'earliest', batchSize: 10, partitions: 1,
    retry: { maxAttempts: 5, initialBackoffMs: 1_000 },
    onMessage: (ctx) => { if (ctx.message.offset === 0) throw new Error('not yet'); },
    onRetry: (info) => { retries.push(info.attempt); stop.abort(); },
    onFailed: (ctx) => failed.push(ctx.message.offset),
    stopSignal: stop.signal,
  });
  const t0 = Date.now();
  await run;
  const stopMs = Date.now() - t0;
  assert.deepEqual(retries, [1]);
  assert.deepEqual(failed, [], 'onFailed runs only after maxAttempts real failures');
  assert.deepEqual(await committed(t.name, 'retry-stop'), [], 'nothing committed: offset 0 never succeeded');
  // A later consumer of the group gets offset 0 (after the visibility timeout) and 1-2.
  const later = consume({ topicName: t.name, group: 'retry-stop', until: (s) => new Set(s).size >= 3 });
  assert.equal((await later.done).ended, false);
  assert.deepEqual([...new Set(later.seen)].sort(), [0, 1, 2]);
  console.log(`stop during a 1 s retry backoff took ${stopMs} ms (the backoff is interrupted)`);
});

test('stop latency: a poll in flight, a transport backoff, a running handler', { timeout: 30_000 }, async () => {
  const t = await topic(0);
  const measure = async (run, trigger) => {
    await trigger();
    const t0 = performance.now();
    run.stop();
    const result = await run.done;
    assert.equal(result.ended, false);
    return performance.now() - t0;
  };
  // 1. A poll in flight: the network swallows it (black hole), stop while it hangs.
  const idle = consume({ topicName: t.name, group: 'lat-poll', ms: 20_000 });
  await sleep(400);
  const pollMs = await measure(idle, async () => { proxy.blackhole(true); await sleep(700); });
  proxy.blackhole(false);
  // 2. A 2 s backoff after a failed poll (connections refused): stop 50 ms into it.
  const backing = consume({
    topicName: t.name, group: 'lat-backoff', ms: 20_000, transportRetry: { initialBackoffMs: 2_000, jitterRatio: 0 },
  });
  await sleep(300);
  const outage = proxy.refuse(8_000);
  const backoffMs = await measure(backing, async () => {
    while (!backing.errors.some((e) => e.operation === 'consume')) await sleep(5);
    await sleep(50);
  });
  assert.equal(backing.errors.at(-1).retryInMs, 2_000);
  await outage;
  // 3. A running handler (600 ms) finishes, and its message is acked, before the loop ends.
  await t.produce(1);
  let handlerStarted = 0;
  const busy = consume({
    topicName: t.name, group: 'lat-handler', ms: 20_000,
    onMessage: async () => { handlerStarted = performance.now(); await sleep(600); },
  });
  const handlerMs = await measure(busy, async () => {
    while (!handlerStarted) await sleep(5);
    await sleep(100);
  });
  assert.deepEqual(busy.seen, [0], 'the running handler finished');
  assert.deepEqual(await committed(t.name, 'lat-handler'), [[0, 0]], 'and its message was acked');
  console.log(`stop latency: poll in flight ${pollMs.toFixed(1)} ms, backoff ${backoffMs.toFixed(1)} ms, running handler ${handlerMs.toFixed(1)} ms (500 ms of it left)`);
  assert.ok(pollMs < 100, `poll in flight: ${pollMs} ms`);
  assert.ok(backoffMs < 100, `backoff: ${backoffMs} ms`);
  assert.ok(handlerMs >= 450 && handlerMs < 1_200, `running handler: ${handlerMs} ms`);
});

test('client.disconnect() stops runConsumer; a service user without partitions is told it gets partition 0', async () => {
  const t = await topic(5);
  const c = client(server.url);
  const errors = [];
  const seen = [];
  const run = runConsumer({
    client: c, name: 'g12', topic: t.name, groupId: 'disc', start: 'earliest',
    onError: (e) => errors.push(e), onMessage: (ctx) => { seen.push(ctx.message.offset); },
  });
  while (seen.length < 5) await sleep(10);
  const t0 = performance.now();
  await c.disconnect();
  await run;
  const ms = performance.now() - t0;
  assert.ok(ms < 100, `disconnect stopped the loop in ${ms} ms`);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].operation, 'partitions');
  assert.match(errors[0].error.message, /PERMISSION_DENIED.*consuming partition 0 only/);
});
