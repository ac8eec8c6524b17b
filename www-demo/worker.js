// The topic worker: a dedicated Web Worker running @kalam-wasm/consumer. It consumes the
// `activity` topic (every new inbox message and room post) as the demo's service account:
//  * a new inbox message from a person  -> Kalam Bot replies in that person's inbox
//    (EXECUTE AS USER, so the reply lands in their USER table);
//  * a new room post (room_outbox)      -> relayed into the SHARED room table, then removed
//    from the sender's outbox (plain users cannot write SHARED tables).
// Every open tab runs one; they share one consumer group, so each message is handled once.
// Handlers are idempotent because delivery is at-least-once.
//
// In a real deployment this loop runs on a server (Node works too); a browser holding
// service credentials is fine for a local demo only.
import { Auth, createConsumerClient, runConsumer } from '/pkg/consumer/index.js';

let stopper = null;

self.onmessage = ({ data }) => {
  if (data?.type === 'start' && !stopper) start(data);
  if (data?.type === 'stop') stopper?.abort();
};

const post = (msg) => self.postMessage(msg);

async function start({ url, namespace: ns, bot, people }) {
  stopper = new AbortController();
  const nameOf = (id) => people?.find((p) => p.id === id)?.name ?? id;
  // Workaround (client bug, reported): the package's fetches send the page origin's cookies,
  // and /v1/api/auth/refresh prefers the `kalamdb_refresh` cookie over the Bearer refresh
  // token. A worker on the same origin as a signed-in page would refresh into the PAGE
  // user's identity after a token expiry. So the worker signs in itself without cookies
  // (credentials: 'omit') and hands the client a JWT through an auth provider, which the
  // client calls again whenever that token expires.
  const signIn = async () => {
    const res = await fetch(`${url}/v1/api/auth/login`, {
      method: 'POST', credentials: 'omit', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: bot.id, password: bot.password }),
    });
    if (!res.ok) throw new Error(`the worker's sign-in as ${bot.id} failed (${res.status})`);
    return Auth.jwt((await res.json()).access_token);
  };
  const client = createConsumerClient({
    url,
    authProvider: signIn,
    onConnect: () => post({ type: 'state', state: 'running' }),
    onConnectionError: (e) => post({ type: 'state', state: e.recoverable ? 'retrying' : 'error', detail: e.message }),
  });
  post({ type: 'state', state: 'starting' });

  async function autoReply(user, key, row) {
    if (row.author !== 'me') return null; // our own replies come through the topic too
    const seen = await client.executeAsUser(`SELECT id FROM ${ns}.inbox WHERE reply_to = $1`, user, [key]);
    if (seen.results?.[0]?.rows?.length) return null; // redelivered: already answered
    const file = parseFile(row.attachment);
    const body = String(row.body ?? '').trim();
    const words = body ? body.split(/\s+/).length : 0;
    let reply;
    if (file) {
      reply = `Received ${file.mime?.startsWith('image/') ? 'your image' : 'your file'} “${file.name}” (${formatBytes(file.size)})${words ? ` and ${words} word${words === 1 ? '' : 's'}` : ''}. Saved to your inbox.`;
    } else {
      reply = `Got it: ${words} word${words === 1 ? '' : 's'}, saved to your inbox.`;
    }
    await client.executeAsUser(`INSERT INTO ${ns}.inbox (body, author, reply_to) VALUES ($1, 'bot', $2)`, user, [reply, key]);
    return `Replied to ${nameOf(user)}’s note`;
  }

  async function relay(user, key, row) {
    try {
      // The outbox row's id becomes the room row's id: a redelivery cannot post twice.
      await client.query(`INSERT INTO ${ns}.room (id, author, body) VALUES ($1, $2, $3)`, [key, user, String(row.body ?? '')]);
    } catch (err) {
      if (!/already exists|primary key|duplicate/i.test(err.message)) throw err;
    }
    await client.executeAsUser(`DELETE FROM ${ns}.room_outbox WHERE id = $1`, user, [key]);
    return `Posted ${nameOf(user)}’s message to #lobby`;
  }

  try {
    await runConsumer({
      client,
      name: 'kalam-bot',
      topic: `${ns}.activity`,
      groupId: 'kalam-bot',
      start: 'earliest',
      // schema.sql creates the topic with one partition; a service role cannot look it up.
      partitions: 1,
      stopSignal: stopper.signal,
      retry: { maxAttempts: 4, initialBackoffMs: 300 },
      onMessage: async (ctx) => {
        const row = ctx.row ?? {};
        const user = ctx.user ?? ctx.message.user;
        const key = String(ctx.message.key ?? row.id);
        const table = String(row._table ?? '');
        let summary = null;
        if (table === `${ns}:inbox`) summary = await autoReply(user, key, row);
        else if (table === `${ns}:room_outbox`) summary = await relay(user, key, row);
        if (summary) post({ type: 'handled', summary, user, table, offset: ctx.message.offset_exact });
      },
      onFailed: ({ error, message }) => post({ type: 'state', state: 'retrying', detail: `gave up on offset ${message.offset_exact}: ${error.message}` }),
    });
  } catch (err) {
    post({ type: 'state', state: 'error', detail: err.message });
  }
  stopper = null;
}

function parseFile(cell) {
  if (!cell) return null;
  if (typeof cell === 'string') {
    try { return JSON.parse(cell); } catch { return null; }
  }
  return typeof cell === 'object' ? cell : null;
}

function formatBytes(n = 0) {
  const u = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}
