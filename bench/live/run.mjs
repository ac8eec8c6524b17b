#!/usr/bin/env node
// Live-query benchmark in headless Chromium: our LiveManager (dist/client, or
// KALAM_CLIENT_DIR) against a bare WebSocket + JSON.parse + Map client, same server, same
// frames (compression off for both, so the bare client needs no gzip). Prints figures and
// ratios from one run. Server: KALAMDB_URL (+ KALAMDB_TEST_ROOT_PASSWORD) or a
// kalam-testserver started here. Usage: node bench/live/run.mjs [--quick]
import { freshFixture, insertRows } from '../../tests/e2e/support/server.mjs';
import { clientDist } from '../../tests/e2e/support/browser.mjs';
import { openBench } from './page.mjs';

const quick = process.argv.includes('--quick');
const sizes = process.env.BENCH_SIZES ? process.env.BENCH_SIZES.split(',').map(Number) : quick ? [1000, 20000] : [1000, 20000, 100000];
const changes = quick ? 40 : 100;

const { server, call, close } = await openBench();

const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : String(n));
const results = [];

try {
  const resolution = await call('timerResolutionMs');
  console.log(`live benchmark: Chromium headless, server ${server.url}, client ${clientDist}, timer resolution ${resolution} ms`);
  for (const size of sizes) {
    const fx = await freshFixture(server);
    const t0 = Date.now();
    await insertRows(fx, 1, size, 1000);
    console.log(`\n== ${size} rows (inserted in ${Date.now() - t0} ms)`);
    // Self-verification on (every 500 ms in the check-cost run; the defaults otherwise never
    // fire within a measurement) or off per subscription.
    await call('setup', { url: fx.url, user: fx.user, password: fx.password, verify: { intervalMs: 500 } });
    const sql = `SELECT * FROM ${fx.table}`;

    // Snapshot load: best of BENCH_REPS (default 7; 2 at 100k rows) each, alternating.
    const ours = [];
    const oursDefault = [];
    const oursVerify = [];
    const bare = [];
    // Each run starts with a clear send budget (40 frames per 1.1 s, which both clients
    // keep): the bare client opens a new socket per run, ours reuses its one socket.
    const pause = () => new Promise((ok) => setTimeout(ok, 1200));
    for (let i = 0; i < (size >= 100000 ? 2 : Number(process.env.BENCH_REPS ?? 7)); i++) {
      await pause();
      bare.push(await call('bareSnapshot', { sql }));
      // Verify off and on alternate which goes first, so order effects hit both alike; the
      // package's default batch size (issue 15 measures that) runs with verify off.
      for (const on of i % 2 ? [true, false] : [false, true]) {
        await pause();
        (on ? oursVerify : ours).push(await call('oursSnapshot', { sql, verify: on }));
      }
      await pause();
      oursDefault.push(await call('oursSnapshot', { sql, batchSize: null }));
    }
    const best = (xs) => xs.reduce((a, b) => (b.rowsPerSec > a.rowsPerSec ? b : a));
    const o = best(ours);
    const od = best(oursDefault);
    const ov = best(oursVerify);
    const b = best(bare);
    console.log(`snapshot load   ours ${fmt(o.rowsPerSec, 0)} rows/s (${fmt(o.ms, 0)} ms)   bare ${fmt(b.rowsPerSec, 0)} rows/s (${fmt(b.ms, 0)} ms)   ratio ${fmt(o.rowsPerSec / b.rowsPerSec)}x`);
    console.log(`snapshot load, default batch size   ours ${fmt(od.rowsPerSec, 0)} rows/s (${fmt(od.ms, 0)} ms)   ratio ${fmt(od.rowsPerSec / b.rowsPerSec)}x`);
    console.log(`snapshot load, verify on   ours ${fmt(ov.rowsPerSec, 0)} rows/s (${fmt(ov.ms, 0)} ms)   ratio ${fmt(ov.rowsPerSec / b.rowsPerSec)}x`);

    // Cost per change with `size` rows materialized.
    const ids = Array.from({ length: 20 }, (_, i) => 1 + Math.floor((i * size) / 20));
    const fresh = await call('oursChangeCost', { sql, table: fx.table, count: changes, rowsArray: true, ids });
    const mapOnly = await call('oursChangeCost', { sql, table: fx.table, count: changes, rowsArray: false, ids });
    const mapVerify = await call('oursChangeCost', { sql, table: fx.table, count: changes, rowsArray: false, ids, verify: true });
    console.log(`cost per change rows array: mean ${fmt(fresh.meanMs, 3)} ms median ${fmt(fresh.medianMs, 3)} p95 ${fmt(fresh.p95Ms, 3)}   rowMap only: mean ${fmt(mapOnly.meanMs, 3)} ms median ${fmt(mapOnly.medianMs, 3)} p95 ${fmt(mapOnly.p95Ms, 3)}   (${fresh.frames} frames)`);
    console.log(`cost per change rowMap only, verify on (checks every 500 ms): mean ${fmt(mapVerify.meanMs, 3)} ms median ${fmt(mapVerify.medianMs, 3)} p95 ${fmt(mapVerify.p95Ms, 3)}   (${mapVerify.frames} frames)`);
    const check = await call('verifyCost', { sql, ms: 3000 });
    console.log(`one verification check: ${check.checks} checks, query round trip median ${fmt(check.roundTripMedianMs)} ms, answer handled in median ${fmt(check.handleMedianMs, 3)} ms (p95 ${fmt(check.handleP95Ms, 3)}) on the main thread`);

    // Insert-to-callback latency (page inserts over HTTP, waits for the callback).
    const blocks = quick ? 3 : 5;
    const per = size >= 100000 ? 20 : 10;
    const oursLat = [];
    const bareLat = [];
    let nextId = 10_000_000;
    for (let b = 0; b < blocks; b++) {
      oursLat.push(...(await call('latency', { sql, table: fx.table, count: per, startId: nextId, which: 'ours' })));
      nextId += per;
      bareLat.push(...(await call('latency', { sql, table: fx.table, count: per, startId: nextId, which: 'bare' })));
      nextId += per;
    }
    const lo = await call('stats', oursLat);
    const lb = await call('stats', bareLat);
    console.log(`insert->callback ours median ${fmt(lo.medianMs)} ms p95 ${fmt(lo.p95Ms)} ms   bare median ${fmt(lb.medianMs)} ms p95 ${fmt(lb.p95Ms)} ms   ratio ${fmt(lo.medianMs / lb.medianMs)}x`);
    results.push({ size, snapshot: { ours: o, oursDefault: od, oursVerify: ov, bare: b }, change: { fresh, mapOnly, mapVerify }, check, latency: { ours: lo, bare: lb } });
  }
  console.log('\n== summary');
  const first = results[0];
  for (const r of results) {
    console.log(`${String(r.size).padStart(6)} rows: snapshot ${fmt(r.snapshot.ours.rowsPerSec / r.snapshot.bare.rowsPerSec)}x bare at batch 999, ${fmt(r.snapshot.oursDefault.rowsPerSec / r.snapshot.bare.rowsPerSec)}x with the default batch size (verify on ${fmt(r.snapshot.oursVerify.rowsPerSec / r.snapshot.bare.rowsPerSec)}x); change verify off/on ${fmt(r.change.mapOnly.meanMs, 3)}/${fmt(r.change.mapVerify.meanMs, 3)} ms; check ${fmt(r.check.handleMedianMs, 3)} ms + ${fmt(r.check.roundTripMedianMs)} ms query; change ${fmt(r.change.mapOnly.meanMs, 3)} ms (rowMap) / ${fmt(r.change.fresh.meanMs, 3)} ms (rows array), ${fmt(r.change.mapOnly.meanMs / first.change.mapOnly.meanMs)}x / ${fmt(r.change.fresh.meanMs / first.change.fresh.meanMs)}x the ${first.size}-row cost; latency ${fmt(r.latency.ours.medianMs / r.latency.bare.medianMs)}x bare`);
  }
  if (process.env.BENCH_JSON) console.log(JSON.stringify(results));
} finally {
  await close();
}
process.exit(0);
