#!/usr/bin/env node
// Cost per change of a live `ORDER BY n DESC LIMIT 50` in headless Chromium at 1k/20k/100k
// rows, against an unordered subscription of the same table measured in the same run (the
// baseline: `rowsArray: false`, the O(changes) path). Every change sets `n` above all others,
// so each one moves a row into the window and another out. Prints figures and ratios.
// Usage: node bench/ordered/run.mjs [--quick]   (KALAM_CLIENT_DIR, KALAMDB_URL as bench/live)
import { readFileSync } from 'node:fs';
import { freshFixture, insertRows } from '../../tests/e2e/support/server.mjs';
import { clientDist } from '../../tests/e2e/support/browser.mjs';
import { openBench } from '../live/page.mjs';

const quick = process.argv.includes('--quick');
const sizes = process.env.BENCH_SIZES ? process.env.BENCH_SIZES.split(',').map(Number) : quick ? [1000, 20000] : [1000, 20000, 100000];
const count = Number(process.env.BENCH_CHANGES ?? (quick ? 60 : 150));
const fmt = (n, d = 3) => (Number.isFinite(n) ? n.toFixed(d) : String(n));

const { server, page, close } = await openBench();
const results = [];
try {
  await page.addScriptTag({ type: 'module', content: readFileSync(new URL('./page-bench.js', import.meta.url), 'utf8') });
  await page.waitForFunction('window.orderedReady === true');
  const call = (fn, arg) => page.evaluate(([f, a]) => window.ordered[f](a), [fn, arg]);
  console.log(`ordered live benchmark: Chromium headless, server ${server.url}, client ${clientDist}, timer resolution ${await call('resolutionMs')} ms, ${count} changes per case`);
  for (const size of sizes) {
    const fx = await freshFixture(server);
    const t0 = Date.now();
    await insertRows(fx, 1, size, 1000);
    const insertMs = Date.now() - t0;
    await call('setup', { url: fx.url, user: fx.user, password: fx.password });
    const ids = Array.from({ length: 40 }, (_, i) => 1 + Math.floor((i * size) / 40));
    const plain = `SELECT * FROM ${fx.table}`;
    // Both cases run twice, alternating, so drift on the shared machine hits both alike; the
    // n values keep rising, so every ordered change still enters the window.
    const ordered = [];
    const baseline = [];
    let base = 1000;
    for (let rep = 0; rep < 2; rep++) {
      ordered.push(await call('changeCost', { sql: `${plain} ORDER BY n DESC, id LIMIT 50`, table: fx.table, ids, count, base, rowsArray: true }));
      base += count;
      baseline.push(await call('changeCost', { sql: plain, table: fx.table, ids, count, base, rowsArray: false }));
      base += count;
    }
    const pick = (xs) => ({ meanMs: (xs[0].meanMs + xs[1].meanMs) / 2, medianMs: Math.min(xs[0].medianMs, xs[1].medianMs), frames: xs[0].frames + xs[1].frames, windowSize: xs[0].windowSize });
    const o = pick(ordered);
    const b = pick(baseline);
    console.log(`\n== ${size} rows (inserted in ${insertMs} ms)`);
    console.log(`ORDER BY n DESC, id LIMIT 50 (window ${o.windowSize} rows): mean ${fmt(o.meanMs)} ms median ${fmt(o.medianMs)} ms (${o.frames} frames)`);
    console.log(`unordered, rowMap only (${b.windowSize} rows):       mean ${fmt(b.meanMs)} ms median ${fmt(b.medianMs)} ms (${b.frames} frames)`);
    results.push({ size, o, b });
  }
  console.log('\n== summary');
  const first = results[0];
  for (const r of results) {
    console.log(`${String(r.size).padStart(6)} rows: ordered ${fmt(r.o.medianMs)} ms median (${fmt(r.o.medianMs / first.o.medianMs, 2)}x the ${first.size}-row cost), unordered ${fmt(r.b.medianMs)} ms; ordered / unordered ${fmt(r.o.medianMs / r.b.medianMs, 2)}x (mean ${fmt(r.o.meanMs / r.b.meanMs, 2)}x)`);
  }
} finally {
  await close();
}
process.exit(0);
