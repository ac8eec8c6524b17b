import { clientChecks } from './client-checks.js';
import { settle } from './settle.js';

self.onconnect = (e) => {
  const port = e.ports[0];
  port.onmessage = async (m) => port.postMessage(await settle(clientChecks(m.data)));
};
