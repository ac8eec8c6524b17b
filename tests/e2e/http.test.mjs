// The HTTP half of @kalam-wasm/client end to end: the same scenarios (http-scenarios.mjs)
// run in Node, on a page in headless Chromium and in a dedicated worker, against the built
// package (dist/client) and the test server (KALAMDB_URL, or one started here).
// E2E_ENVS=node,page,worker and E2E_ONLY="scenario name|other" narrow a run.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openScenarioBrowser } from './support/scenario-browser.mjs';
import { scenarios, runScenarios } from './http-scenarios.mjs';
import { importClientInNode, testServer, freshServer, rootSql, countingProxy, deadUrl, hangingServer } from './support.mjs';

const envs = (process.env.E2E_ENVS ?? 'node,page,worker').split(',').map((s) => s.trim()).filter(Boolean);
const only = process.env.E2E_ONLY ? process.env.E2E_ONLY.split('|') : undefined;
const run = Math.random().toString(36).slice(2, 8);

// Known problems, reported as TODO (still run and shown, not counted as failures).
const knownIssues = {};

let server;
let proxy;
let hang;
let dead;
let scenarioBrowser;
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
  if (envs.some((e) => e !== 'node')) scenarioBrowser = await openScenarioBrowser();
});

after(async () => {
  await scenarioBrowser?.close();
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

function runInBrowser(cfg, inWorker) {
  return scenarioBrowser.run({ scenariosUrl: '/tests/e2e/http-scenarios.mjs', cfg, inWorker, only, consoleErrors: true });
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
