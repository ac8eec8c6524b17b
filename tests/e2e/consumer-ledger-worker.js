// A topic worker for consumer-ledger.test.mjs: runs runConsumer on demand (with the same
// client again, or a new one) and posts every processed offset, stamped before the handler
// returns, so the test can compare it with the server's ack log.
import { createConsumerClient, runConsumer, Auth } from '/dist/consumer/index.js';

let client;
let stop;
self.onmessage = async ({ data }) => {
  if (data.cmd === 'stop') {
    stop?.abort();
    return;
  }
  if (data.cmd !== 'run') return;
  if (!client || data.newClient) {
    client = createConsumerClient({ url: data.url, auth: Auth.basic(data.user, data.password), timeoutMs: 5_000 });
  }
  const mine = new AbortController();
  stop = mine;
  try {
    await runConsumer({
      client, name: 'ledger', topic: data.topic, groupId: data.group, start: 'earliest', batchSize: data.batchSize,
      visibilityTimeoutMs: data.visibilityTimeoutMs, stopSignal: mine.signal,
      onError: (e) => { if (e.operation === 'partitions' && e.error?.code === 'INVALID_ARGUMENT') self.postMessage({ type: 'warn', message: String(e.error?.message) }); },
      onMessage: async (ctx) => {
        if (Math.random() < 0.05) await new Promise((r) => setTimeout(r, 5));
        self.postMessage({ type: 'done', p: ctx.message.partition_id, o: ctx.message.offset, at: Date.now() });
      },
    });
    self.postMessage({ type: 'ended', byStop: mine.signal.aborted });
  } catch (e) {
    self.postMessage({ type: 'ended', byStop: false, code: e.code, message: e.message });
  }
};
self.postMessage({ type: 'ready' });
