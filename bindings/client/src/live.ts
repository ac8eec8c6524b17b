// Live queries: one WebSocket multiplexing every subscription, driven by the Rust core
// (`LiveClient` in the .wasm). The core pages snapshots (`next_batch`), reconnects with
// full-jitter backoff, re-runs `getToken` before each attempt, resynchronises after outages
// (one `resync` callback: rows deleted while away disappear, nothing flashes or duplicates)
// and materializes rows by key. Everything it reports for one burst of frames arrives in ONE
// call (a JSON array), never one call per row; this file applies it to one JS mirror per
// subscription (a Map key -> row, in order) in O(changes).
//
// Row order: insertion order of keys. The snapshot in server order (ascending `_seq`), then
// new keys appended; updates stay in place; a deleted key that comes back is appended. With
// `limit`: each row's latest `_seq` (an update moves its row to the end, as removed + inserted).
// With `ORDER BY … [LIMIT n] [OFFSET m]` in the live SQL: the window in sort order, applied by
// the core (src/core/live/ordered.rs); `inserted`/`removed` are rows entering/leaving it.
//
// `rows` (first argument of onRows) is a fresh array per callback, like the official SDK:
// O(rows) pointer copies, nothing re-created (bench/live: about +0.2 ms per change at 20k
// rows, +0.65 ms at 100k, GC included). With `rowsArray: false` it is empty and
// `change.rowMap` is the live Map: O(changes) per callback (about 0.25 ms at 1k-100k rows).
import { LiveClient } from './wasm/kalam_wasm.js';
import { callCore, initWasm } from './wasm-loader.js';
import { ErrorCode, KalamError } from './errors.js';
import { SeqId } from './seq-id.js';
import { KalamCellValue } from './cells.js';
import type { FileContext, KalamDataType, RowData, SchemaField } from './cells.js';

