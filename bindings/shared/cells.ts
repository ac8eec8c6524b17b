// Typed cells. The Rust core decodes every value by its column type (PROTOCOL.md §2) into
// a normalised form (BIGINT/DECIMAL as exact strings, JSON parsed, FILE as a FileRef
// object, times as numbers); these wrappers only expose it, without re-guessing types.
import { SeqId } from './seq-id.js';
import { ErrorCode, KalamError } from './errors.js';
import { callCore } from './wasm-loader.js';

export type KalamDataType =
  | 'Boolean' | 'SmallInt' | 'Int' | 'BigInt' | 'Float' | 'Double' | 'Text' | 'Timestamp' | 'Date'
  | 'DateTime' | 'Time' | 'Json' | 'Bytes' | 'Uuid' | 'File'
  | { Embedding: number }
  | { Decimal: { precision: number; scale: number } }
  | string;

export type FieldFlag = 'pk' | 'nn' | 'uq';

export interface SchemaField {
  name: string;
  data_type: KalamDataType;
  index: number;
  flags?: FieldFlag[];
}

/** A FILE cell's reference as stored by the server, plus where to download it. */
export interface FileRefData {
  id: string;
  sub: string;
  name: string;
  size: number;
  mime: string;
  sha256: string;
  shard?: number;
  /** `{id}-{sanitised name}.{ext}`: the last path segment of the download route. */
  stored_name: string;
  /** `/v1/files/{ns}/{table}/{sub}/{stored_name}`, when the table was known when decoding. */
  download_path?: string;
}

/** What a FileRef needs from the client that produced it. @internal */
export interface FileContext {
  baseUrl: string;
  namespace?: string;
  table?: string;
  download(path: string, options?: { userId?: string; signal?: AbortSignal }): Promise<Blob>;
}

/**
 * The server's stored file name (PROTOCOL.md §1.8): `{id}-{sanitised name}.{ext}`, or
 * `{id}.{ext}` when nothing of the name survives, as the Rust core computes it (the rule
 * lives there once). Needs the WebAssembly core (`await initWasm()` or any client call first).
 */
export function storedFileName(id: string, name: string): string {
  return callCore('storedFileName', id, name);
}

/**
 * `{namespace, table}` of `table` or `namespace.table`: an unqualified name is placed in
 * `namespace`, else the server's default namespace (the core's rule). Bad names reject with
 * `INVALID_ARGUMENT`. @internal
 */
export function tableLocation(name: string, namespace?: string): { namespace: string; table: string } {
  const [ns, table] = JSON.parse(callCore('tableLocation', name, namespace)) as [string, string];
  return { namespace: ns, table };
}

function isDecodedFileRef(v: object): v is FileRefData {
  const o = v as Partial<FileRefData>;
  return typeof o.id === 'string' && typeof o.sub === 'string' && typeof o.name === 'string' && typeof o.stored_name === 'string';
}

/**
 * FILE cells arrive decoded by the core (with `stored_name`): taken as they are. Anything
 * else (FileRef JSON text, a raw object) is parsed by the core, which also names the file.
 */
function fileRefData(value: unknown): FileRefData | null {
  if (value && typeof value === 'object' && isDecodedFileRef(value)) {
    const o = value;
    return {
      id: o.id, sub: o.sub, name: o.name, size: Number(o.size ?? 0), mime: o.mime ?? '', sha256: o.sha256 ?? '',
      ...(o.shard !== undefined && o.shard !== null ? { shard: o.shard } : {}),
      stored_name: o.stored_name,
      ...(typeof o.download_path === 'string' ? { download_path: o.download_path } : {}),
    };
  }
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value && typeof value === 'object') {
    try {
      text = JSON.stringify(value);
    } catch {
      return null; // e.g. a bigint inside: not FileRef JSON
    }
  } else return null;
  const json = callCore<string | undefined>('FileRef.from', text);
  return json === undefined ? null : (JSON.parse(json) as FileRefData);
}

export class FileRef implements FileRefData {
  readonly id: string;
  readonly sub: string;
  readonly name: string;
  readonly size: number;
  readonly mime: string;
  readonly sha256: string;
  readonly shard?: number;
  readonly stored_name: string;
  readonly download_path?: string;
  readonly namespace?: string;
  readonly table?: string;
  readonly #ctx?: FileContext;

