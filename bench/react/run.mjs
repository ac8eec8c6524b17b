#!/usr/bin/env node
// React commit time for a 10,000-row live list receiving 100 server updates per second, with
// React 18 and 19 (production builds, StrictMode), in headless Chromium. For each version:
// the list fed by @kalam-wasm/react's useLiveQuery, against a baseline measured in the same
// run: the same list fed by client.live() into useState (what the hook adds is the ratio).
// The packages are the PACKED dist/ tarballs, installed as in tests/e2e/react.test.mjs (that
// install is reused; run under the dist lock, it packs dist/). Prints figures and ratios.
// Usage: node bench/react/run.mjs   (BENCH_ROWS, BENCH_SECONDS, BENCH_RATE to change the load)
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshFixture, insertRows } from '../../tests/e2e/support/server.mjs';
import { testServer } from '../../tests/e2e/support/server.mjs';
import { launchChromium } from '../../tests/support/browser.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { bin } from '../../tests/packages/toolbox.mjs';
import { packTarballs, reactApp, REACT_VERSIONS } from '../../tests/e2e/react/app.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const rowCount = Number(process.env.BENCH_ROWS ?? 10_000);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rate = Number(process.env.BENCH_RATE ?? 100);

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const q = (xs, p) => sorted(xs)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : String(n));

/** The installed app of tests/e2e/react for `major`, plus this bench page built for production. */
function benchBuild(major, tarballs) {
  const { dir } = reactApp(major, tarballs);
  cpSync(join(here, 'app', 'bench.html'), join(dir, 'bench.html'));
  cpSync(join(here, 'app', 'bench.js'), join(dir, 'bench.js'));
  const out = join(dir, 'dist-bench');
  rmSync(out, { recursive: true, force: true });
  writeFileSync(join(dir, 'vite.bench.config.js'), `export default ${JSON.stringify({ build: { outDir: 'dist-bench', rollupOptions: { input: { bench: join(dir, 'bench.html') } } } })};\n`);
  execFileSync(bin('vite', 'vite'), ['build', '--config', 'vite.bench.config.js', '--logLevel', 'warn'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } });
  return out;
}

async function post(url, token, sql) {
  const res = await fetch(`${url}/v1/api/sql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ sql }) });
  const body = await res.json();
  if (body.status !== 'success') throw new Error(JSON.stringify(body));
}

/** `rate` UPDATEs per second for `seconds`, each on its own row, sent on a fixed schedule. */
async function updates(fx, offset) {
  const total = rate * seconds;
  const t0 = performance.now();
  const inFlight = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    inFlight.push(post(fx.url, fx.token, `UPDATE ${fx.table} SET n = ${offset + i} WHERE id = ${1 + ((i * 7919) % rowCount)}`));
  }
  await Promise.all(inFlight);
  return (performance.now() - t0) / 1000;
}

const server = await testServer();
const tarballs = packTarballs();
const browser = await launchChromium();
const results = [];
try {
  const fx = await freshFixture(server);
  await insertRows(fx, 1, rowCount, 1000);
  const sql = `SELECT * FROM ${fx.table}`;
  console.log(`React commit benchmark: ${rowCount} rows, ${rate} updates/s for ${seconds} s, production builds in StrictMode, Chromium headless, server ${server.url}`);
  let offset = 1000;
  for (const major of Object.keys(REACT_VERSIONS)) {
    const site = await serveStatic(benchBuild(major, tarballs));
    const page = await browser.newPage();
    page.on('pageerror', (e) => console.error('pageerror:', e.message));
    await page.goto(`${site.url}/bench.html`);
    await page.waitForFunction('window.ready === true');
    const version = await page.evaluate(() => window.B.version);
    // Baseline and hook alternate twice, so load from other builds hits both alike.
    const byMode = { live: [], hook: [] };
    const sent = { live: 0, hook: 0 };
    const busySeconds = { live: 0, hook: 0 };
    for (const mode of ['live', 'hook', 'hook', 'live']) {
      await page.evaluate((a) => window.B.mount(a), { url: fx.url, user: fx.user, password: fx.password, sql, mode, rows: rowCount });
      const took = await updates(fx, offset);
      offset += rate * seconds;
      await new Promise((ok) => setTimeout(ok, 500)); // the last changes arrive
      const commits = await page.evaluate(() => window.B.finish());
      byMode[mode].push(...commits);
      sent[mode] += rate * seconds;
      busySeconds[mode] += Math.max(took, seconds);
      if (took > seconds * 1.2) console.log(`  (the ${mode} run sent its updates in ${fmt(took)} s: the server was slower than ${rate}/s)`);
    }
    const summary = (mode) => {
      const ms = byMode[mode].map((c) => c.ms);
      return { commits: ms.length, updates: sent[mode], medianMs: q(ms, 0.5), p95Ms: q(ms, 0.95), maxMs: Math.max(...ms), meanMs: ms.reduce((a, b) => a + b, 0) / ms.length, busyPerSec: ms.reduce((a, b) => a + b, 0) / busySeconds[mode], updatesPerSec: sent[mode] / busySeconds[mode] };
    };
    const hook = summary('hook');
    const live = summary('live');
    console.log(`\n== React ${version}`);
    for (const [name, s] of [['useLiveQuery', hook], ['client.live + useState (baseline)', live]]) {
      console.log(`${name}: ${s.commits} commits for ${s.updates} updates (${fmt(s.updatesPerSec, 0)}/s sent); commit median ${fmt(s.medianMs)} ms, p95 ${fmt(s.p95Ms)} ms, max ${fmt(s.maxMs)} ms; ${fmt(s.busyPerSec, 0)} ms of commits per second`);
    }
    console.log(`ratio useLiveQuery / baseline: median ${fmt(hook.medianMs / live.medianMs)}x, p95 ${fmt(hook.p95Ms / live.p95Ms)}x, commits ${fmt(hook.commits / live.commits)}x`);
    results.push({ version, hook, live });
    await page.close();
    await site.close();
  }
  console.log('\n== summary');
  for (const r of results) {
    console.log(`React ${r.version}: useLiveQuery commit median ${fmt(r.hook.medianMs)} ms p95 ${fmt(r.hook.p95Ms)} ms (${r.hook.commits} commits / ${r.hook.updates} updates); baseline ${fmt(r.live.medianMs)} / ${fmt(r.live.p95Ms)} ms (${r.live.commits}); ratio ${fmt(r.hook.medianMs / r.live.medianMs)}x`);
  }
} finally {
  // A stuck close must not hold the figures hostage.
  const settle = (p) => Promise.race([p, new Promise((ok) => setTimeout(ok, 2000))]);
  await settle(browser.close());
  await settle(server.stop());
}
process.exit(0);
