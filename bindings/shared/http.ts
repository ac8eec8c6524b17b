// The request/response half shared by both packages: wraps the wasm `HttpShell` (auth,
// SQL, retries, endpoints and decoding live in Rust; each operation is one `run(op, args)`)
// and turns its JSON answers into typed rows.
import { HttpShell } from './wasm/kalam_wasm.js';
import { callCore, initWasm } from './wasm-loader.js';
import { ErrorCode, KalamError, rethrowAsKalamError } from './errors.js';
import { KalamCellValue, FileRef, tableLocation, type FileContext, type KalamDataType, type RowData, type SchemaField } from './cells.js';
import type { AuthCredentials, AuthProvider, LoginResponse } from './auth.js';

export enum LogLevel {
  Verbose = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  None = 5,
}

export interface LogEntry {
  level: LogLevel;
  message: string;
  tag: string;
  timestamp: string;
}

export type LogListener = (entry: LogEntry) => void;

/** Options shared by createClient and createConsumerClient. */
export interface HttpClientOptions {
  /** Server base URL, e.g. `http://localhost:8080`. */
  url: string;
  /** Asked for credentials on first use and whenever they must be renewed. */
  authProvider?: AuthProvider;
  /** Fixed credentials (instead of, or as the first answer of, `authProvider`). */
  auth?: AuthCredentials;
  /** Per-request timeout (default 30 000 ms; 0 disables). */
  timeoutMs?: number;
  /** Retries of idempotent reads on network errors, timeouts, 429/502/503/504 (default 3). Writes are never retried blindly. */
  maxRetries?: number;
  /** Namespace for unqualified table names (`namespace_id`); default: the server's `default`. */
  namespace?: string;
  logLevel?: LogLevel;
  logListener?: LogListener;
}

/** Per-call options. */
export interface RequestOptions {
  signal?: AbortSignal;
  namespace?: string;
  timeoutMs?: number;
}

export interface ErrorDetail {
  code: string;
  message: string;
  details?: string;
}

export interface QueryResult {
  /** Columns in position order (absent for DDL/DML). */
  schema?: SchemaField[];
  /** Positional rows of normalised values (BIGINT/DECIMAL as exact strings, JSON parsed, FILE as objects). */
  rows?: unknown[][];
  /**
   * The same rows as `{ column: value }` objects (the official SDK's shape; computed on first
   * read, not enumerable, so it costs nothing unless used).
   */
  readonly named_rows?: Record<string, unknown>[];
  row_count: number;
  message?: string;
  as_user?: string;
  /** Cells the client could not decode by their column type; their raw value is kept. */
  invalid?: { row: number; column: string; reason: string }[];
}

export interface QueryResponse {
  status: 'success';
  results: QueryResult[];
  took?: number;
}

interface WireColumn { name: string; type: KalamDataType; flags?: string[] }
interface WireResult { columns?: WireColumn[]; rows?: unknown[][]; row_count: number; message?: string; as_user?: string; invalid?: QueryResult['invalid'] }
interface WireResponse { results: WireResult[]; took?: number }

/** A value for a `$n` parameter or a row cell. */
export type SqlValue = string | number | bigint | boolean | null | Date;

/** Row key for update/delete: a value of the `id` column, or `{ column: value }` for other or composite keys. */
export type RowKey = SqlValue | Record<string, SqlValue>;

/** JSON text of params/rows with exact 64-bit integers (`{"$bigint": "…"}`, decoded in Rust). */
export function encodeSqlValues(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v));
}

