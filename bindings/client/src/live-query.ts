// Live-query controllers: a framework-agnostic store over `client.live()` with the official
// 0.5 shape (`start`, `stop`/`dispose`, `refetch`, `subscribe`, `getSnapshot`). Rows are
// materialized by the Rust core exactly as for `live()`; this file only folds the callbacks,
// the connection state and errors into one immutable snapshot per change, so UI stores
// (React's useSyncExternalStore, Svelte stores, signals) can compare by identity.
import { ErrorCode, KalamError } from './errors.js';
import type { SeqId } from './seq-id.js';
import type { RowData } from './cells.js';
import type {
  ConnectionState, LiveOptions, LiveRowsChange, LiveSubscriptionError, Unsubscribe,
} from './live.js';

export type LiveQueryStatus = 'idle' | 'loading' | 'live' | 'reconnecting' | 'error' | 'disposed';
/** Official name of {@link LiveQueryStatus}. */
export type LiveQueryControllerStatus = LiveQueryStatus;

/** One immutable state of a live query; a new object only when something changed. */
export interface LiveQuerySnapshot<T = RowData> {
  /** The current rows (the same array until the next change). */
  rows: T[];
  /** True until the first complete snapshot arrived (and again during `refetch` with no rows yet). */
  loading: boolean;
  /** The shared socket is connected. */
  connected: boolean;
  status: LiveQueryStatus;
  /** The last error (a KalamError); cleared when rows arrive again. */
  error?: KalamError;
  /** The newest applied `_seq` (the checkpoint). */
  lastSeqId?: SeqId;
}
/** Official name of {@link LiveQuerySnapshot}. */
export type LiveQueryControllerSnapshot<T = RowData> = LiveQuerySnapshot<T>;
export type LiveQueryListener<T = RowData> = (snapshot: LiveQuerySnapshot<T>) => void;
/** Official name of {@link LiveQueryListener}. */
export type LiveQueryControllerListener<T = RowData> = LiveQueryListener<T>;

/**
 * Row identity: a column, columns (handed to the core as `keyColumns`), or a function.
 * A function does not change how the core keys rows (primary key or `keyColumns`); it is the
 * identity used by {@link LiveQueryController.rowKey} (e.g. for optimistic writes).
 */
export type LiveGetKey<T = RowData> = string | string[] | ((row: T) => string | null | undefined);

/** The subset of the client this file needs (any `KalamDBClient` has it). */
export interface LiveQueryClient {
  live<T = RowData>(sql: string, onRows: (rows: T[], change: LiveRowsChange<T>) => void, options?: LiveOptions<T>): Promise<Unsubscribe>;
  readonly connectionState: ConnectionState;
  onConnectionStateChange(listener: (state: ConnectionState) => void): () => void;
}

export interface LiveQueryOptions<T = RowData> {
  /** Row identity ({@link LiveGetKey}); `keyColumns` is the same for columns. */
  getKey?: LiveGetKey<T>;
  keyColumns?: string | string[];
  /** Map each row once when it enters or changes (run by `live()`). */
  mapRow?: (row: RowData) => T;
  /** Keep at most this many rows (the newest keys; the client's `limit`). */
  limit?: number;
  /**
   * Refused with INVALID_ARGUMENT: write `ORDER BY … [LIMIT n] [OFFSET m]` in the live SQL
   * instead (applied by the Rust materializer; appending an option to SQL that may already
   * end in LIMIT is not done). Sorting is not done in TypeScript.
   */
  orderBy?: string;
  batchSize?: number;
  lastRows?: number;
  from?: LiveOptions['from'];
  /** Accepted for compatibility: snapshot batches are always fetched (the server holds live changes back until they are). */
  autoFetchBatches?: boolean;
  /** Self-verification of this subscription (default: the client's `verify`). */
  verify?: boolean;
  /** Start at once (default false: call `start()`). */
  autoStart?: boolean;
  onError?: (error: LiveSubscriptionError | KalamError) => void;
  onCheckpoint?: (checkpoint: { subscriptionId: string; lastSeqId: SeqId }) => void;
}
/** Official name of {@link LiveQueryOptions}. */
export type LiveQueryControllerOptions<T = RowData> = LiveQueryOptions<T>;

