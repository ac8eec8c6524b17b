// Writes through the client's insert/update/delete with their state for the UI. In-flight
// writes are counted, not flagged: overlapping inserts keep `inserting` true until the last
// one ends, and a failure never clears the tracking of other writes in flight.
import { useCallback, useMemo, useReducer, useRef, type Dispatch } from 'react';
import { ErrorCode, KalamError, type KalamDBClient, type SqlValue } from '@kalam-wasm/client';
import type { InsertAction, MutationActions, MutationState, MutationTarget, RemoveAction, RowKey, UpdateAction } from './types.js';

export type MutationAction =
  | { type: 'insert:start' }
  | { type: 'insert:finish'; error?: KalamError }
  | { type: 'update:start' | 'delete:start'; key: RowKey }
  | { type: 'update:finish' | 'delete:finish'; key: RowKey; error?: KalamError }
  | { type: 'error'; error: KalamError | undefined };

interface Counts {
  inserts: number;
  updating: Map<RowKey, number>;
  deleting: Map<RowKey, number>;
}
type InternalState = MutationState & { counts: Counts };

const initial: InternalState = {
  inserting: false, pendingInserts: 0, updating: new Set(), deleting: new Set(),
  counts: { inserts: 0, updating: new Map(), deleting: new Map() },
};

function bump(map: Map<RowKey, number>, key: RowKey, by: number): Map<RowKey, number> {
  const next = new Map(map);
  const n = (next.get(key) ?? 0) + by;
  if (n > 0) next.set(key, n);
  else next.delete(key);
  return next;
}

function reducer(state: InternalState, action: MutationAction): InternalState {
  const c = state.counts;
  let counts = c;
  let error = state.error;
  switch (action.type) {
    case 'insert:start': counts = { ...c, inserts: c.inserts + 1 }; error = undefined; break;
    case 'insert:finish': counts = { ...c, inserts: Math.max(0, c.inserts - 1) }; if (action.error) error = action.error; break;
    case 'update:start': counts = { ...c, updating: bump(c.updating, action.key, 1) }; error = undefined; break;
    case 'update:finish': counts = { ...c, updating: bump(c.updating, action.key, -1) }; if (action.error) error = action.error; break;
    case 'delete:start': counts = { ...c, deleting: bump(c.deleting, action.key, 1) }; error = undefined; break;
    case 'delete:finish': counts = { ...c, deleting: bump(c.deleting, action.key, -1) }; if (action.error) error = action.error; break;
    case 'error': error = action.error; break;
  }
  const next: InternalState = {
    inserting: counts.inserts > 0, pendingInserts: counts.inserts,
    updating: counts.updating === c.updating ? state.updating : new Set(counts.updating.keys()),
    deleting: counts.deleting === c.deleting ? state.deleting : new Set(counts.deleting.keys()),
    counts,
  };
  if (error) next.error = error;
  return next;
}

/** The mutation state and its dispatcher (the official hook's shape). */
export function useMutationState(): [MutationState, Dispatch<MutationAction>] {
  const [state, dispatch] = useReducer(reducer, initial);
  return [state, dispatch];
}

/** @internal What a live query hook does with a write (its optimistic overlay). */
export interface MutationObserver {
  begin(op: PendingWrite): number | null;
  settle(id: number, ok: boolean): void;
}

/** @internal A write as the optimistic overlay sees it (column names already resolved). */
export interface PendingWrite {
  kind: 'insert' | 'update' | 'delete';
  table: string;
  key?: RowKey;
  /** Column name -> value (what is sent). */
  values?: Record<string, unknown>;
  /** The values as given (property names of a kTable), merged into mapped rows. */
  props?: Record<string, unknown>;
}

interface ResolvedTarget {
  table: string;
  toColumns(values: Record<string, unknown>): Record<string, unknown>;
}

const kalamTableConfig = Symbol.for('kalamdb.orm.tableConfig');
const drizzleColumns = Symbol.for('drizzle:Columns');
const drizzleName = Symbol.for('drizzle:Name');

