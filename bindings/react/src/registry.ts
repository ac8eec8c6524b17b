// Shared controllers: hooks with the same client, SQL and options use one subscription
// (ref-counted). The last release disposes it after a macrotask, so StrictMode's
// mount -> unmount -> mount (and a quick remount) keeps the same subscription instead of
// racing a second one against a dispose.
import { createLiveQuery, type KalamDBClient, type LiveQueryController, type LiveQueryOptions } from '@kalam-wasm/client';

interface Entry {
  controller: LiveQueryController<unknown>;
  refs: number;
  timer: ReturnType<typeof setTimeout> | null;
}

const registries = new WeakMap<KalamDBClient, Map<string, Entry>>();

export interface Lease {
  controller: LiveQueryController<unknown>;
  release(): void;
}

/** A running controller for (client, key); `key` null: a private one (never shared). */
export function acquire(client: KalamDBClient, key: string | null, sql: string, options: LiveQueryOptions<unknown>): Lease {
  let map = registries.get(client);
  if (!map) registries.set(client, (map = new Map()));
  const id = key ?? `private:${Math.random()}`;
  let entry = map.get(id);
  if (!entry) {
    const controller = createLiveQuery<unknown>(client, sql, options);
    entry = { controller, refs: 0, timer: null };
    map.set(id, entry);
    void controller.start();
  }
  if (entry.timer) {
    clearTimeout(entry.timer);
    entry.timer = null;
  }
  entry.refs++;
  const e = entry;
  const registry = map;
  let released = false;
  return {
    controller: e.controller,
    release() {
      if (released) return;
      released = true;
      if (--e.refs > 0) return;
      e.timer = setTimeout(() => {
        e.timer = null;
        if (e.refs > 0) return;
        if (registry.get(id) === e) registry.delete(id);
        void e.controller.dispose();
      }, 0);
    },
  };
}