/** `subscription_ack` etc. (the `type` of a {@link LiveEvent}). */
export const MessageType = {
  SubscriptionAck: 'subscription_ack',
  InitialDataBatch: 'initial_data_batch',
  Change: 'change',
  Error: 'error',
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** The `change_type` of a change event. */
export const ChangeType = { Insert: 'insert', Update: 'update', Delete: 'delete' } as const;
export type ChangeType = (typeof ChangeType)[keyof typeof ChangeType];

export type ConnectionStateName = 'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'needs_auth';

/** The connection state; `attempt`/`delayMs` while waiting to reconnect. */
export interface ConnectionState {
  state: ConnectionStateName;
  attempt?: number;
  delayMs?: number;
}

export interface ReconnectOptions {
  /** Reconnect after an unexpected close. Default true. */
  enabled?: boolean;
  /** Ceiling of the first delay (full jitter: the delay is random in [0, ceiling]). Default 1000. */
  initialDelayMs?: number;
  /** Cap of the ceiling, which doubles per attempt. Default 30000. */
  maxDelayMs?: number;
  /** Give up after this many consecutive failed attempts. Default unlimited. */
  maxAttempts?: number;
}

/**
 * Self-verification (on by default when the manager can run SQL): the real server drops
 * change notifications silently under a burst, so each `live()` subscription compares a
 * checksum query (`COUNT(*)`, `SUM(_seq % p)`, `MAX(_seq)` over its FROM/WHERE) with the same
 * figures over its rows, and resyncs in the background (one `resync` callback with only the
 * real differences) when they disagree twice in a row.
 */
export interface VerifyOptions {
  /** Default true. `false` (or `verify: false`) turns every check off. */
  enabled?: boolean;
  /** Periodic check of each subscription; 0 = only after bursts. Default 30000. */
  intervalMs?: number;
  /** A run of this many change frames (under 1 s apart) triggers a check of every subscription; 0 = never. Default 100. */
  afterBurst?: number;
}

/** Dead-connection detection: an echo the server always answers (pings never are). */
export interface LivenessOptions {
  /** Send the echo after this much silence from the server; 0 disables. Default 7000. */
  idleMs?: number;
  /** No frame within this long after the echo: reconnect. Default 5000. */
  timeoutMs?: number;
}

/** Why the connection went down (`onDisconnect`). */
export interface DisconnectReason {
  message: string;
  /** The WebSocket close code, when a close caused it (ours or the server's). */
  code?: number;
  /** The close reason sent with `code`. */
  reason?: string;
}

/** A connection-level error: a KalamError that also says whether reconnecting may help. */
export type LiveConnectionError = KalamError & { readonly recoverable: boolean };

/** A subscription error: a KalamError shaped like the protocol's error event. */
export type LiveSubscriptionError = KalamError & {
  readonly type: 'error';
  readonly subscription_id: string;
  /** The subscription is gone (the server never accepted it); no further callbacks. */
  readonly fatal: boolean;
};

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

export interface LiveManagerOptions {
  /** The server's HTTP(S) base URL; the socket is `ws(s)://…/v1/ws`. */
  url: string;
  /** A JWT for the socket; `forceRefresh` is true after the server refused the last one. */
  getToken: (forceRefresh: boolean) => Promise<string>;
  /** Connect on the first subscription (default) or at once. */
  wsLazyConnect?: boolean;
  /** `{"type":"ping"}` after this much silence; 0 disables. Default 5000 (server idles out at 10 s). */
  pingIntervalMs?: number;
  /** Socket open + authentication deadline per attempt. Default 10000. */
  connectTimeoutMs?: number;
  /** Ask the server not to gzip frames (`?compress=false`). */
  disableCompression?: boolean;
  /** Snapshot batch size when a subscription sets none. Default 999 (the most a default server, capped at 1000 rows per query, never cuts), at most 999. */
  batchSize?: number;
  reconnect?: ReconnectOptions;
  /** Self-verification of `live()` rows ({@link VerifyOptions}); `false` disables it. Needs `runSql`. */
  verify?: VerifyOptions | boolean;
  /** Dead-connection detection ({@link LivenessOptions}). */
  liveness?: LivenessOptions;
  /** A subscribe or `next_batch` with no answer for this long is retried (then fails to `onError`). Default 20000; 0 disables. */
  snapshotTimeoutMs?: number;
  /**
   * Runs SQL over HTTP as the socket's user and resolves with the answer's JSON text (or
   * object): used for the self-verification checksums and for the row count that detects a
   * server's row cap. The app client passes its own SQL path; without it, subscriptions do
   * not verify themselves and a server cap below the batch size is not detected.
   */
  runSql?: (sql: string) => Promise<string | object>;
  /**
   * A WebSocket constructor with the browser's shape. Default: the global `WebSocket`.
   * On Node 18/20 pass the `ws` package's default export.
   */
  WebSocket?: unknown;
  /** Lets FILE cells download with the client's credentials. */
  files?: FileContext;
  onConnect?: () => void;
  onDisconnect?: (reason: DisconnectReason) => void;
  onConnectionError?: (error: LiveConnectionError) => void;
  onStateChange?: (state: ConnectionState) => void;
  log?: (level: LogLevelName, message: string, details?: unknown) => void;
}

/** What changed in one callback of `live()`. */
export interface LiveRowsChange<T = RowData> {
  subscriptionId: string;
  /** The first callback: the complete initial snapshot (possibly empty). */
  initial: boolean;
  /**
   * The callback that swaps in a re-synchronised snapshot: after a reconnect, a retry, or a
   * self-verification that found rows the server's dropped notifications left stale.
   */
  resync: boolean;
  /**
   * New rows, appended at the end, in order (with `limit`, also updated rows: they move to the end).
   * With live `ORDER BY`: rows that entered the window; `rows`/`rowMap` hold the window in sort
   * order, and an `updated` row whose sort key changed has moved.
   */
  inserted: T[];
  /** Rows whose content changed, in place (same position). */
  updated: T[];
  /** Keys of rows that left the set (deleted, evicted by `limit`, gone after a resync) or, with `limit`, moved to the end. */
  removed: string[];
  /** The rows that left, in the same order as `removed`. */
  removedRows: T[];
  /** The live mirror (key -> row, in order); read-only, valid until the next callback. */
  rowMap: ReadonlyMap<string, T>;
}

/** The official SDK's older snake_case subscription options (still accepted). */
export interface SubscriptionOptions {
  batch_size?: number;
  last_rows?: number;
  from?: SeqId | bigint | string | number;
}

export interface LiveOptions<T = RowData> {
  /** Columns identifying a row. Default: the table's primary key, else `id`. */
  keyColumns?: string[] | string;
  /** Deprecated alias of `keyColumns` (official SDK). */
  keyColumn?: string[] | string;
  /** Deprecated: `{ batch_size, last_rows, from }` (official SDK); the camelCase options win. */
  subscriptionOptions?: SubscriptionOptions;
  /** Keep at most this many rows (the oldest leave first). */
  limit?: number;
  /** Rows per snapshot batch (1..999). Default: the manager's `batchSize` (999). */
  batchSize?: number;
  /** Snapshot = the newest N rows only (N ≤ batchSize). */
  lastRows?: number;
  /** Snapshot only rows written after this checkpoint. */
  from?: SeqId | bigint | string | number;
  /**
   * Map each row once when it enters or changes (the mirror then holds `T`). A row for
   * which it throws is kept unmapped (its typed cells) and `onError` gets INVALID_ARGUMENT.
   */
  mapRow?: (row: RowData) => T;
  /**
   * Build `rows` (the first argument of the callback) as a fresh array per callback (default
   * true, like the official SDK; O(rows)). With false the first argument is an empty array
   * and the current rows are in `change.rowMap` (O(changes) per callback).
   */
  rowsArray?: boolean;
  /** Self-verification of this subscription (default: the manager's `verify`). */
  verify?: boolean;
  onError?: (error: LiveSubscriptionError) => void;
  onCheckpoint?: (checkpoint: { subscriptionId: string; lastSeqId: SeqId }) => void;
}

export type LiveRowsCallback<T = RowData> = (rows: T[], change: LiveRowsChange<T>) => void;

export interface BatchControl {
  batch_num: number;
  has_more: boolean;
  status: 'loading' | 'loading_batch' | 'ready' | string;
  /** Exact decimal string (never a JS number). */
  last_seq_id: string | null;
}

/** A plain row of `liveEvents()`: values decoded by column type (BIGINT as string, JSON parsed...). */
export type EventRow = Record<string, unknown>;

/** The raw protocol events of `liveEvents()` (rows decoded, SeqIds as strings). */
export type LiveEvent =
  | { type: 'subscription_ack'; subscription_id: string; total_rows: number; batch_control: BatchControl; schema: SchemaField[] }
  | { type: 'initial_data_batch'; subscription_id: string; rows: EventRow[]; batch_control: BatchControl }
  | { type: 'change'; subscription_id: string; change_type: ChangeType; rows?: EventRow[]; old_values?: EventRow[] }
  | { type: 'error'; subscription_id: string; code: string; message: string };

export interface LiveEventsOptions {
  batchSize?: number;
  lastRows?: number;
  from?: SeqId | bigint | string | number;
  /** Deprecated: `{ batch_size, last_rows, from }` (official SDK); the camelCase options win. */
  subscriptionOptions?: SubscriptionOptions;
  /** Accepted for compatibility; snapshot batches are always fetched (a partial snapshot stalls live changes on the server). */
  autoFetchBatches?: boolean;
  onError?: (error: LiveSubscriptionError) => void;
  onCheckpoint?: (checkpoint: { subscriptionId: string; lastSeqId: SeqId }) => void;
}

export interface LiveSubscriptionInfo {
  id: string;
  sql: string;
  /** Same as `sql` (the official SDK's name). */
  tableName: string;
  mode: 'rows' | 'events';
  /** The checkpoint: the newest applied `_seq`. */
  lastSeqId?: SeqId;
  /** Acknowledged on the current socket with its snapshot loaded. */
  live: boolean;
  closed: boolean;
  createdAt: Date;
  /** Rows held (`live()` subscriptions). */
  rowCount?: number;
}

/** Stops a subscription; always succeeds locally, online or not. */
export type Unsubscribe = () => Promise<void>;

// ----- internals -----------------------------------------------------------------------------

type WireRow = Record<string, unknown>;
type WireEntry = [string, ...unknown[]] | { k: string; r: WireRow };
type Item =
  // `loading`: part of a first snapshot (mirror only, no callback); `reset`: clear the mirror first.
  // Rows: `[key, v1, v2, …]` in `cols` order, or `{ k: key, r: row }` when a row has other columns.
  | { t: 'rows'; id: string; initial: boolean; loading?: true; reset?: true; resync: boolean; removed: string[]; cols: string[]; updated: WireEntry[]; inserted: WireEntry[]; order?: string[]; invalid?: unknown[] }
  | { t: 'event'; id: string; event: LiveEvent & { invalid?: unknown[] } }
  | { t: 'checkpoint'; id: string; seq: string }
  | { t: 'sub_error'; id: string; error: { code: string; message: string; retryable?: boolean; status?: number; details?: string }; fatal: boolean }
  | { t: 'state'; state: ConnectionStateName; attempt?: number; delay_ms?: number }
  | { t: 'error'; error: { code: string; message: string; retryable?: boolean; status?: number; details?: string }; closeCode?: number; closeReason?: string };

interface SubBase {
  id: string;
  sql: string;
  createdAt: Date;
  lastSeqId?: SeqId;
  onError?: (error: LiveSubscriptionError) => void;
  onCheckpoint?: (checkpoint: { subscriptionId: string; lastSeqId: SeqId }) => void;
}
interface RowsSub extends SubBase {
  kind: 'rows';
  mirror: Map<string, unknown>;
  types: Map<string, KalamDataType> | null;
  mapRow?: (row: RowData) => unknown;
  rowsArray: boolean;
  onRows: LiveRowsCallback<unknown>;
}
interface EventsSub extends SubBase {
  kind: 'events';
  onEvent: (event: LiveEvent) => void;
}
type Sub = RowsSub | EventsSub;

function seqText(from: SeqId | bigint | string | number | undefined): string | undefined {
  return from === undefined || from === null ? undefined : SeqId.from(from).toString();
}

/**
 * Live queries over one WebSocket. Used by the client class; usable alone:
 * `new LiveManager({ url, getToken })`.
 */
export class LiveManager {
  readonly #opts: LiveManagerOptions;
  #client: LiveClient | null = null;
  #creating: Promise<LiveClient> | null = null;
  #closed = false;
  readonly #subs = new Map<string, Sub>();
  #state: ConnectionState = { state: 'disconnected' };
  readonly #stateListeners = new Set<(state: ConnectionState) => void>();
  #lastError: KalamError | null = null;
  /** The close behind the latest connection error, if a close caused it. */
  #lastClose: { code: number; reason: string } | null = null;

  constructor(options: LiveManagerOptions) {
    if (!options || typeof options.url !== 'string') throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'LiveManager: url is required' });
    if (typeof options.getToken !== 'function') throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'LiveManager: getToken is required' });
    this.#opts = options;
    if (options.wsLazyConnect === false) {
      this.connect().catch((err: unknown) => this.#log('warn', 'eager connect failed (retrying in the background)', err));
    }
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Calls `listener` on every state change; returns a function that removes it. */
  onConnectionStateChange(listener: (state: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => {
      this.#stateListeners.delete(listener);
    };
  }

  isConnected(): boolean {
    return this.#client?.call('isConnected', []) ?? false;
  }

  /**
   * Materialized rows of a live query. `onRows(rows, change)` runs once per applied batch:
   * first with the complete initial snapshot (never an empty placeholder), then after every
   * burst of changes. Rows are in insertion order of their keys (snapshot in `_seq` order,
   * then new rows appended; updates stay in place).
   */
  async live<T = RowData>(sql: string, onRows: LiveRowsCallback<T>, options: LiveOptions<T> = {}): Promise<Unsubscribe> {
    if (typeof onRows !== 'function') throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'live(): onRows must be a function' });
    const keys = options.keyColumns ?? options.keyColumn;
    const keyColumns = keys === undefined ? undefined : Array.isArray(keys) ? keys : [keys];
    const legacy = options.subscriptionOptions;
    const from = options.from ?? legacy?.from;
    const wire = {
      batchSize: options.batchSize ?? legacy?.batch_size, lastRows: options.lastRows ?? legacy?.last_rows, from: seqText(from),
      keyColumns, limit: options.limit, verify: options.verify,
    };
    const id = await this.#subscribe(sql, wire, false);
    this.#subs.set(id, {
      kind: 'rows', id, sql, createdAt: new Date(), mirror: new Map(), types: null,
      mapRow: options.mapRow as ((row: RowData) => unknown) | undefined, rowsArray: options.rowsArray !== false,
      onRows: onRows as LiveRowsCallback<unknown>, onError: options.onError, onCheckpoint: options.onCheckpoint,
      lastSeqId: from === undefined ? undefined : SeqId.from(from),
    });
    return () => this.cancelSubscription(id);
  }

  /** Registers a subscription in the core (which refuses bad SQL or options); its id. */
  async #subscribe(sql: string, wire: object, events: boolean): Promise<string> {
    const client = await this.#ensureClient();
    try {
      return client.call('subscribe', [sql, JSON.stringify(wire), events]);
    } catch (err) {
      throw KalamError.from(err);
    }
  }

  /**
   * `live('SELECT * FROM "namespace"."table"')`. `table` must be `namespace.table` made of
   * identifiers (the core quotes them; anything else rejects with INVALID_ARGUMENT).
   */
  async liveTable<T = RowData>(table: string, onRows: LiveRowsCallback<T>, options: LiveOptions<T> = {}): Promise<Unsubscribe> {
    await initWasm();
    return this.live(callCore('liveTableSql', String(table)), onRows, options);
  }

  /**
   * Raw protocol events (`subscription_ack`, `initial_data_batch`, `change`, `error`) with
   * rows decoded by column type. Snapshot batches are paged automatically; after a
   * reconnect the subscription resumes from its checkpoint and replays are dropped.
   */
  async liveEvents(sql: string, onEvent: (event: LiveEvent) => void, options: LiveEventsOptions = {}): Promise<Unsubscribe> {
    if (typeof onEvent !== 'function') throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'liveEvents(): onEvent must be a function' });
    const legacy = options.subscriptionOptions;
    const from = options.from ?? legacy?.from;
    const wire = { batchSize: options.batchSize ?? legacy?.batch_size, lastRows: options.lastRows ?? legacy?.last_rows, from: seqText(from) };
    const id = await this.#subscribe(sql, wire, true);
    this.#subs.set(id, {
      kind: 'events', id, sql, createdAt: new Date(), onEvent, onError: options.onError, onCheckpoint: options.onCheckpoint,
      lastSeqId: from === undefined ? undefined : SeqId.from(from),
    });
    return () => this.cancelSubscription(id);
  }

  getSubscriptions(): LiveSubscriptionInfo[] {
    if (!this.#client) return [];
    const list = JSON.parse(this.#client.call('subscriptions', [])) as { id: string; sql: string; mode: string; last_seq_id: string | null; live: boolean }[];
    return list.map((s) => {
      const sub = this.#subs.get(s.id);
      return {
        id: s.id, sql: s.sql, tableName: s.sql, mode: s.mode === 'events' ? 'events' : 'rows',
        lastSeqId: s.last_seq_id !== null ? SeqId.from(s.last_seq_id) : sub?.lastSeqId,
        live: s.live, closed: false, createdAt: sub?.createdAt ?? new Date(),
        rowCount: sub?.kind === 'rows' ? sub.mirror.size : undefined,
      };
    });
  }

  /** Stops a subscription. Always succeeds locally (offline too); unknown ids are ignored. */
  async cancelSubscription(id: string): Promise<void> {
    this.#subs.delete(id);
    try {
      this.#client?.call('unsubscribe', [id]);
    } catch (err) {
      this.#log('warn', `unsubscribe ${id}: ignored error`, err);
    }
  }

  /**
   * Opens the socket now (no-op when open). Resolves when authenticated; rejects with the
   * error of the first failed attempt (reconnecting continues in the background).
   */
  async connect(): Promise<void> {
    const client = await this.#ensureClient();
    if (client.call('isConnected', [])) return;
    await new Promise<void>((resolve, reject) => {
      const off = this.onConnectionStateChange((s) => {
        if (s.state === 'connected') {
          off();
          resolve();
        } else if (s.state === 'reconnecting' || s.state === 'disconnected' || s.state === 'needs_auth') {
          off();
          reject(this.#lastError ?? new KalamError({ code: ErrorCode.NETWORK, message: `could not connect (${s.state})`, retryable: true }));
        }
      });
      client.call('connect', []);
      if (client.call('isConnected', [])) {
        off();
        resolve();
      }
    });
  }

  /** Closes the socket; subscriptions (and their rows) are kept and resume on `connect()`. */
  async disconnect(): Promise<void> {
    this.#client?.call('disconnect', []);
  }

  /** Closes the socket and forgets every subscription; the manager cannot be used again. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    this.#subs.clear();
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.call('shutdown', []);
      // Freed after the current call stack: shutdown() may run inside one of its callbacks.
      queueMicrotask(() => client.free());
    }
  }

  /** Hands the manager a fresh token (e.g. after a login) for the next connection. */
  setToken(token: string): void {
    this.#client?.call('tokenReady', [token]);
  }

  // ----- internals ---------------------------------------------------------------------------

  async #ensureClient(): Promise<LiveClient> {
    if (this.#closed) throw new KalamError({ code: ErrorCode.CLOSED, message: 'the live manager was shut down' });
    if (this.#client) return this.#client;
    this.#creating ??= (async () => {
      await initWasm();
      if (this.#closed) throw new KalamError({ code: ErrorCode.CLOSED, message: 'the live manager was shut down' });
      const o = this.#opts;
      const config = {
        url: o.url, pingIntervalMs: o.pingIntervalMs, connectTimeoutMs: o.connectTimeoutMs,
        disableCompression: o.disableCompression ?? false, batchSize: o.batchSize, reconnect: o.reconnect,
        verify: o.verify, liveness: o.liveness, snapshotTimeoutMs: o.snapshotTimeoutMs,
      };
      const runSql = o.runSql;
      const getToken = (force: boolean): Promise<string> => Promise.resolve().then(() => o.getToken(force));
      try {
        this.#client = new LiveClient(JSON.stringify(config), getToken, (json: string) => this.#onOutput(json), o.WebSocket,
          runSql ? (sql: string) => Promise.resolve().then(() => runSql(sql)) : undefined);
      } catch (err) {
        throw KalamError.from(err);
      }
      return this.#client;
    })().finally(() => {
      this.#creating = null;
    });
    return this.#creating;
  }

  #log(level: LogLevelName, message: string, details?: unknown): void {
    const log = this.#opts.log;
    if (log) {
      try {
        log(level, message, details);
      } catch {
        // a logger must not break the stream
      }
    } else if (level === 'error' || level === 'warn') {
      console[level](`kalam-wasm live: ${message}`, details ?? '');
    }
  }

  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log('error', `${what} threw`, err);
    }
  }

  #onOutput(json: string): void {
    const items = JSON.parse(json) as Item[];
    for (const item of items) {
      switch (item.t) {
        case 'rows':
          this.#applyRows(item);
          break;
        case 'event':
          this.#applyEvent(item.id, item.event);
          break;
        case 'checkpoint': {
          const sub = this.#subs.get(item.id);
          if (!sub) break;
          const lastSeqId = SeqId.from(item.seq);
          sub.lastSeqId = lastSeqId;
          const cb = sub.onCheckpoint;
          if (cb) this.#guard('onCheckpoint', () => cb({ subscriptionId: item.id, lastSeqId }));
          break;
        }
        case 'sub_error': {
          const sub = this.#subs.get(item.id);
          const err = Object.assign(KalamError.from(item.error), { type: 'error' as const, subscription_id: item.id, fatal: item.fatal });
          if (item.fatal) this.#subs.delete(item.id);
          if (!sub) break;
          if (sub.kind === 'events') {
            const ev: LiveEvent = { type: 'error', subscription_id: item.id, code: err.code, message: err.message };
            this.#guard('onEvent', () => sub.onEvent(ev));
          }
          const cb = sub.onError;
          if (cb) this.#guard('onError', () => cb(err));
          else this.#log('warn', `subscription ${item.id} (${sub.sql}): ${err.code}: ${err.message}`);
          break;
        }
        case 'state':
          this.#applyState({ state: item.state, attempt: item.attempt, delayMs: item.delay_ms });
          break;
        case 'error': {
          const err = KalamError.from(item.error);
          this.#lastError = err;
          this.#lastClose = item.closeCode === undefined ? null : { code: item.closeCode, reason: item.closeReason ?? '' };
          const withRecoverable = Object.assign(err, { recoverable: err.retryable });
          this.#log('debug', `connection: ${err.code}: ${err.message}`);
          const cb = this.#opts.onConnectionError;
          if (cb) this.#guard('onConnectionError', () => cb(withRecoverable));
          break;
        }
      }
    }
  }

  #applyState(next: ConnectionState): void {
    const prev = this.#state;
    this.#state = next;
    this.#log('debug', `state ${prev.state} -> ${next.state}`, next);
    if (next.state === 'connected') {
      this.#lastError = null;
      this.#lastClose = null;
      const cb = this.#opts.onConnect;
      if (cb) this.#guard('onConnect', cb);
    } else if (prev.state === 'connected') {
      const cb = this.#opts.onDisconnect;
      const message = this.#lastError?.message ?? (next.state === 'disconnected' ? 'disconnected' : `connection lost (${next.state})`);
      const close = this.#lastClose;
      if (cb) this.#guard('onDisconnect', () => cb({ message, code: close?.code, reason: close?.reason }));
    }
    const onState = this.#opts.onStateChange;
    if (onState) this.#guard('onStateChange', () => onState(next));
    for (const listener of [...this.#stateListeners]) this.#guard('connection state listener', () => listener(next));
  }

  #types(id: string): Map<string, KalamDataType> {
    const types = new Map<string, KalamDataType>();
    const schema = this.#client ? (JSON.parse(this.#client.call('schema', [id])) as SchemaField[] | null) : null;
    for (const f of schema ?? []) types.set(f.name, f.data_type);
    if (!types.has('_seq')) types.set('_seq', 'BigInt');
    if (!types.has('_deleted')) types.set('_deleted', 'Boolean');
    return types;
  }

  /**
   * Wraps the wire rows of a delta into rows of typed cells, setting them in the mirror. A
   * throwing `mapRow` cannot leave the mirror half-updated: that row is kept unmapped and
   * the first error is returned for `onError`.
   */
  #wrapAll(sub: RowsSub, cols: string[], entries: WireEntry[], reinsert: boolean, failed: { error?: unknown; count: number }): unknown[] {
    const types = sub.types!;
    const colTypes = cols.map((c) => types.get(c));
    const files = this.#opts.files;
    const mirror = sub.mirror;
    const out: unknown[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      let key: string;
      const row: RowData = {};
      if (Array.isArray(entry)) {
        key = entry[0] as string;
        for (let j = 0; j < cols.length; j++) row[cols[j]] = new KalamCellValue(entry[j + 1], colTypes[j], files);
      } else {
        key = entry.k;
        for (const k in entry.r) row[k] = new KalamCellValue(entry.r[k], types.get(k), files);
      }
      let value: unknown = row;
      if (sub.mapRow) {
        try {
          value = sub.mapRow(row);
        } catch (err) {
          if (failed.count++ === 0) failed.error = err;
        }
      }
      if (reinsert) mirror.delete(key); // appended: a key that comes back goes to the end
      mirror.set(key, value);
      out[i] = value;
    }
    return out;
  }

  #applyRows(item: Extract<Item, { t: 'rows' }>): void {
    const sub = this.#subs.get(item.id);
    if (!sub || sub.kind !== 'rows') return;
    if (item.invalid) this.#log('warn', `subscription ${item.id}: malformed cells kept raw`, item.invalid);
    if (item.reset || item.resync || sub.types === null) sub.types = this.#types(item.id);
    const mirror = sub.mirror;
    if (item.reset) mirror.clear();
    const removedRows: unknown[] = [];
    for (const key of item.removed) {
      removedRows.push(mirror.get(key));
      mirror.delete(key);
    }
    const failed: { error?: unknown; count: number } = { count: 0 };
    const updated = this.#wrapAll(sub, item.cols, item.updated, false, failed);
    const inserted = this.#wrapAll(sub, item.cols, item.inserted, true, failed);
    if (failed.count) this.#mapRowFailed(sub, failed.count, failed.error);
    if (item.order) {
      // Live ORDER BY: the core sends the window's keys in order when it changed (a Map
      // cannot insert in the middle, so it is refilled: O(window)).
      const values = item.order.map((k) => mirror.get(k));
      mirror.clear();
      for (let i = 0; i < item.order.length; i++) mirror.set(item.order[i], values[i]);
    }
    if (item.loading) return; // the app hears of the snapshot once it is complete
    let rows: unknown[] = [];
    let change: LiveRowsChange<unknown>;
    if (item.initial) {
      // The snapshot arrived in parts: the first callback lists all of it as inserted.
      const all = Array.from(mirror.values());
      if (sub.rowsArray) rows = all.slice();
      change = {
        subscriptionId: item.id, initial: true, resync: false, inserted: all, updated: [],
        removed: [], removedRows: [], rowMap: mirror,
      };
    } else {
      if (sub.rowsArray) rows = Array.from(mirror.values());
      change = {
        subscriptionId: item.id, initial: false, resync: item.resync, inserted, updated,
        removed: item.removed, removedRows, rowMap: mirror,
      };
    }
    this.#guard('onRows', () => sub.onRows(rows, change));
  }

  /** Reports rows kept unmapped because `mapRow` threw (to `onError`, else the log). */
  #mapRowFailed(sub: RowsSub, count: number, cause: unknown): void {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const err = Object.assign(new KalamError({
      code: ErrorCode.INVALID_ARGUMENT,
      message: `mapRow threw for ${count} row(s), kept unmapped: ${reason}`,
    }), { type: 'error' as const, subscription_id: sub.id, fatal: false });
    this.#log('error', `subscription ${sub.id}: ${err.message}`, cause);
    const cb = sub.onError;
    if (cb) this.#guard('onError', () => cb(err));
  }

  #applyEvent(id: string, event: LiveEvent & { invalid?: unknown[] }): void {
    const sub = this.#subs.get(id);
    if (!sub || sub.kind !== 'events') return;
    if (event.invalid) {
      this.#log('warn', `subscription ${id}: malformed cells kept raw`, event.invalid);
      delete event.invalid;
    }
    this.#guard('onEvent', () => sub.onEvent(event));
  }
}