/** @internal Builds a QueryResponse from the core's normalised JSON. */
export function decodeResponseJson(json: string, files: FileContext): QueryResponse {
  const wire = JSON.parse(json) as WireResponse;
  const results = wire.results.map((r): QueryResult => {
    const out: QueryResult = { row_count: r.row_count };
    if (r.columns?.length) {
      out.schema = r.columns.map((c, index) => ({ name: c.name, data_type: c.type, index, ...(c.flags?.length ? { flags: c.flags as SchemaField['flags'] } : {}) }));
    }
    if (r.rows && (r.rows.length || r.columns?.length)) {
      const rows = r.rows;
      const names = (r.columns ?? []).map((c) => c.name);
      out.rows = rows;
      let named: Record<string, unknown>[] | undefined;
      Object.defineProperty(out, 'named_rows', {
        enumerable: false,
        configurable: true,
        get: () => (named ??= rows.map((row) => Object.fromEntries(names.map((n, i) => [n, row[i]])))),
      });
    }
    if (r.message !== undefined) out.message = r.message;
    if (r.as_user !== undefined) out.as_user = r.as_user;
    if (r.invalid?.length) out.invalid = r.invalid;
    return out;
  });
  const response: QueryResponse = { status: 'success', results };
  if (wire.took !== undefined) response.took = wire.took;
  Object.defineProperty(response, FILES, { value: files });
  return response;
}

const FILES = Symbol('files');

/** Typed rows of one result (`result` defaults to the first with rows). */
export function rowsOf(response: QueryResponse, result?: QueryResult): RowData[] {
  const r = result ?? response.results.find((x) => x.rows) ?? response.results[0];
  if (!r?.rows || !r.schema) return [];
  const files = (response as unknown as Record<symbol, FileContext | undefined>)[FILES];
  const schema = r.schema;
  return r.rows.map((values) => {
    const row: RowData = {};
    for (let i = 0; i < schema.length; i++) {
      const col = schema[i]!;
      row[col.name] = new KalamCellValue(values[i], col.data_type, files);
    }
    return row;
  });
}

/** A row with its plain values and FILE-column helpers (official `KalamRow` shape). */
export class KalamRow<T extends Record<string, unknown> = Record<string, unknown>> {
  readonly data: T;
  readonly cells: RowData;
  readonly #namespace?: string;
  readonly #table?: string;

  constructor(cells: RowData, table?: { namespace: string; table: string }) {
    this.cells = cells;
    const data: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(cells)) data[k] = v.toJson();
    this.data = data as T;
    this.#namespace = table?.namespace;
    this.#table = table?.table;
  }

  /** The typed cell of `column` (official `KalamRow.cell`). */
  cell(column: string): KalamCellValue | undefined {
    return this.cells[column];
  }

  /** The typed cells (official `KalamRow.typedData`). */
  get typedData(): RowData {
    return this.cells;
  }

  /** The FILE cell of `column` as a FileRef located in this row's table. */
  file(column: string): FileRef | null {
    const ref = this.cells[column]?.asFile() ?? null;
    if (ref && this.#namespace && this.#table && !ref.download_path) return ref.forTable(this.#namespace, this.#table);
    return ref;
  }
}

export interface UploadProgress {
  file_index: number;
  total_files: number;
  file_name: string;
  bytes_sent: number;
  total_bytes: number;
  percent: number;
}

export interface QueryWithFilesOptions extends RequestOptions {
  onProgress?: (progress: UploadProgress) => void;
}

/** Everything both packages share: lazy wasm init, auth, SQL, files, diagnostics. */
export class HttpClientBase {
  protected readonly options: HttpClientOptions;
  #core?: Promise<HttpShell>;
  #baseUrl = '';
  #logLevel: LogLevel;
  #logListener?: LogListener;
  #authType: AuthCredentials['type'] | undefined;

