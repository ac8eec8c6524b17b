// Entry of the cases whose bundler builds workers (Vite, webpack, Parcel): the page checks,
// then the client in a dedicated and a shared worker, the consumer in a dedicated worker and
// (where the bundler builds one) a service worker. Worker URLs are written the way bundlers
// recognise them: `new URL('./file.js', import.meta.url)` inside the constructor call.
import { runPage } from './page.js';

const ask = (port, message, timeoutMs = 30_000) => new Promise((resolve) => {
  const timer = setTimeout(() => resolve({ ok: false, error: 'worker: no answer in 30 s' }), timeoutMs);
  port.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
  port.postMessage(message);
});
const failed = (err) => ({ ok: false, error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` });

runPage(async (cfg) => {
  const out = {};
  try {
    const w = new Worker(new URL('./worker-client.js', import.meta.url), { type: 'module' });
    w.onerror = (e) => { out.workerError = e.message; };
    out.dedicatedClient = await ask(w, { ...cfg.client, tag: `${cfg.tag}-dw` });
    w.terminate();
  } catch (err) { out.dedicatedClient = failed(err); }
  try {
    const sw = new SharedWorker(new URL('./shared-worker-client.js', import.meta.url), { type: 'module' });
    out.sharedClient = await ask(sw.port, { ...cfg.client, tag: `${cfg.tag}-sw` });
  } catch (err) { out.sharedClient = failed(err); }
  try {
    const w = new Worker(new URL('./worker-consumer.js', import.meta.url), { type: 'module' });
    out.dedicatedConsumer = await ask(w, { ...cfg.consumer, tag: `${cfg.tag}-dwc` });
    w.terminate();
  } catch (err) { out.dedicatedConsumer = failed(err); }
  if (cfg.serviceWorker) {
    try {
      await navigator.serviceWorker.register(new URL('./sw-consumer.js', import.meta.url), { type: 'module' });
      const reg = await navigator.serviceWorker.ready;
      out.serviceWorkerConsumer = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ ok: false, error: 'service worker: no answer in 30 s' }), 30_000);
        navigator.serviceWorker.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
        reg.active.postMessage({ ...cfg.consumer, tag: `${cfg.tag}-svc` });
      });
    } catch (err) { out.serviceWorkerConsumer = failed(err); }
  }
  return out;
});