const connectedState = (s: ConnectionState | undefined) => s?.state === 'connected';

/** A live query as a store. Create with {@link createLiveQuery}. */
export class LiveQueryController<T = RowData> {
  readonly sql: string;
  readonly options: Readonly<LiveQueryOptions<T>>;
  readonly #client: LiveQueryClient;
  readonly #listeners = new Set<LiveQueryListener<T>>();
  #snapshot: LiveQuerySnapshot<T>;
  // Each start() gets a generation; callbacks and resolutions of an older one are ignored.
  #generation = 0;
  // Live subscriptions by generation; `#shown` is the one whose rows are displayed (0: none).
  // A refetch's subscription takes over when its snapshot is complete; the others then end.
  readonly #active = new Map<number, Unsubscribe>();
  #shown = 0;
  #subscriptionId: string | null = null;
  #offState: (() => void) | null = null;
  #loaded = false;
  #disposed = false;
  #rowMap: ReadonlyMap<string, T> = new Map();

  constructor(client: LiveQueryClient, sql: string, options: LiveQueryOptions<T> = {}) {
    if (!client || typeof client.live !== 'function') {
      throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'createLiveQuery(): client must be a @kalam-wasm/client client' });
    }
    if (typeof sql !== 'string' || sql.trim() === '') {
      throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'createLiveQuery(): sql must be a non-empty string' });
    }
    const gk = options.getKey;
    if (gk !== undefined && typeof gk !== 'string' && typeof gk !== 'function' && !Array.isArray(gk)) {
      throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'createLiveQuery(): getKey must be a column, columns or a function' });
    }
    this.#client = client;
    this.sql = sql;
    this.options = { ...options };
    this.#snapshot = Object.freeze({ rows: [], loading: false, connected: connectedState(client.connectionState), status: 'idle' });
    if (options.autoStart) void this.start();
  }

  /** The current snapshot; the same object until something changes. */
  getSnapshot = (): LiveQuerySnapshot<T> => this.#snapshot;

  /** Calls `listener` after every change of the snapshot; returns a function removing it. */
  subscribe = (listener: LiveQueryListener<T>): (() => void) => {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  };

  /** The id of the live subscription (null before it resolved or after stop). */
  get subscriptionId(): string | null {
    return this.#subscriptionId;
  }

  /** The current rows by the core's key (valid until the next change). */
  get rowMap(): ReadonlyMap<string, T> {
    return this.#rowMap;
  }

  /**
   * The identity of `row` by `getKey` (function or columns) or else `keyColumns`/`id`:
   * column values joined by U+001F. Rows of typed cells and plain mapped rows both work.
   */
  rowKey(row: T): string | null {
    const gk = this.options.getKey;
    if (typeof gk === 'function') return gk(row) ?? null;
    return keyOfRow(row as unknown as Record<string, unknown>, this.keyColumns());
  }

  /** The key columns used for identity (`getKey`/`keyColumns` columns, default `id`). */
  keyColumns(): string[] {
    const cols = typeof this.options.getKey === 'function' ? this.options.keyColumns : (this.options.getKey ?? this.options.keyColumns);
    return cols === undefined ? ['id'] : Array.isArray(cols) ? cols : [cols];
  }

  /**
   * Subscribes (again, if running: rows stay until the new snapshot replaces them, then the
   * old subscription ends). Resolves once the subscription is registered; failures go to the
   * snapshot (`status: 'error'`) and to `onError`, never as a rejection.
   */
  async start(): Promise<void> {
    if (this.#disposed) return;
    const generation = ++this.#generation;
    this.#offState ??= this.#client.onConnectionStateChange((s) => this.#onState(s));
    const o = this.options;
    if (o.orderBy !== undefined) {
      this.#fail(generation, new KalamError({
        code: ErrorCode.INVALID_ARGUMENT,
        message: 'createLiveQuery(): the orderBy option is not supported; write ORDER BY ... [LIMIT n] in the live SQL (applied by the Rust materializer)',
      }));
      return;
    }
    const running = this.#shown !== 0 && (this.#snapshot.status === 'live' || this.#snapshot.status === 'reconnecting');
    // A refetch of a running query keeps its status and rows; any other start loads afresh.
    if (!running) this.#loaded = false;
    this.#set({ loading: !running, status: running ? this.#snapshot.status : 'loading', error: undefined });
    // Callbacks count from this subscription, and from the one on screen until this one has its snapshot.
    const wanted = () => generation === this.#generation || generation === this.#shown;
    const keyCols = typeof o.getKey === 'function' ? o.keyColumns : (o.getKey ?? o.keyColumns);
    const liveOptions: LiveOptions<T> = {
      keyColumns: keyCols, limit: o.limit, batchSize: o.batchSize, lastRows: o.lastRows, from: o.from, mapRow: o.mapRow,
      verify: o.verify,
      onError: (error) => {
        if (!wanted()) return;
        if (error.fatal && generation === this.#shown) this.#shown = 0;
        if (error.fatal) this.#fail(generation, error);
        else this.#set({ error });
        this.#callOnError(error);
      },
      onCheckpoint: (checkpoint) => {
        if (!wanted()) return;
        this.#set({ lastSeqId: checkpoint.lastSeqId });
        o.onCheckpoint?.(checkpoint);
      },
    };
    let unsubscribe: Unsubscribe;
    try {
      unsubscribe = await this.#client.live<T>(this.sql, (rows, change) => {
        if (!wanted()) return;
        if (generation !== this.#shown) {
          if (!change.initial) return;
          // This subscription's snapshot is complete: it takes over, the older ones end.
          this.#shown = generation;
          for (const [g, end] of this.#active) {
            if (g !== generation) {
              this.#active.delete(g);
              void end().catch(() => {});
            }
          }
        }
        this.#subscriptionId = change.subscriptionId;
        this.#rowMap = change.rowMap;
        this.#loaded = true;
        this.#set({ rows, loading: false, error: undefined, status: this.#liveStatus() });
      }, liveOptions);
    } catch (err) {
      if (generation !== this.#generation || this.#disposed) return;
      const error = KalamError.from(err);
      if (this.#shown !== 0) {
        // A failed refetch: the rows on screen keep flowing; the error is reported.
        this.#set({ error });
        this.#callOnError(error);
      } else {
        this.#fail(generation, error);
      }
      return;
    }
    if (generation !== this.#generation) {
      // stop()/dispose()/start() happened while subscribing: this subscription is not wanted.
      if (generation !== this.#shown) await unsubscribe().catch(() => {});
      else this.#active.set(generation, unsubscribe);
      return;
    }
    this.#active.set(generation, unsubscribe);
  }

  /** Same as `start()` while running: a fresh subscription, the rows kept until it has its snapshot. */
  refetch(): Promise<void> {
    return this.start();
  }

  /** Ends the subscription (always, also while it is still being registered); `start()` may run again. */
  async stop(): Promise<void> {
    this.#generation++;
    this.#shown = 0;
    const ends = [...this.#active.values()];
    this.#active.clear();
    this.#subscriptionId = null;
    this.#offState?.();
    this.#offState = null;
    if (!this.#disposed) this.#set({ loading: false, status: 'idle' });
    await Promise.all(ends.map((end) => end().catch(() => {})));
  }

  /** `stop()`, then no more snapshots: status `disposed`, listeners dropped, `start()` ignored. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    const stopped = this.stop();
    this.#disposed = true;
    this.#set({ loading: false, status: 'disposed' });
    this.#listeners.clear();
    await stopped;
  }

  /** Accepted for compatibility: the client fetches every snapshot batch itself. */
  async requestNextBatch(_subscriptionId?: string): Promise<void> {}

  #liveStatus(): LiveQueryStatus {
    if (!this.#loaded) return 'loading';
    return connectedState(this.#client.connectionState) ? 'live' : 'reconnecting';
  }

  #onState(state: ConnectionState): void {
    const connected = connectedState(state);
    const status = this.#snapshot.status;
    if (status === 'live' || status === 'reconnecting') this.#set({ connected, status: this.#liveStatus() });
    else this.#set({ connected });
  }

  #fail(generation: number, error: KalamError): void {
    if (generation !== this.#generation || this.#disposed) return;
    this.#set({ loading: false, status: 'error', error });
    if (!(error as Partial<LiveSubscriptionError>).subscription_id) this.#callOnError(error);
  }

  #callOnError(error: LiveSubscriptionError | KalamError): void {
    try {
      this.options.onError?.(error);
    } catch {
      // an app callback must not break the store
    }
  }

  #set(patch: Partial<LiveQuerySnapshot<T>>): void {
    if (this.#disposed && patch.status !== 'disposed') return;
    const cur = this.#snapshot as unknown as Record<string, unknown>;
    let changed = false;
    for (const k of Object.keys(patch) as (keyof LiveQuerySnapshot<T>)[]) {
      if (cur[k] !== patch[k]) {
        changed = true;
        break;
      }
    }
    if (!changed) return;
    const next = { ...this.#snapshot, ...patch, connected: patch.connected ?? connectedState(this.#client.connectionState) };
    if (next.error === undefined) delete next.error;
    if (next.lastSeqId === undefined) delete next.lastSeqId;
    this.#snapshot = Object.freeze(next);
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#snapshot);
      } catch {
        // one listener must not starve the others
      }
    }
  }
}

