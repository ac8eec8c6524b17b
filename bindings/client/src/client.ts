// The app client (`createClient`): the HTTP client plus live queries over one shared
// WebSocket (LiveManager, driven by the Rust core). Tokens for the socket come from the same
// auth state as HTTP, so a refresh or re-login serves both.
import { KalamHttpClient } from './http-client.js';
import {
  LiveManager, type ConnectionState, type DisconnectReason, type LiveConnectionError, type LiveEvent,
  type LiveEventsOptions, type LiveManagerOptions, type LiveOptions, type LiveRowsCallback, type LiveSubscriptionInfo,
  type Unsubscribe,
} from './live.js';
import type { FileContext, RowData } from './cells.js';
import { LogLevel, type HttpClientOptions } from './http.js';

/** The HTTP client's options plus the live socket's (documented on {@link LiveManagerOptions}). */
export interface ClientOptions
  extends HttpClientOptions,
    Pick<LiveManagerOptions, 'wsLazyConnect' | 'pingIntervalMs' | 'disableCompression' | 'batchSize' | 'reconnect'
      | 'WebSocket' | 'onConnect' | 'onDisconnect' | 'onConnectionError' | 'verify' | 'liveness' | 'snapshotTimeoutMs'> {
  /** Alias of `onConnectionError` (official name). */
  onError?: (error: LiveConnectionError) => void;
  onConnectionStateChange?: (state: ConnectionState) => void;
}

export class KalamDBClient extends KalamHttpClient {
  #live?: LiveManager;
  #onConnect?: () => void;
  #onDisconnect?: (reason: DisconnectReason) => void;
  #onConnectionError?: (error: LiveConnectionError) => void;
  readonly #liveOptions: ClientOptions;

  constructor(options: ClientOptions) {
    super(options);
    this.#liveOptions = options;
    this.#onConnect = options.onConnect;
    this.#onDisconnect = options.onDisconnect;
    this.#onConnectionError = options.onConnectionError ?? options.onError;
    if (options.wsLazyConnect === false) this.#manager();
  }

  #manager(): LiveManager {
    if (this.#live) return this.#live;
    const o = this.#liveOptions;
    const files: FileContext = {
      baseUrl: o.url.replace(/\/+$/, ''),
      download: (path, opts) => this.run<Blob>('download', { path, userId: opts?.userId }, { signal: opts?.signal }),
    };
    this.#live = new LiveManager({
      url: o.url,
      getToken: (forceRefresh) => this.getAccessToken({ forceRefresh }),
      wsLazyConnect: o.wsLazyConnect,
      pingIntervalMs: o.pingIntervalMs,
      disableCompression: o.disableCompression,
      batchSize: o.batchSize,
      reconnect: o.reconnect,
      verify: o.verify,
      liveness: o.liveness,
      snapshotTimeoutMs: o.snapshotTimeoutMs,
      // Self-verification checksums go through this client's HTTP SQL path (auth, retries).
      runSql: (sql) => this.run<string>('query', { sql }),
      WebSocket: o.WebSocket,
      files,
      onConnect: () => this.#onConnect?.(),
      onDisconnect: (reason) => this.#onDisconnect?.(reason),
      onConnectionError: (error) => this.#onConnectionError?.(error),
      onStateChange: o.onConnectionStateChange,
      log: (level, message) => this.log(
        level === 'debug' ? LogLevel.Debug : level === 'info' ? LogLevel.Info : level === 'warn' ? LogLevel.Warn : LogLevel.Error,
        'live', message),
    });
    return this.#live;
  }

  /**
   * Subscribes to live SQL and calls `onRows(rows, change)` once per applied batch with the
   * current rows (typed cells) and what changed. Resolves with an unsubscribe function.
   */
  live<T = RowData>(sql: string, onRows: LiveRowsCallback<T>, options?: LiveOptions<T>): Promise<Unsubscribe> {
    return this.#manager().live(sql, onRows, options);
  }

  /** `live('SELECT * FROM "namespace"."table"', …)`; `table` must be `namespace.table` identifiers. */
  liveTable<T = RowData>(table: string, onRows: LiveRowsCallback<T>, options?: LiveOptions<T>): Promise<Unsubscribe> {
    return this.#manager().liveTable(table, onRows, options);
  }

  /** @deprecated official alias of {@link liveTable}. */
  liveTableRows<T = RowData>(table: string, onRows: LiveRowsCallback<T>, options?: LiveOptions<T>): Promise<Unsubscribe> {
    return this.liveTable(table, onRows, options);
  }

  /** Raw protocol events (ack, batch, insert/update/delete, error) of a live query. */
  liveEvents(sql: string, onEvent: (event: LiveEvent) => void, options?: LiveEventsOptions): Promise<Unsubscribe> {
    return this.#manager().liveEvents(sql, onEvent, options);
  }

  /** Every subscription with its id, SQL and last applied SeqId. */
  getSubscriptions(): LiveSubscriptionInfo[] {
    return this.#live?.getSubscriptions() ?? [];
  }

  /** Ends a subscription by id; always succeeds locally, online or not. */
  async cancelSubscription(id: string): Promise<void> {
    await this.#live?.cancelSubscription(id);
  }

  /** Opens the live socket now (otherwise it opens with the first subscription). */
  connect(): Promise<void> {
    return this.#manager().connect();
  }

  /** Closes the socket; subscriptions are kept and resume on `connect()` or the next subscribe. */
  async disconnect(): Promise<void> {
    await this.#live?.disconnect();
  }

  /** Closes the socket and forgets every subscription; the client can still run SQL. */
  async shutdown(): Promise<void> {
    const live = this.#live;
    this.#live = undefined;
    await live?.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  isConnected(): boolean {
    return this.#live?.isConnected() ?? false;
  }

  /** The live connection state (`disconnected` until the socket is first used). */
  get connectionState(): ConnectionState {
    return this.#live?.state ?? { state: 'disconnected' };
  }

  /** Calls `listener` on every connection state change; returns a function removing it. */
  onConnectionStateChange(listener: (state: ConnectionState) => void): () => void {
    return this.#manager().onConnectionStateChange(listener);
  }

  onConnect(callback: () => void): void {
    this.#onConnect = callback;
  }

  onDisconnect(callback: (reason: DisconnectReason) => void): void {
    this.#onDisconnect = callback;
  }

  onConnectionError(callback: (error: LiveConnectionError) => void): void {
    this.#onConnectionError = callback;
  }

  /** Alias of {@link onConnectionError} (official name). */
  onError(callback: (error: LiveConnectionError) => void): void {
    this.#onConnectionError = callback;
  }
}

/** Creates a client; nothing is loaded or sent until the first call. */
export function createClient(options: ClientOptions): KalamDBClient {
  return new KalamDBClient(options);
}
