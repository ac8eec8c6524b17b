// What run.mjs and profile.mjs share: a test server (or KALAMDB_URL), the built client and
// bench/live/www served side by side, and headless Chromium on the bench page.
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../../tests/support/browser.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';
import { testServer } from '../../tests/e2e/support/server.mjs';
import { clientDist } from '../../tests/e2e/support/browser.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Opens the bench page; `call(name, arg)` runs `window.bench[name](arg)` there. */
export async function openBench() {
  const server = await testServer();
  const dir = mkdtempSync(join(tmpdir(), 'kalam-live-bench-'));
  symlinkSync(clientDist, join(dir, 'client'));
  symlinkSync(join(here, 'www'), join(dir, 'bench'));
  // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
  const site = await serveStatic(dir, 0, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
  const browser = await launchChromium();
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  await page.goto(`${site.url}/bench/index.html`);
  await page.waitForFunction('window.ready === true');
  const call = (fn, arg) => page.evaluate(([f, a]) => window.bench[f](a), [fn, arg]);
  const close = async () => {
    // A stuck close must not hold the figures hostage.
    const settle = (p) => Promise.race([p, new Promise((ok) => setTimeout(ok, 2000))]);
    await settle(browser.close());
    await settle(site.close());
    rmSync(dir, { recursive: true, force: true });
    await settle(server.stop());
  };
  return { server, page, call, close };
}
