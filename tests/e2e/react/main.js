// The in-page harness of tests/e2e/react.test.mjs: real React (18 or 19, whichever the app
// installed), react-dom/client, and the packed packages, exposed on window.T. Every root is
// rendered in <StrictMode> inside <KalamProvider>. Scenarios are written in the test file
// and run here through page.evaluate.
import * as React from 'react';
import { createRoot } from 'react-dom/client';
import * as K from '@kalam-wasm/client';
import * as R from '@kalam-wasm/react';
import '@kalam-wasm/react/drizzle'; // Drizzle mode
import * as O from '@kalam-wasm/orm';
import * as D from 'drizzle-orm';
import * as PG from 'drizzle-orm/pg-core';

const h = React.createElement;

/** A real client; `liveCalls` counts calls of its live() (the real method runs). */
function client(url, user, password) {
  const c = K.createClient({ url, authProvider: async () => K.Auth.basic(user, password) });
  c.liveCalls = 0;
  const live = c.live.bind(c);
  c.live = (...args) => {
    c.liveCalls += 1;
    return live(...args);
  };
  return c;
}

/** Renders `element` in StrictMode under a provider for `c`; returns { unmount }. */
function mount(c, element) {
  const el = document.createElement('div');
  document.getElementById('roots').appendChild(el);
  const root = createRoot(el);
  root.render(h(React.StrictMode, null, h(R.KalamProvider, { client: c }, element)));
  return {
    el,
    unmount() {
      root.unmount();
      el.remove();
    },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until truthy (its value) or throws after `ms` with `what`. */
async function until(fn, what, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    let v;
    try {
      v = fn();
    } catch (err) {
      v = undefined;
      if (Date.now() > end) throw err;
    }
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Ids of rows of typed cells. */
const ids = (rows) => rows.map((r) => r.id?.asString?.() ?? String(r.id));

/** A gate: `wait()` resolves after `open()`. */
function gate() {
  let open;
  const p = new Promise((r) => { open = r; });
  return { open, wait: () => p };
}

// Proof that this is React's development build (StrictMode's double effects happen only there).
let effects = 0;
function Probe() {
  React.useEffect(() => { effects += 1; }, []);
  return null;
}
const probe = document.createElement('div');
createRoot(probe).render(h(React.StrictMode, null, h(Probe)));
const strictEffects = () => effects;

window.T = { React, h, K, R, O, D, PG, client, mount, sleep, until, ids, gate, strictEffects, version: React.version };
window.ready = true;
