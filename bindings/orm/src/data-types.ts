// KalamDB column types as reported by schemas (`"BigInt"`, `{ "Decimal": {...} }`), by
// SHOW TABLES / DESCRIBE metadata, or written as SQL (`DECIMAL(10, 2)`, `EMBEDDING(384)`).
/** The kind of a KalamDB type: the names of the client's `KalamDataType` (PROTOCOL §1.5). */
export type KalamDataTypeKind = 'Boolean' | 'SmallInt' | 'Int' | 'BigInt' | 'Float' | 'Double' | 'Text' | 'Timestamp' | 'Date'
  | 'DateTime' | 'Time' | 'Json' | 'Bytes' | 'Uuid' | 'File' | 'Embedding' | 'Decimal';

export interface KalamDataTypeDescriptor {
  kind: KalamDataTypeKind;
  /** The SQL spelling: `BIGINT`, `DECIMAL(10, 2)`, `EMBEDDING(384)`. */
  sqlName: string;
  dimension?: number;
  precision?: number;
  scale?: number;
}

// Lowercased, non-alphanumerics removed; SQL names, the wire names and Arrow names.
const KINDS: Record<string, KalamDataTypeKind> = {
  bool: 'Boolean', boolean: 'Boolean',
  smallint: 'SmallInt', int16: 'SmallInt', int2: 'SmallInt',
  int: 'Int', integer: 'Int', int32: 'Int', int4: 'Int',
  bigint: 'BigInt', int64: 'BigInt', int8: 'BigInt',
  float: 'Float', real: 'Float', float32: 'Float', float4: 'Float',
  double: 'Double', doubleprecision: 'Double', float64: 'Double', float8: 'Double',
  text: 'Text', string: 'Text', utf8: 'Text', largeutf8: 'Text', varchar: 'Text', char: 'Text',
  timestamp: 'Timestamp', timestampmicrosecond: 'Timestamp', timestampmillisecond: 'Timestamp', timestampnanosecond: 'Timestamp',
  datetime: 'DateTime',
  date: 'Date', date32: 'Date', date64: 'Date',
  time: 'Time', time64: 'Time', time64microsecond: 'Time', time64nanosecond: 'Time',
  json: 'Json', jsonb: 'Json',
  bytes: 'Bytes', binary: 'Bytes', largebinary: 'Bytes', bytea: 'Bytes', blob: 'Bytes',
  uuid: 'Uuid',
  file: 'File',
};

const positive = (v: unknown): number | undefined => {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : undefined;
};

function sqlName(kind: KalamDataTypeKind): string {
  return kind.toUpperCase();
}

/**
 * Parses a KalamDB type (schema object or text). Unknown names map to `Text`, which is
 * what the server reports for types it cannot map either (PROTOCOL §1.5).
 */
export function parseKalamDataType(input: unknown): KalamDataTypeDescriptor {
  if (typeof input === 'string' && input.trim().startsWith('{')) {
    // The schema form as JSON text (`{"Decimal":{…}}`), as some DESCRIBE outputs give it.
    try {
      input = JSON.parse(input);
    } catch {
      // not JSON: parsed as a name below
    }
  }
  if (input && typeof input === 'object') {
    const o = input as Record<string, unknown>;
    const dimension = positive(o.Embedding);
    if (dimension) return { kind: 'Embedding', dimension, sqlName: `EMBEDDING(${dimension})` };
    const d = o.Decimal as Record<string, unknown> | undefined;
    const precision = positive(d?.precision);
    const scale = Number(d?.scale ?? 0);
    if (precision && Number.isInteger(scale) && scale >= 0) return { kind: 'Decimal', precision, scale, sqlName: `DECIMAL(${precision}, ${scale})` };
  }
  const raw = String(input ?? '').trim();
  const emb = /^(?:embedding|vector)\s*\(\s*(\d+)\s*\)$/i.exec(raw);
  if (emb) return { kind: 'Embedding', dimension: Number(emb[1]), sqlName: `EMBEDDING(${emb[1]})` };
  const dec = /^(?:decimal|numeric|decimal128)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$/i.exec(raw);
  if (dec) {
    const precision = Number(dec[1]);
    const scale = Number(dec[2] ?? 0);
    return { kind: 'Decimal', precision, scale, sqlName: `DECIMAL(${precision}, ${scale})` };
  }
  const kind = KINDS[raw.toLowerCase().replace(/[^a-z0-9]/g, '')] ?? 'Text';
  return { kind, sqlName: sqlName(kind) };
}
