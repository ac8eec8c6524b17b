// The Node/Bun/Deno case: the same checks as a script. Runtimes without a global WebSocket
// (Node 18/20) get the `ws` package, as the client README says.
import { clientChecks } from './client-checks.js';
import { consumerChecks } from './consumer-checks.js';
import { settle } from './settle.js';

const cfg = JSON.parse(process.argv[2] ?? globalThis.Deno?.args[0]);
const WebSocket = globalThis.WebSocket ?? (await import('ws')).WebSocket;
const result = {
  webSocket: globalThis.WebSocket ? 'global' : 'ws',
  client: await settle(clientChecks({ ...cfg.client, tag: `${cfg.tag}-node` }, { WebSocket })),
  consumer: await settle(consumerChecks({ ...cfg.consumer, tag: `${cfg.tag}-node` })),
};
console.log(JSON.stringify(result));
