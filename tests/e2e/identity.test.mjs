// Two clients of different users in one page on the server's own origin keep their
// identities across a token renewal. (The server's `kalamdb_refresh` cookie wins over the
// Bearer refresh token on /v1/api/auth/refresh, so an SDK that lets fetch send cookies
// renews the second client as whoever logged in last.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { root, rootSql, startTestServer } from '../support/testserver.mjs';
import { launchChromium } from '../support/browser.mjs';

let server;
let browser;

before(async () => {
  // Serving the repository makes /dist/client/index.js same-origin with the API.
  server = await startTestServer(['--static-dir', root, '--access-token-ttl-secs', '3600']);
  const sql = await rootSql(server.url);
  await sql("CREATE USER 'alice' WITH PASSWORD 'alice-pass-1' ROLE user");
  await sql("CREATE USER 'bob' WITH PASSWORD 'bob-pass-1' ROLE user");
  server.fault = sql.fault;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('same-origin clients of two users stay themselves after their tokens are renewed', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/tests/e2e/consumer-page.html`); // any same-origin document
  const whoami = () => page.evaluate(async () => {
    const { createClient, Auth } = await import('/dist/client/index.js');
    globalThis.clients ??= {
      alice: createClient({ url: location.origin, auth: Auth.basic('alice', 'alice-pass-1') }),
      bob: createClient({ url: location.origin, auth: Auth.basic('bob', 'bob-pass-1') }),
    };
    const out = [];
    for (const c of [globalThis.clients.alice, globalThis.clients.bob]) {
      out.push((await c.queryOne('SELECT CURRENT_USER() AS u')).u.asString());
    }
    return out;
  });
  assert.deepEqual(await whoami(), ['alice', 'bob']);
  // Force renewal by refresh token: only access tokens expire (short of a new login).
  const renewed = await page.evaluate(async () => {
    const { alice, bob } = globalThis.clients;
    await alice.refreshToken();
    await bob.refreshToken();
    return [(await alice.queryOne('SELECT CURRENT_USER() AS u')).u.asString(), (await bob.queryOne('SELECT CURRENT_USER() AS u')).u.asString()];
  });
  assert.deepEqual(renewed, ['alice', 'bob']);
  await server.fault({ action: 'expire_tokens' });
  assert.deepEqual(await whoami(), ['alice', 'bob']);
  await page.close();
});
