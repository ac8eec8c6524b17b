// Cell values as the client decodes them → the driver values Drizzle's pg columns parse.
// The client gives TIMESTAMP/DATETIME as µs, DATE as days and TIME as µs since midnight
// (numbers), JSON parsed, BIGINT/DECIMAL as exact strings; Drizzle's pg columns expect
// Postgres' text forms for the temporal types and JSON text. The conversions are the
// client's cell accessors.
import { KalamCellValue, type KalamDataType } from '@kalam-wasm/client';

function kind(type: KalamDataType | undefined): string | undefined {
  return typeof type === 'object' && type !== null ? Object.keys(type)[0] : type;
}

/** One decoded value of a column of `type` as Drizzle's driver value. */
export function toDriverValue(value: unknown, type: KalamDataType | undefined): unknown {
  if (value === null || value === undefined) return null;
  const k = kind(type);
  if (typeof value === 'number' && (k === 'Timestamp' || k === 'DateTime' || k === 'Date' || k === 'Time')) {
    const cell = KalamCellValue.from(value, type);
    if (k === 'Time') return cell.asTimeString();
    if (k === 'Date') return cell.asDateOnly()?.toISOString().slice(0, 10) ?? value;
    // `YYYY-MM-DDTHH:MM:SS.mmm[uuu]`, UTC without a zone (Drizzle's `timestamp` appends
    // `+0000`); the digits below a millisecond are kept for `mode: 'string'`.
    const text = cell.asDate()?.toISOString().slice(0, -1);
    const sub = Number((cell.asMicros() ?? 0n) % 1000n + 1000n) % 1000;
    return text === undefined ? value : sub ? `${text}${String(sub).padStart(3, '0')}` : text;
  }
  // JSON as text again, so that Drizzle's json/jsonb parse exactly what was stored (a JSON
  // string "123" stays a string).
  return k === 'Json' ? JSON.stringify(value) : value;
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
