// KalamDB column types Drizzle's pg-core has no builder for: FILE, BYTES, EMBEDDING(n).
import { sql } from 'drizzle-orm';
import { customType } from 'drizzle-orm/pg-core';
import { FileRef, KalamError, type FileRefData } from '@kalam-wasm/client';

/**
 * A FILE column: reads as a {@link FileRef} (downloadable with the client's credentials,
 * already located in its table for single-table selects); writes a FileRef (or its data)
 * as the FileRef JSON the server stores. Upload new files with `client.queryWithFiles`.
 */
export const file = customType<{ data: FileRef; driverData: unknown }>({
  dataType: () => 'file',
  fromDriver: (value) => (value instanceof FileRef ? value : FileRef.from(value)) as FileRef,
  toDriver: (value: FileRef | FileRefData) => JSON.stringify({
    id: value.id, sub: value.sub, name: value.name, size: value.size, mime: value.mime, sha256: value.sha256,
    ...(value.shard !== undefined && value.shard !== null ? { shard: value.shard } : {}),
  }),
});

function numbers(value: unknown): number[] | null {
  const v = typeof value === 'string' ? safeParse(value) : value;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) return null;
  return v as number[];
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * A BYTES column as `Uint8Array`. Written as an `X'…'` hex literal: the form the server
 * accepts for BYTES (array parameters are refused, and text would be stored as its UTF-8).
 */
export const bytes = customType<{ data: Uint8Array; driverData: unknown }>({
  dataType: () => 'bytes',
  fromDriver: (value) => (value instanceof Uint8Array ? value : Uint8Array.from(numbers(value) ?? [])),
  toDriver: (value) => {
    if (!(value instanceof Uint8Array)) throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'bytes(): the value must be a Uint8Array' });
    let hex = '';
    for (const b of value) hex += b.toString(16).padStart(2, '0');
    return sql.raw(`X'${hex}'`); // hex digits only: nothing to escape
  },
});

const embeddingColumn = customType<{ data: number[]; driverData: unknown; config: { dimensions: number }; configRequired: true }>({
  dataType: (config) => `embedding(${config.dimensions})`,
  fromDriver: (value) => numbers(value) ?? [],
  // The server takes an embedding as the JSON text of its numbers.
  toDriver: (value) => JSON.stringify(value),
});

/** An EMBEDDING(dimensions) column (1..8192) as `number[]` (float32 on the server). */
export function embedding<TName extends string>(name: TName, dimensions: number) {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 8192) {
    throw new KalamError({ code: 'INVALID_ARGUMENT', message: `embedding(): dimensions must be an integer in 1..8192, got ${dimensions}` });
  }
  return embeddingColumn(name, { dimensions });
}
