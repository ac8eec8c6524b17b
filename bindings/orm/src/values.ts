// Cell values as the client decodes them → the driver values Drizzle's pg columns parse.
// The client gives TIMESTAMP/DATETIME as µs, DATE as days and TIME as µs since midnight
// (numbers), JSON parsed, BIGINT/DECIMAL as exact strings; Drizzle's pg columns expect
// Postgres' text forms for the temporal types and JSON text.
import type { KalamCellValue, KalamDataType } from '@kalam-wasm/client';

const MS_PER_DAY = 86_400_000;

function kind(type: KalamDataType | undefined): string | undefined {
  return typeof type === 'object' && type !== null ? Object.keys(type)[0] : type;
}

/** µs since the epoch → `YYYY-MM-DDTHH:MM:SS.ffffff` (UTC, no zone: Drizzle's `timestamp` adds `+0000`). */
function timestampText(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const sub = micros - ms * 1000;
  const text = new Date(ms).toISOString().slice(0, -1);
  return sub ? `${text}${String(sub).padStart(3, '0')}` : text;
}

/** µs since midnight → `HH:MM:SS[.ffffff]`. */
function timeText(micros: number): string {
  const us = ((Math.trunc(micros) % 86_400_000_000) + 86_400_000_000) % 86_400_000_000;
  const secs = Math.floor(us / 1e6);
  const pad = (n: number) => String(n).padStart(2, '0');
  const base = `${pad(Math.floor(secs / 3600))}:${pad(Math.floor(secs / 60) % 60)}:${pad(secs % 60)}`;
  return us % 1e6 ? `${base}.${String(us % 1e6).padStart(6, '0')}` : base;
}

/** One decoded value of a column of `type` as Drizzle's driver value. */
export function toDriverValue(value: unknown, type: KalamDataType | undefined): unknown {
  if (value === null || value === undefined) return null;
  switch (kind(type)) {
    case 'Timestamp':
    case 'DateTime':
      return typeof value === 'number' ? timestampText(value) : value;
    case 'Date':
      return typeof value === 'number' ? new Date(value * MS_PER_DAY).toISOString().slice(0, 10) : value;
    case 'Time':
      return typeof value === 'number' ? timeText(value) : value;
    case 'Json':
      // Text again, so that Drizzle's json/jsonb parse exactly what was stored (a JSON
      // string "123" stays a string).
      return JSON.stringify(value);
    default:
      return value;
  }
}

/** A typed cell as Drizzle's driver value; FILE cells become downloadable FileRefs located in `table`. */
export function cellDriverValue(cell: KalamCellValue | undefined, table?: { namespace: string; table: string }): unknown {
  if (!cell || cell.isNull()) return null;
  if (kind(cell.dataType) === 'File') {
    const ref = cell.asFile();
    return ref && table && !ref.download_path ? ref.forTable(table.namespace, table.table) : ref;
  }
  return toDriverValue(cell.toJson(), cell.dataType);
}

const codePoints = (a: string, b: string): number => {
  // UTF-8 byte order (the server's) is code point order, not UTF-16 unit order.
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d) return d;
  }
  return x.length - y.length;
};

/**
 * How the server orders two decoded values of a column of `type`, or undefined for types
 * whose order this client does not reproduce (JSON, BYTES, EMBEDDING, FILE, UUID).
 */
export function comparatorFor(type: KalamDataType | undefined): ((a: unknown, b: unknown) => number) | undefined {
  switch (kind(type)) {
    case 'BigInt':
      return (a, b) => { const x = BigInt(a as string); const y = BigInt(b as string); return x < y ? -1 : x > y ? 1 : 0; };
    case 'Decimal': {
      // Exact strings with the column's scale: compare as scaled integers.
      const scaled = (v: unknown) => BigInt(String(v).replace('.', ''));
      return (a, b) => { const x = scaled(a); const y = scaled(b); return x < y ? -1 : x > y ? 1 : 0; };
    }
    case 'Boolean': case 'SmallInt': case 'Int': case 'Float': case 'Double': case 'Timestamp': case 'DateTime': case 'Date': case 'Time':
      return (a, b) => Number(a) - Number(b);
    case 'Text':
      return (a, b) => codePoints(String(a), String(b));
    default:
      return undefined;
  }
}

/** Parameters: `date` columns take `YYYY-MM-DD` (Drizzle sends a full ISO timestamp for `mode: 'date'`). */
export function toParam(value: unknown, typing: string | undefined): unknown {
  if (value === undefined) return null;
  if (typing === 'date' && typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value)) return value.slice(0, 10);
  return value;
}
