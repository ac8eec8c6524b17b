// The engine of useLiveQuery and useLiveQueries: one controller lease per named query (shared
// through the registry), their snapshots read with useSyncExternalStore, and the optimistic
// overlay of writes made through the returned actions. Functions in the options (getKey,
// mapRow, select) are read through refs, so inline lambdas never resubscribe; only the SQL,
// the options' values and `deps` do.
import { useEffect, useMemo, useReducer, useRef, useState, useSyncExternalStore } from 'react';
import { ErrorCode, KalamError, type KalamDBClient, type LiveQueryController, type LiveQueryOptions, type LiveQuerySnapshot, type RowData } from '@kalam-wasm/client';
import { acquire, type Lease } from './registry.js';
import { applyOverlay, makeOp, normTable, tableOf, type Op } from './overlay.js';
import { useMutationActions, type MutationObserver, type PendingWrite } from './mutations.js';
import type { MutationActions, MutationState, RawSqlLiveQueryOptions, SingleLiveQueryContext } from './types.js';

export const LOADING: LiveQuerySnapshot<unknown> = Object.freeze({ rows: [], loading: true, connected: false, status: 'loading' as const });

type Def = Omit<RawSqlLiveQueryOptions<unknown>, 'client'> & { error?: KalamError };
/** A query as given: raw SQL (`query`) or Drizzle (`table`, `where`, `orderBy`). */
export type AnyDef = Partial<Omit<RawSqlLiveQueryOptions<unknown>, 'client'>> & { table?: object; where?: unknown; orderBy?: unknown };

/**
 * Compiles a Drizzle table + filter (+ order and its limit) to live SQL and a row mapper
 * (registered by '@kalam-wasm/react/drizzle').
 */
export type DrizzleCompiler = (table: object, where: unknown, orderBy?: unknown, limit?: number) => { sql: string; mapRow?: (row: RowData) => unknown } | { error: KalamError };
let drizzle: DrizzleCompiler | null = null;

/** @internal Called by the '@kalam-wasm/react/drizzle' entry. */
export function registerDrizzle(compiler: DrizzleCompiler): void {
  drizzle = compiler;
}

const invalid = (message: string) => new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message });

/**
 * Raw SQL as is; Drizzle compiled here on every render (cheap: a string), so an inline
 * `where` lambda resubscribes only when the SQL it produces changes. Bad definitions become
 * a query that fails alone (status 'error'), never a throw in render.
 */
export function resolveDef(def: AnyDef, where: string): Def {
  if (def.table !== undefined) {
    if (def.query !== undefined) return { ...def, query: '', error: invalid(`${where}: pass either query or table, not both`) } as Def;
    const { table, where: filter, orderBy: order, ...rest } = def;
    if (!drizzle) return { ...rest, query: '', error: invalid(`${where}: Drizzle mode needs \`import '@kalam-wasm/react/drizzle'\` once (and @kalam-wasm/orm installed)`) };
    const orderBy = typeof order === 'function' ? (order as (t: object) => unknown)(table) : order;
    // An order goes into the SQL (ORDER BY … LIMIT n, the core's window), and so does the limit.
    if (orderBy !== undefined) delete rest.limit;
    let compiled: ReturnType<DrizzleCompiler>;
    try {
      compiled = drizzle(table, typeof filter === 'function' ? (filter as (t: object) => unknown)(table) : filter, orderBy, orderBy === undefined ? undefined : def.limit);
    } catch (err) {
      compiled = { error: KalamError.from(err) };
    }
    if ('error' in compiled) return { ...rest, query: '', error: compiled.error };
    const userMap = rest.mapRow;
    const mapRow = compiled.mapRow && userMap ? (row: RowData) => userMap(compiled.mapRow!(row) as never) : compiled.mapRow ?? userMap;
    return { ...rest, query: compiled.sql, mapRow };
  }
  if (typeof def.query !== 'string') return { ...def, query: '', error: invalid(`${where}: \`query\` (live SQL) or \`table\` (Drizzle) is required`) } as Def;
  return def as Def;
}
interface Slot {
  controller: LiveQueryController<unknown> | null;
  lease: Lease | null;
  failed?: LiveQuerySnapshot<unknown>;
}
interface Leases {
  signature: string;
  slots: Map<string, Slot>;
}