/** The identity of a row by columns (typed cells or plain values), or null if a column is missing. */
export function keyOfRow(row: Record<string, unknown>, columns: string[]): string | null {
  const parts: string[] = [];
  for (const c of columns) {
    const v = row[c];
    if (v === undefined) return null;
    parts.push(keyPart(v));
  }
  return parts.join('\u001f');
}

/** The identity of a mutation key (a bare value of the first key column, or `{ column: value }`). */
export function keyOfRowKey(key: unknown, columns: string[]): string | null {
  if (key !== null && typeof key === 'object' && !(key instanceof Date) && !isCell(key)) {
    return keyOfRow(key as Record<string, unknown>, columns);
  }
  return columns.length === 1 ? keyPart(key) : null;
}

function isCell(v: unknown): v is { toJson(): unknown } {
  return v !== null && typeof v === 'object' && typeof (v as { toJson?: unknown }).toJson === 'function' && typeof (v as { asString?: unknown }).asString === 'function';
}

function keyPart(v: unknown): string {
  const raw = isCell(v) ? v.toJson() : v;
  if (raw === null || raw === undefined) return '\u0000';
  if (raw instanceof Date) return raw.toISOString();
  return typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
}

/**
 * A live query over `client.live()` as a store (not started: call `start()`, or pass
 * `autoStart: true`). Code for `@kalamdb/client`'s controller works with the same names.
 */
export function createLiveQuery<T = RowData>(client: LiveQueryClient, sql: string, options?: LiveQueryOptions<T>): LiveQueryController<T> {
  return new LiveQueryController<T>(client, sql, options);
}

/** Official-style alias: `createLiveQueryController(client, sql | { sql }, options)`. */
export function createLiveQueryController<T = RowData>(client: LiveQueryClient, query: string | { sql: string } | { subscriptionSql: string },
  options?: LiveQueryOptions<T>): LiveQueryController<T> {
  const sql = typeof query === 'string' ? query : 'sql' in query ? query.sql : query.subscriptionSql;
  return new LiveQueryController<T>(client, sql, options);
}
