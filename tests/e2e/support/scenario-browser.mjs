// Runs a scenarios module (`runScenarios(kalam, cfg, only)`, as http-scenarios.mjs and
// hardening-scenarios.mjs export) against the built client package on a Chromium page or in a
// dedicated worker, the way an app imports it: the package's index.js from a static server.
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { serveStatic } from '../../../scripts/static-server.mjs';
import { launchChromium } from '../../support/browser.mjs';
import { clientDir, root } from '../support.mjs';

/** A static server of the repository (with a blank page) and headless Chromium. */
export async function openScenarioBrowser() {
  mkdirSync(join(root, 'tests', 'output'), { recursive: true });
  writeFileSync(join(root, 'tests', 'output', 'e2e-blank.html'), '<!doctype html><meta charset="utf-8"><title>e2e</title>');
  // The package is served from inside the repository; one built elsewhere (KALAM_CLIENT_DIR)
  // through a link in the ignored tests/output.
  let servedClient = clientDir;
  if (relative(root, clientDir).startsWith('..')) {
    servedClient = join(root, 'tests', 'output', `e2e-client-${process.pid}`);
    rmSync(servedClient, { force: true });
    symlinkSync(clientDir, servedClient);
  }
  const statics = await serveStatic(root);
  const browser = await launchChromium();
  return {
    /**
     * `scenariosUrl`: the module's path from the repository root. `consoleErrors`: console
     * errors go into `logs` too. Returns `{ results, logs }`.
     */
    async run({ scenariosUrl, cfg, inWorker, only, consoleErrors = false }) {
      const page = await browser.newPage();
      const logs = [];
      page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        if (consoleErrors && m.type() === 'error') logs.push(`console: ${m.text()}`);
        if (process.env.E2E_DEBUG) process.stderr.write(`[${cfg.env}] ${m.type()}: ${m.text()}\n`);
      });
      await page.goto(`${statics.url}/tests/output/e2e-blank.html`);
      const entry = `/${relative(root, join(servedClient, 'index.js'))}`;
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
    },
    async close() {
      await browser.close();
      await statics.close();
      if (servedClient !== clientDir) rmSync(servedClient, { force: true });
    },
  };
}
