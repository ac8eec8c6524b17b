import { consumerChecks } from './consumer-checks.js';
import { settle } from './settle.js';

self.onmessage = async (e) => self.postMessage(await settle(consumerChecks(e.data)));