/** `'ns.table'`, or a kTable (its qualified name; property names mapped to column names through the Drizzle columns). */
export function resolveTarget(target: MutationTarget): ResolvedTarget {
  if (typeof target === 'string') return { table: target, toColumns: (v) => v };
  const t = target as Record<PropertyKey, unknown>;
  const config = t[kalamTableConfig] as { qualifiedName?: string } | undefined;
  const name = config?.qualifiedName ?? (typeof t[drizzleName] === 'string' ? (t[drizzleName] as string) : undefined);
  if (!name) throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'mutation target must be a table name or a kTable' });
  const columns = (t[drizzleColumns] ?? {}) as Record<string, { name?: string; mapToDriverValue?: (v: unknown) => unknown }>;
  return {
    table: name,
    toColumns: (values) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(values)) {
        const col = columns[k];
        out[col?.name ?? k] = col?.mapToDriverValue && v !== null && v !== undefined ? col.mapToDriverValue(v) : v;
      }
      return out;
    },
  };
}

/**
 * insert/update/remove through `client`, with their state. `observer` (internal) is told of
 * each write so a live query can show it at once.
 */
export function useMutationActions(client: KalamDBClient, observer?: MutationObserver): MutationState & MutationActions {
  const [state, dispatch] = useReducer(reducer, initial);
  const observerRef = useRef(observer);
  observerRef.current = observer;

  const run = useCallback(async (write: PendingWrite, send: () => Promise<unknown>, start: MutationAction, finish: (error?: KalamError) => MutationAction) => {
    dispatch(start);
    let id: number | null = null;
    try {
      id = observerRef.current?.begin(write) ?? null;
    } catch {
      id = null; // the overlay must never block the write
    }
    try {
      await send();
    } catch (err) {
      const error = KalamError.from(err);
      if (id !== null) observerRef.current?.settle(id, false);
      dispatch(finish(error));
      throw error;
    }
    if (id !== null) observerRef.current?.settle(id, true);
    dispatch(finish());
  }, []);

  const insert = useMemo(() => ((target: MutationTarget, row?: Record<string, unknown>) => {
    const doInsert = async (values: Record<string, unknown>) => {
      const t = resolveTarget(target);
      const cols = t.toColumns(values);
      return run({ kind: 'insert', table: t.table, values: cols, props: values }, () => client.insert(t.table, cols as Record<string, SqlValue>),
        { type: 'insert:start' }, (error) => ({ type: 'insert:finish', error }));
    };
    if (row !== undefined) return doInsert(row);
    return { values: doInsert };
  }) as InsertAction, [client, run]);

  const update = useMemo(() => ((target: MutationTarget, key: RowKey, patch?: Record<string, unknown>) => {
    const doUpdate = async (values: Record<string, unknown>) => {
      const t = resolveTarget(target);
      const cols = t.toColumns(values);
      return run({ kind: 'update', table: t.table, key, values: cols, props: values },
        () => client.update(t.table, key as never, cols as Record<string, SqlValue>),
        { type: 'update:start', key }, (error) => ({ type: 'update:finish', key, error }));
    };
    if (patch !== undefined) return doUpdate(patch);
    return { set: doUpdate };
  }) as UpdateAction, [client, run]);

  const remove = useMemo<RemoveAction>(() => async (target, key) => {
    const t = resolveTarget(target);
    return run({ kind: 'delete', table: t.table, key }, () => client.delete(t.table, key as never),
      { type: 'delete:start', key }, (error) => ({ type: 'delete:finish', key, error }));
  }, [client, run]);

  const clearError = useCallback(() => dispatch({ type: 'error', error: undefined }), []);

  return useMemo(() => {
    const { counts: _counts, ...pub } = state;
    return { ...pub, insert, update, remove, clearError };
  }, [state, insert, update, remove, clearError]);
}