function stable(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'function' ? 'fn' : v instanceof Date ? v.toISOString() : v)) ?? 'undefined';
  } catch {
    return String(value);
  }
}

/** What resubscribes a query: its SQL, limit, key columns, snapshot options and deps. */
function querySignature(def: Def): string {
  const gk = typeof def.getKey === 'function' ? 'fn' : def.getKey;
  return stable([def.query, def.limit, gk, def.batchSize, def.lastRows, def.deps ?? null, def.error?.message ?? null]);
}

let instances = 0;

/** Combined store over several controllers: one snapshot record, a new object only when one changed. */
function combinedStore(slots: Map<string, Slot> | null) {
  let cache: Record<string, LiveQuerySnapshot<unknown>> | null = null;
  const read = (slot: Slot) => slot.failed ?? slot.controller?.getSnapshot() ?? LOADING;
  return {
    subscribe(onChange: () => void) {
      const offs = [...(slots?.values() ?? [])].map((s) => s.controller?.subscribe(onChange));
      return () => offs.forEach((off) => off?.());
    },
    getSnapshot(): Record<string, LiveQuerySnapshot<unknown>> {
      if (!slots) return (cache ??= {});
      let same = cache !== null;
      if (cache) for (const [name, slot] of slots) if (cache[name] !== read(slot)) { same = false; break; }
      if (!same) {
        const next: Record<string, LiveQuerySnapshot<unknown>> = {};
        for (const [name, slot] of slots) next[name] = read(slot);
        cache = next;
      }
      return cache!;
    },
  };
}

export interface LiveSet {
  contexts: Record<string, SingleLiveQueryContext<unknown>>;
  mutation: MutationState & MutationActions;
  refetch: () => Promise<void>;
  snapshots: Record<string, LiveQuerySnapshot<unknown>>;
}

