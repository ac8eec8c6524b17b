// A service worker that consumes a topic batch when the page asks.
import { consumerChecks } from './consumer-checks.js';
import { settle } from './settle.js';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('message', (e) => {
  e.waitUntil(settle(consumerChecks(e.data)).then((result) => e.source.postMessage(result)));
});
