// Issue 13 (hardening) end to end: hardening-scenarios.mjs in Node (with the `ws` package),
// on a Chromium page and in a dedicated worker, against a test server of its own (the
// lastRows scenario drops every socket of the server). E2E_ENVS=node,page,worker and
// E2E_ONLY="scenario name|other" narrow a run.
// Run: node --test tests/e2e/hardening.test.mjs (after node scripts/build.mjs client --dev)
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { openScenarioBrowser } from './support/scenario-browser.mjs';
import { scenarios, runScenarios } from './hardening-scenarios.mjs';
import { importClientInNode, freshServer, rootSql } from './support.mjs';

const envs = (process.env.E2E_ENVS ?? 'node,page,worker').split(',').map((s) => s.trim()).filter(Boolean);
const only = process.env.E2E_ONLY ? process.env.E2E_ONLY.split('|') : undefined;
const run = Math.random().toString(36).slice(2, 8);

let server;
let scenarioBrowser;

before(async () => {
  server = await freshServer();
  if (envs.some((e) => e !== 'node')) scenarioBrowser = await openScenarioBrowser();
});

after(async () => {
  await scenarioBrowser?.close();
  await server?.close();
});

async function prepare(env) {
  const ns = `hard_${env}_${run}`;
  const user = `hu_${env}_${run}`;
  const password = `Secret-${run}-${env}-1!`;
  await rootSql(server, `CREATE NAMESPACE ${ns}`);
  await rootSql(server, `CREATE USER '${user}' WITH PASSWORD '${password}' ROLE user`);
  return { env, url: server.url, rootPassword: server.rootPassword, ns, user, password };
}

function runInBrowser(cfg, inWorker) {
  return scenarioBrowser.run({ scenariosUrl: '/tests/e2e/hardening-scenarios.mjs', cfg, inWorker, only });
}

for (const env of envs) {
  test(`hardening in ${env === 'node' ? `Node ${process.versions.node}` : env === 'page' ? 'a Chromium page' : 'a Chromium dedicated worker'}`, async (t) => {
    const cfg = await prepare(env);
    let results;
    let logs = [];
    if (env === 'node') {
      results = await runScenarios(await importClientInNode(), { ...cfg, WebSocket }, only);
    } else {
      ({ results, logs } = await runInBrowser(cfg, env === 'worker'));
    }
    const names = Object.keys(scenarios).filter((n) => !only || only.includes(n));
    assert.deepEqual(results.map((r) => r.name), names, 'every scenario reported');
    for (const r of results) {
      await t.test(`${r.name} (${r.ms} ms)`, () => {
        if (!r.ok) assert.fail(`${r.error}${logs.length ? `\nbrowser log:\n${logs.join('\n')}` : ''}`);
      });
    }
    // Nothing the client did may surface as an uncaught error on the page.
    assert.deepEqual(logs.filter((l) => l.startsWith('pageerror')), [], 'no uncaught errors');
  });
}