export function useLiveSet(client: KalamDBClient, given: Record<string, AnyDef>, deps: readonly unknown[] | undefined, where: string): LiveSet {
  const names = Object.keys(given);
  const defs: Record<string, Def> = {};
  for (const name of names) defs[name] = resolveDef(given[name], names.length > 1 || name !== 'q' ? `${where} (${name})` : where);
  const signature = stable([names.map((n) => [n, querySignature(defs[n])]), deps ?? null]);
  const defsRef = useRef(defs);
  defsRef.current = defs;
  const instance = useRef(0);
  if (instance.current === 0) instance.current = ++instances;

  const [leases, setLeases] = useState<Leases | null>(null);
  useEffect(() => {
    const slots = new Map<string, Slot>();
    for (const name of Object.keys(defsRef.current)) {
      const def = defsRef.current[name];
      const latest = () => defsRef.current[name] ?? def;
      const gk = def.getKey;
      const options: LiveQueryOptions<unknown> = {
        limit: def.limit, batchSize: def.batchSize, lastRows: def.lastRows,
        getKey: typeof gk === 'function' ? (row) => {
          const f = latest().getKey;
          return typeof f === 'function' ? f(row) : null;
        } : gk,
        mapRow: def.mapRow ? (row: RowData) => (latest().mapRow ?? ((r: RowData) => r))(row) : undefined,
      };
      // Functions cannot be compared: such queries get a controller of their own (stable per hook instance).
      const priv = typeof gk === 'function' || def.mapRow !== undefined;
      const key = `${priv ? `private:${instance.current}:${name}:` : 'shared:'}${querySignature(def)}`;
      try {
        if (def.error) throw def.error;
        const lease = acquire(client, key, def.query, options);
        slots.set(name, { controller: lease.controller, lease });
      } catch (err) {
        // One bad query fails alone; its siblings keep their rows.
        slots.set(name, { controller: null, lease: null, failed: Object.freeze({ rows: [], loading: false, connected: false, status: 'error' as const, error: KalamError.from(err) }) });
      }
    }
    setLeases({ signature, slots });
    return () => {
      for (const slot of slots.values()) slot.lease?.release();
    };
  }, [client, signature]);

  const current = leases && leases.signature === signature ? leases.slots : null;
  const store = useMemo(() => combinedStore(current), [current]);
  const snapshots = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);

  // ----- optimistic overlay -----
  const [ops, setOps] = useState<(Op & { query: string; group: number })[]>([]);
  const [tick, bumpTick] = useReducer((n: number) => n + 1, 0);
  const slotsRef = useRef(current);
  slotsRef.current = current;
  const observer = useMemo<MutationObserver>(() => ({
    begin(write: PendingWrite) {
      const slots = slotsRef.current;
      if (!slots) return null;
      const table = normTable(write.table);
      const group = Math.floor(Math.random() * 2 ** 31);
      const added: (Op & { query: string; group: number })[] = [];
      for (const [name, slot] of slots) {
        const def = defsRef.current[name];
        if (!slot.controller || !def || def.optimistic === false || tableOf(def.query) !== table) continue;
        const op = makeOp(slot.controller, slot.controller.getSnapshot().rows, write);
        if (op) added.push({ ...op, query: name, group });
      }
      if (added.length === 0) return null;
      setOps((prev) => prev.concat(added));
      return group;
    },
    settle(group: number, ok: boolean) {
      const now = Date.now();
      setOps((prev) => (ok ? prev.map((o) => (o.group === group ? { ...o, state: 'ok' as const, settledAt: now } : o)) : prev.filter((o) => o.group !== group)));
    },
  }), []);
  const mutation = useMutationActions(client, observer);

  const view = useMemo(() => {
    const now = Date.now();
    const rows: Record<string, unknown[]> = {};
    const done: number[] = [];
    let nextDeadline = Infinity;
    for (const name of names) {
      const snap = snapshots[name] ?? LOADING;
      const mine = ops.filter((o) => o.query === name);
      const slot = current?.get(name);
      if (!slot?.controller || mine.length === 0) {
        rows[name] = snap.rows;
        continue;
      }
      const def = defs[name];
      const timeout = def.settleTimeoutMs ?? 3000;
      const r = applyOverlay(slot.controller, snap.rows, mine, def.mapRow, timeout, now);
      rows[name] = r.rows;
      done.push(...r.done);
      for (const o of mine) if (o.settledAt !== undefined) nextDeadline = Math.min(nextDeadline, o.settledAt + timeout);
    }
    return { rows, done, nextDeadline };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [snapshots, ops, tick, current, signature]);

  useEffect(() => {
    if (view.done.length) {
      const done = new Set(view.done);
      setOps((prev) => prev.filter((o) => !done.has(o.id)));
    }
  }, [view.done]);
  useEffect(() => {
    if (view.nextDeadline === Infinity) return;
    const t = setTimeout(bumpTick, Math.max(0, view.nextDeadline - Date.now()) + 5);
    return () => clearTimeout(t);
  }, [view.nextDeadline]);

  const refetch = useMemo(() => async () => {
    const slots = slotsRef.current;
    await Promise.all([...(slots?.values() ?? [])].map((s) => s.controller?.refetch()));
  }, []);

  const contexts = useMemo(() => {
    const out: Record<string, SingleLiveQueryContext<unknown>> = {};
    const { insert, update, remove, clearError, ...mstate } = mutation;
    for (const name of names) {
      const snap = snapshots[name] ?? LOADING;
      const slot = current?.get(name);
      const error = mstate.error ?? snap.error;
      const state = { ...snap, ...mstate } as SingleLiveQueryContext<unknown>['state'];
      if (error) state.error = error;
      else delete state.error;
      out[name] = {
        rows: view.rows[name] ?? snap.rows, state, insert, update, remove, clearError,
        refetch: async () => { await slot?.controller?.refetch(); },
      };
    }
    return out;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [view, snapshots, mutation, current]);

  return { contexts, mutation, refetch, snapshots };
}
