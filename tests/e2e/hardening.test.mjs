// Issue 13 (hardening) end to end: hardening-scenarios.mjs in Node (with the `ws` package),
// on a Chromium page and in a dedicated worker, against a test server of its own (the
// lastRows scenario drops every socket of the server). E2E_ENVS=node,page,worker and
// E2E_ONLY="scenario name|other" narrow a run.
// Run: node --test tests/e2e/hardening.test.mjs (after node scripts/build.mjs client --dev)
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { writeFileSync, mkdirSync } from 'node:fs';
import WebSocket from 'ws';
import { serveStatic } from '../../scripts/static-server.mjs';
import { launchChromium } from '../support/browser.mjs';
import { scenarios, runScenarios } from './hardening-scenarios.mjs';
import { root, clientDir, importClientInNode, freshServer, rootSql } from './support.mjs';

const envs = (process.env.E2E_ENVS ?? 'node,page,worker').split(',').map((s) => s.trim()).filter(Boolean);
const only = process.env.E2E_ONLY ? process.env.E2E_ONLY.split('|') : undefined;
const run = Math.random().toString(36).slice(2, 8);

let server;
let statics;
let browser;

before(async () => {
  server = await freshServer();
  if (envs.some((e) => e !== 'node')) {
    mkdirSync(join(root, 'tests', 'output'), { recursive: true });
    writeFileSync(join(root, 'tests', 'output', 'e2e-blank.html'), '<!doctype html><meta charset="utf-8"><title>e2e</title>');
    statics = await serveStatic(root);
    browser = await launchChromium();
  }
});

after(async () => {
  await browser?.close();
  await statics?.close();
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

async function runInBrowser(cfg, inWorker) {
  const page = await browser.newPage();
  const logs = [];
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (process.env.E2E_DEBUG) process.stderr.write(`[${cfg.env}] ${m.type()}: ${m.text()}\n`);
  });
  await page.goto(`${statics.url}/tests/output/e2e-blank.html`);
  const entry = `/${relative(root, join(clientDir, 'index.js'))}`;
  const scenariosUrl = '/tests/e2e/hardening-scenarios.mjs';
  try {
    const results = await page.evaluate(async ({ cfg, entry, scenariosUrl, inWorker, only }) => {
      if (!inWorker) {
        const kalam = await import(entry);
        const { runScenarios } = await import(scenariosUrl);
        return runScenarios(kalam, cfg, only);
      }
      const code = `
        const kalam = await import(${JSON.stringify(location.origin + entry)});
        const { runScenarios } = await import(${JSON.stringify(location.origin + scenariosUrl)});
        postMessage({ env: typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope ? 'worker' : 'not a worker',
          results: await runScenarios(kalam, ${JSON.stringify(cfg)}, ${JSON.stringify(only ?? null)} ?? undefined) });`;
      const worker = new Worker(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })), { type: 'module' });
      const msg = await new Promise((ok, fail) => {
        worker.onmessage = (e) => ok(e.data);
        worker.onerror = (e) => fail(new Error(`worker error: ${e.message}`));
      });
      worker.terminate();
      if (msg.env !== 'worker') throw new Error('the scenarios did not run in a dedicated worker');
      return msg.results;
    }, { cfg, entry, scenariosUrl, inWorker, only });
    return { results, logs };
  } finally {
    await page.close();
  }
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
