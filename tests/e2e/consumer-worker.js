// A topic worker in a dedicated Web Worker, driven by consumer.test.mjs through messages.
import { createConsumerClient, runConsumer, Auth } from '/dist/consumer/index.js';

let stop;
self.onmessage = async ({ data }) => {
  if (data.cmd === 'stop') {
    stop?.abort();
    return;
  }
  if (data.cmd !== 'run') return;
  stop = new AbortController();
  const client = createConsumerClient({ url: data.url, auth: Auth.basic('root', data.password) });
  const startedAt = Date.now();
  try {
    await runConsumer({
      client, name: data.name, topic: data.topic, groupId: data.group, start: 'earliest', batchSize: data.batchSize,
      stopSignal: stop.signal,
      onMessage: async (ctx) => {
        self.postMessage({ type: 'message', n: ctx.message.payload.n, offset: ctx.message.offset_exact });
        if (data.delayMs) await new Promise((r) => setTimeout(r, data.delayMs));
      },
    });
    self.postMessage({ type: 'stopped', ms: Date.now() - startedAt });
  } catch (e) {
    self.postMessage({ type: 'error', code: e.code, message: e.message });
  }
};
self.postMessage({ type: 'ready' });
