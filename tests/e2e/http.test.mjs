// The HTTP half of @kalam-wasm/client end to end: the same scenarios (http-scenarios.mjs)
// run in Node, on a page in headless Chromium and in a dedicated worker, against the built
// package (dist/client) and the test server (KALAMDB_URL, or one started here).
// E2E_ENVS=node,page,worker and E2E_ONLY="scenario name|other" narrow a run.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { writeFileSync, mkdirSync } from 'node:fs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { launchChromium } from '../support/browser.mjs';
import { scenarios, runScenarios } from './http-scenarios.mjs';
import { root, clientDir, importClientInNode, testServer, freshServer, rootSql, countingProxy, deadUrl, hangingServer } from './support.mjs';

const envs = (process.env.E2E_ENVS ?? 'node,page,worker').split(',').map((s) => s.trim()).filter(Boolean);
const only = process.env.E2E_ONLY ? process.env.E2E_ONLY.split('|') : undefined;
const run = Math.random().toString(36).slice(2, 8);

// Known problems, reported as TODO (still run and shown, not counted as failures).
const knownIssues = {};

let server;
let proxy;
let hang;
let dead;
let statics;
let browser;
let shortTtl;
let shortTtlProxy;
const unconfigured = [];

before(async () => {
  server = await testServer();
  proxy = await countingProxy(server.url);
  // Servers of our own: 2 s access tokens (proactive refresh), and unconfigured ones (setup).
  shortTtl = await freshServer({ args: ['--access-token-ttl-secs', '2'] });
  shortTtlProxy = await countingProxy(shortTtl.url);
  hang = await hangingServer();
  dead = await deadUrl();
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
  await hang?.close();
  await proxy?.close();
  await shortTtlProxy?.close();
  await shortTtl?.close();
  for (const s of unconfigured) await s.close();
  await server?.close();
});

/** A namespace, tables and users of its own for each environment. */
async function prepare(env) {
  const ns = `e2e_${env}_${run}`;
  const users = Object.fromEntries(['alice', 'bob', 'carol', 'dave'].map((u) => [u, { id: `${u}_${env}_${run}`, password: `pw-${u}-${run}!` }]));
  const statements = [
    `CREATE NAMESPACE ${ns}`,
    `CREATE TABLE ${ns}.types (id TEXT PRIMARY KEY, big BIGINT, dec DECIMAL(10,2), dbl DOUBLE, flag BOOLEAN, txt TEXT, doc JSON, ts TIMESTAMP, day DATE, raw BYTES, f FILE, tm TIME, vec EMBEDDING(3), uid UUID, i INT, dt DATETIME) WITH (TYPE = 'USER')`,
    `CREATE TABLE ${ns}.notes (id TEXT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER')`,
    `CREATE TABLE ${ns}.items (id TEXT PRIMARY KEY, title TEXT, n INT) WITH (TYPE = 'USER')`,
    `CREATE TABLE ${ns}.pairs (a TEXT NOT NULL, b INT NOT NULL, v TEXT, PRIMARY KEY (a, b)) WITH (TYPE = 'USER')`,
    `CREATE TABLE ${ns}.bigkeys (id BIGINT PRIMARY KEY, v TEXT) WITH (TYPE = 'USER')`,
    `CREATE TABLE ${ns}.docs (id TEXT PRIMARY KEY, title TEXT, f FILE) WITH (TYPE = 'USER')`,
    ...Object.values(users).map((u) => `CREATE USER '${u.id}' WITH PASSWORD '${u.password}' ROLE user`),
  ];
  for (const sql of statements) await rootSql(server, sql);
  await rootSql(shortTtl, `CREATE USER '${users.alice.id}' WITH PASSWORD '${users.alice.password}' ROLE user`);
  const fresh = await freshServer({ rootPassword: null });
  unconfigured.push(fresh);
  return {
    shortTtlProxyUrl: shortTtlProxy.url, unconfiguredUrl: fresh.url, env, debug: Boolean(process.env.E2E_DEBUG), url: server.url, proxyUrl: proxy.url, deadUrl: dead, hangUrl: hang.url, hangStatsUrl: hang.statsUrl, ns, rootPassword: server.rootPassword, users };
}

async function runInBrowser(cfg, inWorker) {
  const page = await browser.newPage();
  const logs = [];
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') logs.push(`console: ${m.text()}`);
    if (process.env.E2E_DEBUG) process.stderr.write(`[${cfg.env}] ${m.type()}: ${m.text()}\n`);
  });
  await page.goto(`${statics.url}/tests/output/e2e-blank.html`);
  const entry = `/${relative(root, join(clientDir, 'index.js'))}`;
  const scenariosUrl = '/tests/e2e/http-scenarios.mjs';
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
  test(`HTTP client in ${env === 'node' ? `Node ${process.versions.node}` : env === 'page' ? 'a Chromium page' : 'a Chromium dedicated worker'}`, async (t) => {
    const cfg = await prepare(env);
    let results;
    let logs = [];
    if (env === 'node') {
      results = await runScenarios(await importClientInNode(), cfg, only);
    } else {
      ({ results, logs } = await runInBrowser(cfg, env === 'worker'));
    }
    const names = Object.keys(scenarios).filter((n) => !only || only.includes(n));
    assert.deepEqual(results.map((r) => r.name), names, 'every scenario reported');
    for (const r of results) {
      const todo = knownIssues[env]?.[r.name];
      await t.test(r.name, todo ? { todo } : {}, () => {
        if (!r.ok) assert.fail(`${r.error}${logs.length ? `\nbrowser log:\n${logs.join('\n')}` : ''}`);
      });
    }
  });
}
