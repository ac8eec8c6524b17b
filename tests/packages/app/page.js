// The page half of every browser case: runs the client and consumer checks on the page, plus
// whatever `more` adds (workers), and publishes the outcome as globalThis.kalamResult.
import { clientChecks } from './client-checks.js';
import { consumerChecks } from './consumer-checks.js';
import { settle } from './settle.js';

export function runPage(more = async () => ({})) {
  const cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  globalThis.kalamResult = (async () => ({
    client: await settle(clientChecks({ ...cfg.client, tag: `${cfg.tag}-page` })),
    consumer: await settle(consumerChecks({ ...cfg.consumer, tag: `${cfg.tag}-page` })),
    ...(await more(cfg)),
  }))();
}
