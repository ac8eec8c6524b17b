// Shared set-up of the end-to-end tests: the test server (the one scripts/test.sh started,
// via KALAMDB_URL, or our own), root SQL, a counting proxy, a closed port and a server that
// never answers. Nothing here answers for the KalamDB server: the proxy forwards every byte.
import { Agent, createServer, request as httpRequest } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { clientDir, login, sharedTestServer, sql, startTestServer } from '../support/testserver.mjs';

export { root, clientDir, login } from '../support/testserver.mjs';

export function importClientInNode() {
  return import(pathToFileURL(join(clientDir, 'node.js')).href);
}

/** The test server: KALAMDB_URL when set (scripts/test.sh), else a private one. */
export function testServer() {
  return sharedTestServer();
}

/**
 * A test server of our own, for configurations the shared one cannot have: `rootPassword`
 * null starts it unconfigured (setup required); `args` are extra flags
 * (e.g. `--access-token-ttl-secs 2`).
 */
export function freshServer({ rootPassword, args = [] } = {}) {
  return startTestServer(args, rootPassword === undefined ? {} : { password: rootPassword });
}

/** Runs SQL as root with plain fetch (set-up must not depend on the code under test). */
export async function rootSql(server, text) {
  return sql(server.url, await login(server.url, 'root', server.rootPassword), text);
}

/**
 * A transparent HTTP proxy to `target` that counts requests per `METHOD /path` and the peak
 * number of `POST /v1/api/sql` requests in flight. With a barrier it holds those requests
 * until `barrier` of them are in flight at once (or `barrierTimeoutMs` passes), which shows
 * whether a client really sends concurrently. Control: `POST /__proxy/reset {barrier?,
 * barrierTimeoutMs?}` (returns the stats, then clears them) and `POST /__proxy/stats`.
 */
export async function countingProxy(target) {
  const t = new URL(target);
  let state;
  const fresh = (opts = {}) => ({
    counts: {}, inFlight: 0, maxInFlight: 0, barrier: opts.barrier ?? 0, barrierTimeoutMs: opts.barrierTimeoutMs ?? 8000,
    held: [], released: !opts.barrier, barrierTimedOut: false, timer: undefined,
  });
  state = fresh();
  const stats = () => ({ counts: state.counts, inFlight: state.inFlight, maxInFlight: state.maxInFlight, barrierTimedOut: state.barrierTimedOut });
  const release = (timedOut) => {
    if (state.released) return;
    state.released = true;
    state.barrierTimedOut = timedOut;
    clearTimeout(state.timer);
    for (const go of state.held.splice(0)) go();
  };
  // Our own agent, destroyed on close: Node's default agent keeps upstream sockets alive,
  // which would keep the test process running when the upstream server outlives it.
  const agent = new Agent({ keepAlive: true });
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path.startsWith('/__proxy/')) {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const cors = { 'access-control-allow-origin': '*', 'content-type': 'application/json' };
        if (req.method === 'OPTIONS') { res.writeHead(204, { ...cors, 'access-control-allow-headers': '*', 'access-control-allow-methods': 'POST' }).end(); return; }
        const out = stats();
        if (path === '/__proxy/reset') {
          release(false);
          state = fresh(chunks.length ? JSON.parse(Buffer.concat(chunks).toString() || '{}') : {});
        }
        res.writeHead(200, cors).end(JSON.stringify(out));
      });
      return;
    }
    const key = `${req.method} ${path}`;
    state.counts[key] = (state.counts[key] ?? 0) + 1;
    const tracked = key === 'POST /v1/api/sql';
    const s = state;
    if (tracked) {
      s.inFlight += 1;
      s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    }
    let done = false;
    const finish = () => {
      if (tracked && !done) { done = true; s.inFlight -= 1; }
    };
    const forward = () => {
      const upstream = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
        up.on('end', finish);
      });
      upstream.on('error', (e) => { finish(); res.destroy(e); });
      req.pipe(upstream);
    };
    res.on('close', finish);
    if (tracked && !s.released) {
      s.held.push(forward);
      if (s.held.length === 1) s.timer = setTimeout(() => { if (s === state) release(true); }, s.barrierTimeoutMs);
      if (s.inFlight >= s.barrier) release(false);
    } else {
      forward();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => { release(false); server.closeAllConnections?.(); agent.destroy(); return new Promise((ok) => server.close(ok)); } };
}

/** A loopback URL where nothing listens (bound, then closed). */
export async function deadUrl() {
  const s = createTcpServer();
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return `http://127.0.0.1:${port}`;
}

/**
 * A TCP server that accepts connections and never answers. Its `statsUrl` (another port,
 * so browsers do not queue it behind the hanging sockets) answers `{"connections": n}`: the
 * connections that sent a request since the last call, and then closes them all.
 */
export async function hangingServer() {
  const sockets = new Set();
  let connections = 0;
  const s = createTcpServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    sock.once('data', () => { connections += 1; });
  });
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  const stats = createServer((req, res) => {
    const body = JSON.stringify({ connections });
    connections = 0;
    for (const sock of sockets) sock.destroy();
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' }).end(body);
  });
  await new Promise((ok) => stats.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${s.address().port}`,
    statsUrl: `http://127.0.0.1:${stats.address().port}`,
    close: () => {
      for (const sock of sockets) sock.destroy();
      stats.closeAllConnections?.();
      return Promise.all([new Promise((ok) => s.close(ok)), new Promise((ok) => stats.close(ok))]);
    },
  };
}