  constructor(data: FileRefData, ctx?: FileContext, table?: { namespace: string; table: string }) {
    this.id = data.id;
    this.sub = data.sub;
    this.name = data.name;
    this.size = data.size;
    this.mime = data.mime;
    this.sha256 = data.sha256;
    this.shard = data.shard;
    this.stored_name = data.stored_name;
    this.download_path = table ? undefined : data.download_path;
    this.namespace = table?.namespace ?? ctx?.namespace;
    this.table = table?.table ?? ctx?.table;
    this.#ctx = ctx;
  }

  /** `/v1/files/{namespace}/{table}/{sub}/{stored_name}` (the server's route, by stored name). */
  relativeUrl(): string {
    if (this.download_path) return this.download_path;
    return this.#url(undefined, this.namespace, this.table);
  }

  /** The download path (on `baseUrl` when given), built by the core. */
  #url(baseUrl: string | undefined, namespace: string | undefined, table: string | undefined): string {
    if (!namespace || !table) {
      throw new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: `FileRef ${this.id}: unknown table; use queryRows(sql, 'namespace.table') or fileRef.forTable(ns, table)` });
    }
    return callCore('FileRef.url', baseUrl ?? null, namespace, table, this.sub, this.stored_name);
  }

  /** From a FILE cell's value: FileRef JSON text or an object (official `FileRef.from`). */
  static from(value: unknown): FileRef | null {
    const data = fileRefData(value);
    return data ? new FileRef(data) : null;
  }

  /** From FileRef JSON text (official `FileRef.fromJson`). */
  static fromJson(json: string): FileRef | null {
    return FileRef.from(json);
  }

  /** The stored file name: the last segment of the download route. */
  storedName(): string {
    return this.stored_name;
  }

  /** `[shard-N/]{sub}/{stored_name}`: where the server keeps it inside the table's folder. */
  relativePath(): string {
    return `${this.shard !== undefined && this.shard !== null ? `shard-${this.shard}/` : ''}${this.sub}/${this.stored_name}`;
  }

  /**
   * The download URL on `baseUrl` for `namespace.table` (official signature; unlike the
   * official SDK this is the server's real route, by stored name).
   */
  getDownloadUrl(baseUrl: string, namespace: string, table: string): string {
    return this.#url(baseUrl, namespace, table);
  }

  /** Absolute URL. Downloading it needs the Bearer token: prefer {@link FileRef.download}. */
  downloadUrl(): string {
    return `${this.#ctx?.baseUrl ?? ''}${this.relativeUrl()}`;
  }

  /** The same reference, located in `namespace.table`. */
  forTable(namespace: string, table: string): FileRef {
    return new FileRef(this, this.#ctx, { namespace, table });
  }

  /**
   * Downloads the bytes with the client's credentials. `userId` reads another user's USER
   * table file (privileged roles only).
   */
  download(options?: { userId?: string; signal?: AbortSignal }): Promise<Blob> {
    if (!this.#ctx) {
      return Promise.reject(new KalamError({ code: ErrorCode.INVALID_ARGUMENT, message: 'this FileRef has no client to download with; get it from a query of @kalam-wasm/client' }));
    }
    try {
      return this.#ctx.download(this.relativeUrl(), options);
    } catch (err) {
      return Promise.reject(KalamError.from(err));
    }
  }

  isImage(): boolean {
    return this.mime.startsWith('image/');
  }

  isVideo(): boolean {
    return this.mime.startsWith('video/');
  }

  isAudio(): boolean {
    return this.mime.startsWith('audio/');
  }

  isPdf(): boolean {
    return this.mime === 'application/pdf';
  }

  /** A short human description of the type (`Image`, `PDF`, `Video`, ...). */
  getTypeDescription(): string {
    if (this.isImage()) return 'Image';
    if (this.isVideo()) return 'Video';
    if (this.isAudio()) return 'Audio';
    if (this.isPdf()) return 'PDF';
    if (this.mime.startsWith('text/')) return 'Text';
    if (this.mime.includes('json')) return 'JSON';
    if (/zip|tar|gzip|compressed/.test(this.mime)) return 'Archive';
    return 'File';
  }

  toObject(): FileRefData {
    return this.toJSON();
  }

  /** Official spelling of {@link FileRef.toJSON}. */
  toJson(): FileRefData {
    return this.toJSON();
  }

  formatSize(): string {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let n = this.size;
    let u = 0;
    while (n >= 1024 && u < units.length - 1) {
      n /= 1024;
      u += 1;
    }
    return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
  }

  toJSON(): FileRefData {
    return { id: this.id, sub: this.sub, name: this.name, size: this.size, mime: this.mime, sha256: this.sha256, shard: this.shard, stored_name: this.stored_name };
  }
}