  constructor(options: HttpClientOptions) {
    // Shape checks only (like the official SDK's constructor): the URL's syntax and every
    // value rule are the core's, checked when it loads (first call) with a typed error.
    const invalid = (message: string) => new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message });
    if (!options || typeof options !== 'object') throw invalid('createClient needs an options object { url, authProvider }');
    if (typeof options.url !== 'string' || options.url.trim() === '') {
      throw invalid('createClient needs { url }: the server base URL, e.g. http://localhost:8080');
    }
    if (options.authProvider !== undefined && typeof options.authProvider !== 'function') {
      throw invalid('authProvider must be a function returning credentials (e.g. async () => Auth.basic(user, password))');
    }
    if (options.authProvider === undefined && (options.auth === undefined || options.auth === null)) {
      throw invalid('createClient needs { authProvider } (or { auth }); use authProvider: async () => Auth.none() for no credentials');
    }
    this.options = options;
    this.#logLevel = options.logLevel ?? LogLevel.Warn;
    this.#logListener = options.logListener;
    this.#authType = options.auth?.type;
  }

  /** @internal The wasm core, created on first use. */
  protected core(): Promise<HttpShell> {
    this.#core ??= (async () => {
      await initWasm();
      const { url, auth, authProvider, timeoutMs = 30_000, maxRetries = 3, namespace } = this.options;
      const provider = authProvider ? async () => {
        const credentials = await authProvider();
        this.#authType = credentials?.type;
        return credentials;
      } : undefined;
      const shell = new HttpShell(url, auth ? JSON.stringify(auth) : undefined, provider, timeoutMs, maxRetries, namespace);
      this.#baseUrl = callCore('baseUrl', url);
      return shell;
    })().catch((err: unknown) => {
      this.#core = undefined; // a failed wasm load may be retried; a bad URL fails again, typed
      throw KalamError.from(err);
    });
    return this.#core;
  }

  /** Loads the WebAssembly core now (otherwise it loads on first use). */
  async initialize(): Promise<void> {
    await this.core();
  }

  /** The kind of the credentials in use: `'basic'`, `'jwt'`, or null (none, or not asked yet). */
  getAuthType(): 'basic' | 'jwt' | null {
    return this.#authType === 'basic' || this.#authType === 'jwt' ? this.#authType : null;
  }

  /** Wraps typed cells as a {@link KalamRow} whose FILE cells resolve to `tableName`. */
  wrapRow<T extends Record<string, unknown> = Record<string, unknown>>(row: RowData, tableName?: string): KalamRow<T> {
    return new KalamRow<T>(row, this.#tableRef(tableName, undefined));
  }

  #tableRef(tableName: string | undefined, namespace: string | undefined): { namespace: string; table: string } | undefined {
    if (!tableName) return undefined;
    return tableLocation(tableName, namespace ?? this.options.namespace);
  }

  setLogLevel(level: LogLevel): void {
    this.#logLevel = level;
  }

  setLogListener(listener: LogListener | undefined): void {
    this.#logListener = listener;
  }

  /** @internal */
  protected log(level: LogLevel, tag: string, message: string): void {
    if (level < this.#logLevel || level >= LogLevel.None) return;
    const entry: LogEntry = { level, tag, message, timestamp: new Date().toISOString() };
    if (this.#logListener) {
      try {
        this.#logListener(entry);
      } catch {
        // a throwing logListener must not break the call that logged
      }
      return;
    }
    const line = `[kalam-wasm] [${LogLevel[level]}] [${tag}] ${message}`;
    if (level >= LogLevel.Error) console.error(line);
    else if (level === LogLevel.Warn) console.warn(line);
    else console.log(line);
  }

  /** @internal How FileRefs of this client download (the app client overrides this); after `core()`. */
  protected fileContext(): FileContext {
    return {
      baseUrl: this.#baseUrl,
      download: () => Promise.reject(new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'file downloads need @kalam-wasm/client' })),
    };
  }

  /** Runs SQL (one or more statements) with optional `$1…$n` params. */
  async query(sql: string, params?: SqlValue[], options?: RequestOptions): Promise<QueryResponse> {
    return this.#query(sql, params, options);
  }

  async #query(sql: string, params?: SqlValue[], options?: RequestOptions, fileTable?: string): Promise<QueryResponse> {
    const json = await this.run<string>('query', { sql, params: sqlParams(params), namespace: options?.namespace, fileTable }, options);
    return decodeResponseJson(json, this.fileContext());
  }

  /** First row of the first result as typed cells, or null. */
  async queryOne(sql: string, params?: SqlValue[], options?: RequestOptions): Promise<RowData | null> {
    return rowsOf(await this.query(sql, params, options))[0] ?? null;
  }

  /** All rows of the first result as typed cells (`row.body.asString()`). */
  async queryAll(sql: string, params?: SqlValue[], options?: RequestOptions): Promise<RowData[]> {
    return rowsOf(await this.query(sql, params, options));
  }

  /** Rows as {@link KalamRow}s whose FILE cells resolve to `tableName` (`namespace.table`). */
  async queryRows<T extends Record<string, unknown> = Record<string, unknown>>(
    sql: string, tableName?: string, params?: SqlValue[], options?: RequestOptions,
  ): Promise<KalamRow<T>[]> {
    const response = await this.#query(sql, params, options, tableName);
    const table = this.#tableRef(tableName, options?.namespace);
    return rowsOf(response).map((cells) => new KalamRow<T>(cells, table));
  }

  /** Runs one statement as another user: `EXECUTE AS USER '<userId>' (<sql>)`. */
  async executeAsUser(sql: string, userId: string, params?: SqlValue[], options?: RequestOptions): Promise<QueryResponse> {
    const json = await this.run<string>('executeAsUser', { sql, user: String(userId), params: sqlParams(params), namespace: options?.namespace }, options);
    return decodeResponseJson(json, this.fileContext());
  }

  /** Logs in with Basic credentials (exchanged on /v1/api/auth/login only); later calls use the JWT. */
  async login(): Promise<LoginResponse> {
    return JSON.parse(await this.run<string>('login')) as LoginResponse;
  }

  /** Rotates tokens with `refreshToken` (default: the one from the last login). */
  async refreshToken(refreshToken?: string): Promise<LoginResponse> {
    return JSON.parse(await this.run<string>('refreshToken', { token: refreshToken })) as LoginResponse;
  }

  /** The current access token, obtained or renewed first when needed. */
  async getAccessToken(options?: { forceRefresh?: boolean }): Promise<string> {
    return this.run<string>('accessToken', { force: options?.forceRefresh ?? false });
  }

  /** Replaces the credentials used from now on. */
  async setAuth(credentials: AuthCredentials): Promise<void> {
    await this.run('setCredentials', credentials);
    this.#authType = credentials.type;
  }

  /**
   * @internal Runs core operation `op` (see `HttpShell.run`) with `args` as JSON; resolves
   * with its answer (JSON text, or a Blob for downloads).
   */
  protected async run<T = string>(op: string, args?: object, options?: RequestOptions, files?: Blob[],
    transport?: UploadTransport): Promise<T> {
    const core = await this.core();
    return rethrowAsKalamError(() => core.run(op, args === undefined ? undefined : JSON.stringify(args),
      options?.signal, options?.timeoutMs, files, transport)) as Promise<T>;
  }

  /** @internal A JSON endpoint operation (`health`, `me`, ...), parsed. */
  protected async endpoint<T>(op: string, args?: object, options?: RequestOptions): Promise<T> {
    return JSON.parse(await this.run<string>(op, args, options)) as T;
  }
}

/**
 * @internal Carries one upload attempt for the core (XMLHttpRequest, for progress events):
 * settles with the answer or rejects with `{ code, message, retryable }`; `signal` aborts it.
 */
export type UploadTransport = (url: string, authorization: string | undefined, form: FormData, timeoutMs: number,
  signal: AbortSignal) => Promise<{ status: number; body: string }>;

/** JSON text of `$n` params for the core, or undefined for none. */
function sqlParams(params: SqlValue[] | undefined): string | undefined {
  return params?.length ? encodeSqlValues(params) : undefined;
}
