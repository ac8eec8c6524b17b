// A TCP fault proxy for the tests: put it between a client and the test server and it forwards
// every byte until told to misbehave the way real networks do.
//   refuse(ms)     stop listening: new connections get ECONNREFUSED (existing ones are cut)
//   dropAll()      cut every open connection at once (RST; the client sees an abrupt close)
//   blackhole(on)  keep connections open but let nothing through either way, and accept new
//                  ones that never reach the server (Wi-Fi gone, NAT expired)
// It never answers for the server: HTTP and WebSocket bytes pass through untouched.
import { createConnection, createServer } from 'node:net';

/** `target`: the upstream URL (http://host:port). Returns the proxy's controls. */
export async function faultProxy(target) {
  const upstream = new URL(target);
  const pairs = new Set(); // { client, server } sockets of one proxied connection
  let holes = false;
  let refusedUntil = 0;
  let reopenTimer;
  let closed = false;
  const stats = { accepted: 0, refusedPeriods: 0, dropped: 0 };

  const cut = (pair) => {
    pair.client.resetAndDestroy?.() ?? pair.client.destroy();
    pair.server.destroy();
    pairs.delete(pair);
  };

  const onConnection = (client) => {
    stats.accepted += 1;
    client.on('error', () => {});
    const server = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
    server.on('error', () => client.destroy());
    const pair = { client, server, sawHole: holes };
    pairs.add(pair);
    // Forward by hand (not pipe) so a black hole can swallow bytes while the sockets stay open.
    client.on('data', (chunk) => { if (!holes) server.write(chunk); });
    server.on('data', (chunk) => { if (!holes) client.write(chunk); });
    client.on('end', () => { if (!holes) server.end(); });
    server.on('end', () => { if (!holes) client.end(); });
    client.on('close', () => { server.destroy(); pairs.delete(pair); });
    server.on('close', () => { if (!holes) client.destroy(); pairs.delete(pair); });
  };

  let listener = createServer(onConnection);
  await new Promise((ok, fail) => { listener.once('error', fail); listener.listen(0, '127.0.0.1', ok); });
  const port = listener.address().port;

  const listen = () => new Promise((ok) => {
    listener = createServer(onConnection);
    const attempt = () => {
      listener.once('error', () => setTimeout(attempt, 20)); // port still in TIME_WAIT: retry
      listener.listen(port, '127.0.0.1', ok);
    };
    attempt();
  });

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    /** Connections currently open through the proxy. */
    get openConnections() { return pairs.size; },
    /** For `ms`, nothing listens on the port; open connections are cut. */
    async refuse(ms) {
      stats.refusedPeriods += 1;
      refusedUntil = Math.max(refusedUntil, Date.now() + ms);
      clearTimeout(reopenTimer);
      for (const pair of [...pairs]) cut(pair);
      if (listener.listening) await new Promise((ok) => listener.close(ok));
      const wait = refusedUntil - Date.now();
      await new Promise((ok) => { reopenTimer = setTimeout(ok, Math.max(0, wait)); });
      if (!closed && !listener.listening) await listen();
    },
    /** Cuts every open connection (RST). */
    dropAll() {
      stats.dropped += pairs.size;
      for (const pair of [...pairs]) cut(pair);
    },
    /** On: bytes stop flowing both ways and nothing closes. Off: connections that lived
     * through the hole are cut (their byte streams lost data, which TCP never does); new
     * ones work. */
    blackhole(on) {
      holes = Boolean(on);
      if (holes) for (const pair of pairs) pair.sawHole = true;
      else for (const pair of [...pairs]) if (pair.sawHole) cut(pair);
    },
    async close() {
      closed = true;
      clearTimeout(reopenTimer);
      for (const pair of [...pairs]) cut(pair);
      if (listener.listening) await new Promise((ok) => listener.close(ok));
    },
  };
}
