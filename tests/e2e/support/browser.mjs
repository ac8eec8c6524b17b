// Node side of the live e2e tests: a static server for the built package + the browser
// harness (tests/e2e/support/www), headless Chromium, and `call(method, ...args)` that runs a
// Harness method on the page's main thread or in a dedicated worker.
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../../support/browser.mjs';
import { serveStatic } from '../../../scripts/static-server.mjs';
import { root } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** The built client package to test (KALAM_CLIENT_DIR, see tests/support/testserver.mjs). */
import { clientDir as clientDist } from '../../support/testserver.mjs';

export { clientDist };

export async function openBrowser() {
  const dir = mkdtempSync(join(tmpdir(), 'kalam-live-e2e-'));
  symlinkSync(clientDist, join(dir, 'client'));
  symlinkSync(join(here, 'www'), join(dir, 'e2e'));
  const site = await serveStatic(dir);
  const browser = await launchChromium();
  return {
    async page(where) {
      const page = await browser.newPage();
      const logs = [];
      page.on('console', (m) => {
        logs.push(`${m.type()}: ${m.text()}`);
        if (process.env.E2E_DEBUG) console.log(`[${where}] ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
      await page.goto(`${site.url}/e2e/index.html`);
      await page.waitForFunction('window.ready === true');
      if (where === 'worker') await page.evaluate('W.start()');
      const call = (method, ...args) => page.evaluate(([w, m, a]) => (w === 'worker' ? window.W.call(m, a) : window.H[m](...a)), [where, method, args]);
      return { page, call, logs, close: () => page.close() };
    },
    async close() {
      await browser.close();
      await site.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
