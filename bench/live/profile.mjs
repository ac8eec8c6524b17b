#!/usr/bin/env node
// CPU profile of our snapshot load (DevTools protocol), for finding hot spots:
//   BENCH_ROWS=20000 node bench/live/profile.mjs   → prints the top self-time functions
import { writeFileSync } from 'node:fs';
import { freshFixture, insertRows } from '../../tests/e2e/support/server.mjs';
import { openBench } from './page.mjs';

const rows = Number(process.env.BENCH_ROWS ?? 20000);
const { server, page, call, close } = await openBench();
try {
  const fx = await freshFixture(server);
  await insertRows(fx, 1, rows, 1000);
  await call('setup', { url: fx.url, user: fx.user, password: fx.password });
  const sql = `SELECT * FROM ${fx.table}`;
  for (let i = 0; i < 3; i++) await call('oursSnapshot', { sql }); // warm up
  await new Promise((ok) => setTimeout(ok, 1200)); // a fresh send budget
  await call('takeTimeline');
  const one = await call('oursSnapshot', { sql });
  const timeline = await call('takeTimeline');
  const t0 = timeline[0]?.[1] ?? 0;
  const busy = timeline.filter((e) => e[0] === 'message').reduce((a, e) => a + e[2], 0);
  console.log(`one snapshot: ${one.ms.toFixed(1)} ms, ${busy.toFixed(1)} ms in message handlers`);
  if (process.env.TIMELINE) for (const e of timeline) console.log(`  ${e[0].padEnd(8)} +${(e[1] - t0).toFixed(1)} ms${e[2] === undefined ? '' : ` (${e[2].toFixed(1)} ms)`}`);
  await new Promise((ok) => setTimeout(ok, 1200));
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
  await cdp.send('Profiler.start');
  const runs = [];
  for (let i = 0; i < 5; i++) runs.push(await call('oursSnapshot', { sql }));
  const { profile } = await cdp.send('Profiler.stop');
  if (process.env.PROFILE_OUT) writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));
  const self = new Map();
  const dt = profile.timeDeltas;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const total = dt.reduce((a, b) => a + b, 0);
  profile.samples.forEach((id, i) => {
    const n = byId.get(id);
    const name = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`;
    self.set(name, (self.get(name) ?? 0) + (dt[i] ?? 0));
  });
  console.log(`snapshot runs: ${runs.map((r) => `${r.ms.toFixed(0)} ms`).join(', ')}; profile ${(total / 1000).toFixed(0)} ms`);
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
} finally {
  await close();
}
process.exit(0);