const MICROS_PER_MS = 1000;
const MS_PER_DAY = 86_400_000;

function typeName(t: KalamDataType | undefined): string {
  if (t === undefined) return 'Unknown';
  if (typeof t === 'string') return t;
  return Object.keys(t)[0] ?? 'Unknown';
}

/**
 * One cell: its normalised value plus its column type. Accessors return `null` for SQL NULL
 * and for values that do not fit the requested type.
 */
export class KalamCellValue {
  readonly #raw: unknown;
  readonly #type: KalamDataType | undefined;
  readonly #files?: FileContext;

  /** @internal */
  constructor(raw: unknown, type?: KalamDataType, files?: FileContext) {
    this.#raw = raw === undefined ? null : raw;
    this.#type = type;
    this.#files = files;
  }

  /** Wraps a plain value (no column type known). */
  static from(raw: unknown, type?: KalamDataType): KalamCellValue {
    return new KalamCellValue(raw, type);
  }

  /** The column type this cell was decoded with. */
  get dataType(): KalamDataType | undefined {
    return this.#type;
  }

  isNull(): boolean {
    return this.#raw === null;
  }

  /** The normalised value (BIGINT as string, JSON parsed, FILE as plain object...). */
  toJson(): unknown {
    return this.#raw;
  }

  /** JSON columns: the parsed document. Other columns: the normalised value. */
  asJson(): unknown {
    return this.#raw;
  }

  asString(): string | null {
    const v = this.#raw;
    if (v === null) return null;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
    return JSON.stringify(v);
  }

