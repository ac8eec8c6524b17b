// The demo end to end, the way a person uses it: runs the README's demo command
// (scripts/demo.sh, embedded test server, no rebuild: DEMO_SKIP_BUILD=1), then in headless
// Chromium signs in as alice (page A), bob (page B) and alice again (page C) and checks
// isolation, live updates across pages, edit and delete, a file attachment with preview,
// the topic worker's replies and relays, and recovery after the resilience panel drops
// every socket. Screenshots go to tests/output/demo/*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../support/browser.mjs';
import { samplePicture } from './demo/png.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const shots = join(root, 'tests', 'output', 'demo');
const VIEWPORT = { width: 1280, height: 800 };

/** Starts `bash scripts/demo.sh` in its own process group; resolves once it prints the URL. */
async function startDemo(siteDir) {
  const env = { ...process.env, DEMO_PORT: '0', DEMO_SKIP_BUILD: '1', DEMO_SITE_DIR: siteDir };
  // The demo's own embedded server: never the server scripts/test.sh exports for other tests.
  delete env.KALAMDB_URL;
  delete env.KALAMDB_ROOT_PASSWORD;
  const child = spawn('bash', [join(root, 'scripts', 'demo.sh')], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (d) => { output += d; if (process.env.E2E_DEBUG) process.stdout.write(d); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const url = await new Promise((ok, ko) => {
    const timer = setTimeout(() => ko(new Error(`the demo printed no URL within 240 s:\n${output}`)), 240_000);
    const check = () => {
      const m = /Open:\s+(http:\/\/\S+?)\/?\s/.exec(output);
      if (m && /Press Ctrl-C/.test(output)) { clearTimeout(timer); ok(m[1]); }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => { clearTimeout(timer); ko(new Error(`the demo exited (${code}) before printing its URL:\n${output}`)); });
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    try { process.kill(-child.pid, 'SIGINT'); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(timer);
  };
  return { url, output: () => output, stop, child };
}

async function until(what, fn, timeoutMs = 15_000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last?.message ?? last})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

test('the demo: two users, three pages, live inbox and room, files, worker, recovery', { timeout: 300_000 }, async (t) => {
  mkdirSync(shots, { recursive: true });
  const siteDir = mkdtempSync(join(tmpdir(), 'kalam-demo-site-'));
  let browser;
  const demo = await startDemo(siteDir);
  t.after(async () => {
    await browser?.close().catch(() => {});
    await demo.stop();
    rmSync(siteDir, { recursive: true, force: true });
  });

  // The command prints the URL and the demo credentials.
  const printed = demo.output();
  assert.match(printed, /alice\s+\/\s+\S+/, 'prints alice\'s credentials');
  assert.match(printed, /bob\s+\/\s+\S+/, 'prints bob\'s credentials');
  const config = await (await fetch(`${demo.url}/demo-config.json`)).json();
  assert.equal(config.mode, 'embedded');
  assert.deepEqual(config.people.map((p) => p.id), ['alice', 'bob']);

  browser = await launchChromium();
  const errors = [];
  async function open(name) {
    const ctx = await browser.newContext({ viewport: VIEWPORT });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(`[${name}] ${e.message}`));
    page.on('console', (m) => {
      // Chromium logs failed WebSocket handshakes and 401/503 answers itself; the faults
      // below cause them on purpose.
      const expected = /^WebSocket connection to .* failed|^Failed to load resource: the server responded with a status of (401|503)/;
      if (m.type() === 'error' && !expected.test(m.text())) errors.push(`[${name}] console: ${m.text()}`);
      if (process.env.E2E_DEBUG) console.log(`[${name}] ${m.type()}: ${m.text()}`);
    });
    await page.goto(`${demo.url}/`);
    return page;
  }
  const shot = async (page, name, settle = true) => {
    if (settle) await page.waitForTimeout(450); // let entry animations and smooth scrolling settle
    await page.screenshot({ path: join(shots, `${name}.png`) });
  };
  const msg = (page, text) => page.locator('[data-testid=message]', { hasText: text });
  const connected = (page, timeout = 20_000) => page.waitForSelector('[data-testid=connection][data-state=connected]', { timeout });
  async function signIn(page, user) {
    await page.click(`[data-testid=signin-${user}]`);
    await page.waitForSelector('[data-testid=me]');
    await connected(page);
    await page.waitForSelector('.scroller:not(.loading)');
  }
  async function send(page, text) {
    await page.fill('[data-testid=composer-input]', text);
    await page.press('[data-testid=composer-input]', 'Enter');
  }

  const nonce = Date.now().toString(36);
  const A = await open('A');
  const B = await open('B');
  const C = await open('C');
  await A.waitForSelector('[data-testid=signin-alice]');
  await shot(A, '01-sign-in');
  await signIn(A, 'alice');
  await signIn(B, 'bob');
  await shot(B, '02-empty-inbox-bob');
  await signIn(C, 'alice');
  await until('the topic worker to run on A', () => A.$('[data-testid=worker][data-state=running]'));

  // ---- live inbox across alice's pages; bob's inbox stays separate
  const hello = `Lunch at 12:30? Booking the usual place (${nonce})`;
  await send(A, hello);
  await msg(C, hello).waitFor({ timeout: 10_000 });
  const bobNote = `Bob's private note: remember the slides (${nonce})`;
  await send(B, bobNote);
  await msg(B, bobNote).waitFor({ timeout: 10_000 });

  // ---- the worker (a dedicated Web Worker with @kalam-wasm/consumer) answers in alice's inbox
  const replyTo = (text) => `Got it: ${text.split(/\s+/).length} words`;
  const bot = (page, text) => page.locator('.msg.from-bot[data-testid=message]', { hasText: text });
  await bot(C, replyTo(hello)).waitFor({ timeout: 20_000 });
  await bot(A, replyTo(hello)).waitFor({ timeout: 10_000 });
  await bot(B, replyTo(bobNote)).waitFor({ timeout: 20_000 });
  const handled = async () => {
    let n = 0;
    for (const p of [A, B, C]) n += Number(await p.textContent('[data-testid=worker-count]'));
    return n;
  };
  assert.ok(await handled() >= 2, 'the workers report what they handled');

  // Isolation: bob never sees alice's inbox, alice never sees bob's.
  assert.equal(await msg(B, hello).count(), 0, 'bob does not see alice\'s message');
  assert.equal(await bot(B, replyTo(hello)).count(), 0, 'bob does not see alice\'s reply');
  assert.equal(await bot(A, replyTo(bobNote)).count(), 0, 'alice does not see bob\'s reply');
  assert.equal(await msg(A, bobNote).count(), 0, 'alice (A) does not see bob\'s note');
  assert.equal(await msg(C, bobNote).count(), 0, 'alice (C) does not see bob\'s note');

  // ---- edit on A shows up on C
  const edited = `Lunch at 13:00 instead, see you there (${nonce})`;
  await msg(A, hello).hover();
  await msg(A, hello).locator('[data-testid=edit]').click();
  await A.fill('[data-testid=edit-input]', edited);
  await A.press('[data-testid=edit-input]', 'Enter');
  await msg(C, edited).waitFor({ timeout: 10_000 });
  await until('the edited mark on C', async () => (await msg(C, edited).locator('.edited').count()) === 1);
  assert.equal(await msg(C, hello).count(), 0, 'the old text is gone on C');

  // ---- a file attachment: uploaded on A, previewed on C (downloaded with C's token)
  const caption = `Photo from the trip (${nonce})`;
  await A.setInputFiles('[data-testid=composer-file]', { name: 'hills.png', mimeType: 'image/png', buffer: samplePicture() });
  await A.waitForSelector('.pending-file img');
  await A.fill('[data-testid=composer-input]', caption);
  await shot(A, '03-attachment-ready');
  await A.press('[data-testid=composer-input]', 'Enter');
  const picture = msg(C, caption).locator('[data-testid=attachment-image]');
  await picture.waitFor({ timeout: 15_000 });
  await until('the preview image to load on C', () => picture.evaluate((img) => img.complete && img.naturalWidth === 240));
  await C.locator('.msg.from-bot', { hasText: 'hills.png' }).waitFor({ timeout: 20_000 });
  assert.equal(await msg(B, caption).count(), 0, 'bob does not see alice\'s attachment');

  // ---- delete on A disappears from C
  await msg(A, edited).hover();
  await msg(A, edited).locator('[data-testid=delete]').click();
  await until('the deleted message to leave C', async () => (await msg(C, edited).count()) === 0, 10_000);
  await until('the deleted message to leave A', async () => (await msg(A, edited).count()) === 0, 10_000);
  await C.mouse.move(0, 0);
  await shot(C, '04-inbox-alice-second-tab');
  await shot(B, '05-inbox-bob');

  // ---- the shared room: bob posts (relayed by the worker), alice sees it live + unread badge
  await B.click('[data-testid=nav-room]');
  const roomPost = `Morning all, standup moved to 10:15 (${nonce})`;
  await send(B, roomPost);
  await msg(B, roomPost).waitFor({ timeout: 20_000 });
  await until('the lobby unread badge on A', async () => (await A.textContent('[data-testid=unread-room]')) === '1');
  await shot(A, '06-unread-badge');
  await A.click('[data-testid=nav-room]');
  const fromBob = msg(A, roomPost);
  await fromBob.waitFor({ timeout: 10_000 });
  assert.equal(await fromBob.getAttribute('data-author'), 'bob');
  await send(A, `Thanks Bob, see you there (${nonce})`);
  await msg(B, `Thanks Bob, see you there (${nonce})`).waitFor({ timeout: 20_000 });
  await shot(B, '07-room-bob');

  // ---- resilience: drop every socket from A's panel; the pill goes reconnecting, then live
  await A.click('[data-testid=nav-inbox]');
  await A.click('[data-testid=toggle-resilience]');
  await A.waitForSelector('[data-testid=resilience]:not([hidden])');
  await A.click('[data-testid=fault-drop_sockets]');
  await until('A to report reconnecting', () => A.$('[data-testid=timeline] li[data-state=reconnecting]'), 10_000, 25);
  await shot(A, '08-reconnecting', false);
  await connected(A);
  await connected(C);
  await connected(B);
  assert.ok(await A.$('[data-testid=timeline] li[data-state=connected]'), 'the timeline shows the reconnect');
  const afterDrop = `Back online after the socket drop (${nonce})`;
  await send(A, afterDrop);
  await msg(C, afterDrop).waitFor({ timeout: 15_000 });
  await until('the worker to answer after the drop', async () => (await C.locator('.msg.from-bot').count()) >= 3, 20_000);
  await A.mouse.move(0, 0);
  await shot(A, '09-recovered');

  // ---- expire every token: HTTP calls sign in again, live queries and the worker keep going
  await A.click('[data-testid=fault-expire_tokens]');
  await until('the query after expiry', () => A.$('[data-testid=timeline] li:has-text("Next query succeeded")'), 15_000);
  const afterExpiry = `Tokens expired and nobody noticed (${nonce})`;
  await send(C, afterExpiry);
  await msg(A, afterExpiry).waitFor({ timeout: 15_000 });
  await bot(A, replyTo(afterExpiry)).waitFor({ timeout: 20_000 });
  await B.click('[data-testid=nav-inbox]');
  const bobAfterExpiry = `Bob is still Bob after the expiry (${nonce})`;
  await send(B, bobAfterExpiry);
  await bot(B, replyTo(bobAfterExpiry)).waitFor({ timeout: 20_000 });
  assert.equal(await msg(A, bobAfterExpiry).count(), 0, 'isolation holds after re-authentication');
  assert.equal(await B.textContent('[data-testid=me]'), 'Bob');

  // ---- a longer outage: the pill counts down, everything catches up afterwards
  await A.click('[data-testid=fault-outage]');
  await until('a countdown on A', async () => /Reconnecting in \d+s/.test(await A.textContent('[data-testid=connection]')), 10_000, 50);
  await shot(A, '10-outage-countdown', false);
  // Full jitter: the 8 s outage plus at most one capped delay (5 s in the demo) plus slack
  // for a loaded machine.
  await connected(A, 30_000);
  await connected(C, 30_000);
  const afterOutage = `Still here after the outage (${nonce})`;
  await send(C, afterOutage);
  await msg(A, afterOutage).waitFor({ timeout: 15_000 });
  await shot(A, '11-after-outage');

  assert.deepEqual([...errors], [], 'no page errors');
});

test('the React example (/react/, the same demo command): signs in, shows live rows in ORDER BY id, an optimistic insert shows pending at once and is confirmed once', { timeout: 240_000 }, async (t) => {
  mkdirSync(shots, { recursive: true });
  const siteDir = mkdtempSync(join(tmpdir(), 'kalam-demo-site-'));
  let browser;
  const demo = await startDemo(siteDir);
  t.after(async () => {
    await browser?.close().catch(() => {});
    await demo.stop();
    rmSync(siteDir, { recursive: true, force: true });
  });
  assert.match(demo.output(), /React:\s+http:\/\/\S+\/react\//, 'prints the React example\'s URL');
  const config = await (await fetch(`${demo.url}/demo-config.json`)).json();
  const alice = config.people.find((p) => p.id === 'alice');
  const sqlAsAlice = async (sql) => {
    const login = await (await fetch(`${demo.url}/v1/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: alice.id, password: alice.password }) })).json();
    const res = await (await fetch(`${demo.url}/v1/api/sql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${login.access_token}` }, body: JSON.stringify({ sql }) })).json();
    assert.equal(res.status, 'success', JSON.stringify(res));
  };
  const nonce = Date.now().toString(36);
  await sqlAsAlice(`INSERT INTO demo.inbox (id, body) VALUES (1, 'first (${nonce})'), (3, 'third (${nonce})')`);

  browser = await launchChromium();
  const page = await (await browser.newContext({ viewport: VIEWPORT })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  await page.goto(`${demo.url}/react/`);
  await page.getByRole('button', { name: 'Sign in as Alice' }).click({ timeout: 15_000 });
  await page.waitForSelector('[data-testid=status]:text-is("live")', { timeout: 20_000 });
  const notes = () => page.$$eval('[data-testid=notes] li > span:first-child', (spans) => spans.map((s) => s.textContent));
  await until('the seeded rows', async () => (await notes()).join('|') === `first (${nonce})|third (${nonce})`);

  // A write by someone else arrives live, in ORDER BY id (between the two).
  await sqlAsAlice(`INSERT INTO demo.inbox (id, body) VALUES (2, 'second (${nonce})')`);
  await until('the live row in order', async () => (await notes()).join('|') === `first (${nonce})|second (${nonce})|third (${nonce})`);

  // Every state of the list from the click on: the note is pending before the server answers,
  // then confirmed, and never shown twice.
  await page.evaluate(() => {
    window.seen = [];
    const list = document.querySelector('[data-testid=notes]');
    const record = () => window.seen.push([...list.querySelectorAll('li')].map((li) => `${li.dataset.pending}:${li.firstChild.textContent}`));
    new MutationObserver(record).observe(list, { childList: true, subtree: true, attributes: true, characterData: true });
  });
  const text = `optimistic (${nonce})`;
  await page.fill('input[aria-label="New note"]', text);
  await page.click('button[type=submit]');
  await until('the note confirmed', async () => (await page.$(`li[data-pending=false]:has-text("${text}")`)) !== null);
  const seen = await page.evaluate(() => window.seen);
  const states = seen.map((list) => list.filter((x) => x.endsWith(text)));
  assert.equal(states.find((s) => s.length > 0)?.[0], `true:${text}`, 'shown pending first');
  assert.ok(states.every((s) => s.length <= 1), `never twice: ${JSON.stringify(states)}`);
  assert.equal((await notes()).at(-1), text, 'the newest id is last');
  await page.screenshot({ path: join(shots, '12-react-example.png') });
  assert.deepEqual(errors, [], 'no page errors');
});
