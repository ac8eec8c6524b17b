// Browser side of bench/react/run.mjs (a production Vite build with the packed packages):
// a 10,000-row list rendered from useLiveQuery, or from client.live() into useState (the
// baseline), receiving server updates. Each commit's time is taken from the list
// component's render start to its layout effect (render + commit, before paint), which a
// production build allows (the Profiler's onRender only reports in profiling builds).
import { createElement as h, memo, StrictMode, useEffect, useLayoutEffect, useState, version } from 'react';
import { createRoot } from 'react-dom/client';
import { Auth, createClient } from '@kalam-wasm/client';
import { KalamProvider, useLiveQuery } from '@kalam-wasm/react';

const commits = [];
let renderStart = 0;

const Row = memo(function Row({ row }) {
  return h('li', null, `${row.id.asString()} ${row.n.asString()}`);
});

function List({ rows }) {
  renderStart = performance.now();
  useLayoutEffect(() => {
    commits.push({ at: performance.now(), ms: performance.now() - renderStart, rows: rows.length });
  });
  // The core keeps a row object unchanged until its row changes, so memo skips the others.
  return h('ul', null, rows.map((row) => h(Row, { key: row.id.asString(), row })));
}

function WithHook({ sql }) {
  const { rows } = useLiveQuery({ query: sql });
  return h(List, { rows });
}

function WithLive({ client, sql }) {
  const [rows, setRows] = useState([]);
  useEffect(() => {
    let off = null;
    let gone = false;
    client.live(sql, (next) => setRows(next)).then((u) => (gone ? u() : (off = u)));
    return () => {
      gone = true;
      off?.();
    };
  }, [client, sql]);
  return h(List, { rows });
}

let mounted = null;

window.B = {
  version,
  /** Mounts the list (mode 'hook' or 'live'); resolves when `rows` rows are on screen. */
  async mount({ url, user, password, sql, mode, rows }) {
    const client = createClient({ url, authProvider: async () => Auth.basic(user, password) });
    const el = document.getElementById('root');
    const root = createRoot(el);
    const body = mode === 'hook' ? h(WithHook, { sql }) : h(WithLive, { client, sql });
    root.render(h(StrictMode, null, h(KalamProvider, { client }, body)));
    mounted = { root, client };
    const end = Date.now() + 60_000;
    while (el.querySelectorAll('li').length < rows) {
      if (Date.now() > end) throw new Error(`only ${el.querySelectorAll('li').length} rows shown`);
      await new Promise((ok) => setTimeout(ok, 20));
    }
    commits.length = 0;
    return true;
  },
  /** The commits since mount() resolved; unmounts. */
  async finish() {
    const out = commits.slice();
    mounted.root.unmount();
    await mounted.client.shutdown();
    mounted = null;
    return out;
  },
};
window.ready = true;