  /** A JS number; BIGINT values beyond 2^53 are refused (null): use {@link asBigInt}. */
  asInt(): number | null {
    const v = this.#raw;
    if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : null;
    if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) {
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : null;
    }
    if (typeof v === 'boolean') return v ? 1 : 0;
    return null;
  }

  /** Exact 64-bit integer (BIGINT, `_seq`, Snowflake ids, COUNT). */
  asBigInt(): bigint | null {
    const v = this.#raw;
    if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return BigInt(v.trim());
    if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
    if (typeof v === 'bigint') return v;
    return null;
  }

  asFloat(): number | null {
    const v = this.#raw;
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v.trim() !== '') {
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    }
    return null;
  }

  asBool(): boolean | null {
    const v = this.#raw;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number') return v !== 0;
    if (v === 'true') return true;
    if (v === 'false') return false;
    return null;
  }

  /** DECIMAL as its exact string (`"200.75"`). */
  asDecimal(): string | null {
    const v = this.#raw;
    if (typeof v === 'string' && /^[-+]?\d+(\.\d+)?$/.test(v.trim())) return v.trim();
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    return null;
  }

  asUuid(): string | null {
    const v = this.#raw;
    return typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v) ? v.toLowerCase() : null;
  }

  /**
   * TIMESTAMP/DATETIME (µs since epoch) and DATE (days since epoch) as a `Date` (UTC; the
   * sub-millisecond part is dropped: use {@link asMicros}). Text columns parse ISO 8601.
   */
  asDate(): Date | null {
    const v = this.#raw;
    const t = typeName(this.#type);
    if (typeof v === 'number') {
      if (t === 'Date') return new Date(v * MS_PER_DAY);
      if (t === 'Timestamp' || t === 'DateTime') return new Date(Math.floor(v / MICROS_PER_MS));
      return null;
    }
    if (typeof v === 'string' && t !== 'BigInt') {
      const d = new Date(v);
      return Number.isNaN(d.getTime()) ? null : d;
    }
    return null;
  }

  /** TIMESTAMP/DATETIME/TIME as exact microseconds. */
  asMicros(): bigint | null {
    const v = this.#raw;
    const t = typeName(this.#type);
    if (typeof v === 'number' && Number.isInteger(v) && (t === 'Timestamp' || t === 'DateTime' || t === 'Time')) return BigInt(v);
    return null;
  }

  /** TIME (µs since midnight) as `HH:MM:SS[.ffffff]`. */
  asTimeString(): string | null {
    const v = this.#raw;
    if (typeof v !== 'number' || typeName(this.#type) !== 'Time') return null;
    const micros = ((Math.trunc(v) % 86_400_000_000) + 86_400_000_000) % 86_400_000_000;
    const pad = (n: number) => String(n).padStart(2, '0');
    const secs = Math.floor(micros / 1e6);
    const frac = micros % 1e6;
    const base = `${pad(Math.floor(secs / 3600))}:${pad(Math.floor(secs / 60) % 60)}:${pad(secs % 60)}`;
    return frac ? `${base}.${String(frac).padStart(6, '0')}` : base;
  }

  asBytes(): Uint8Array | null {
    const v = this.#raw;
    if (Array.isArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return Uint8Array.from(v as number[]);
    return null;
  }

  asEmbedding(): number[] | null {
    const v = this.#raw;
    if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
    return null;
  }

  /** FILE columns (and FileRef JSON text anywhere) as a {@link FileRef} that can download itself. */
  asFile(): FileRef | null {
    const data = fileRefData(this.#raw);
    return data ? new FileRef(data, this.#files) : null;
  }

  /** The FILE's download URL in `namespace.table` on `baseUrl` (official signature). */
  asFileUrl(baseUrl: string, namespace: string, table: string): string | null {
    return this.asFile()?.getDownloadUrl(baseUrl, namespace, table) ?? null;
  }

  /** DATE (days since epoch) or `YYYY-MM-DD` text as a UTC midnight `Date`. */
  asDateOnly(): Date | null {
    const v = this.#raw;
    if (typeof v === 'number' && Number.isInteger(v) && typeName(this.#type) !== 'Timestamp' && typeName(this.#type) !== 'DateTime') {
      return new Date(v * MS_PER_DAY);
    }
    if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v)) {
      const d = new Date(`${v}T00:00:00Z`);
      return Number.isNaN(d.getTime()) ? null : d;
    }
    return null;
  }

  isString(): boolean {
    return typeof this.#raw === 'string';
  }

  isNumber(): boolean {
    return typeof this.#raw === 'number';
  }

  isBool(): boolean {
    return typeof this.#raw === 'boolean';
  }

  isObject(): boolean {
    return this.#raw !== null && typeof this.#raw === 'object' && !Array.isArray(this.#raw);
  }

  isArray(): boolean {
    return Array.isArray(this.#raw);
  }

  asSeqId(): SeqId | null {
    return SeqId.tryFrom(this.#raw);
  }

  asObject(): Record<string, unknown> | null {
    const v = this.#raw;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  }

  asArray(): unknown[] | null {
    return Array.isArray(this.#raw) ? this.#raw : null;
  }

  toString(): string {
    return this.asString() ?? 'NULL';
  }
}

/** Official helper: a FileRef from a FILE value (JSON text or object), or null. */
export function parseFileRef(value: unknown): FileRef | null {
  return FileRef.from(value);
}

/** Official helper: FileRefs from FILE values, skipping what is not one. */
export function parseFileRefs(values: unknown[]): FileRef[] {
  return values.map((v) => FileRef.from(v)).filter((f): f is FileRef => f !== null);
}

/** A row: column name to typed cell. */
export type RowData = Record<string, KalamCellValue>;

/** Wraps a plain `{column: value}` object without type information. */
export function wrapRowMap(raw: Record<string, unknown>): RowData {
  const row: RowData = {};
  for (const [k, v] of Object.entries(raw)) row[k] = KalamCellValue.from(v);
  return row;
}
