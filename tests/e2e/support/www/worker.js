import { Harness } from './harness.js';

const h = new Harness();
self.onmessage = async (e) => {
  const { id, method, args } = e.data;
  try {
    const value = await h[method](...args);
    self.postMessage({ id, value });
  } catch (err) {
    self.postMessage({ id, error: { code: err?.code, message: err?.message ?? String(err) } });
  }
};
self.postMessage({ ready: true });
