import { clientChecks } from './client-checks.js';
import { settle } from './settle.js';

self.onmessage = async (e) => self.postMessage(await settle(clientChecks(e.data)));
