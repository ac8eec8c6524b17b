// Optimistic writes: an overlay of pending writes over the server's rows. A write shows at
// once; it leaves the overlay when the server's version of its row arrives (the row object
// for its key changed: live() gives changed rows new objects and keeps unchanged ones), so
// the swap shows the same content (no flicker) and a new row once (no duplicate). A write
// that fails leaves at once (rollback). A confirmed write whose change never reaches this
// query (e.g. a WHERE it does not match) leaves after `settleTimeoutMs`.
import { KalamCellValue, keyOfRow, keyOfRowKey, type LiveQueryController, type RowData } from '@kalam-wasm/client';
import type { PendingWrite } from './mutations.js';

export interface Op {
  id: number;
  write: PendingWrite;
  /** Identity of the row written (null: an insert without its key columns). */
  key: string | null;
  /** The server's row for `key` when the write began (undefined: none). */
  base: unknown;
  /** The server's rows array when the write began (keyless inserts). */
  baseRows: unknown[];
  state: 'pending' | 'ok';
  settledAt?: number;
}

let nextId = 1;
export const newOpId = () => nextId++;

/** `ns.table` of live SQL's FROM (lower case, unquoted), to route writes to queries; null if not found. */
export function tableOf(sql: string): string | null {
  const m = /\bfrom\s+((?:"[^"]+"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_][\w$]*))?)/i.exec(sql);
  return m ? normTable(m[1]) : null;
}

export function normTable(name: string): string {
  return name.split('.').map((p) => p.trim().replace(/^"|"$/g, '')).join('.').toLowerCase();
}

function isCell(v: unknown): v is KalamCellValue {
  return v instanceof KalamCellValue;
}

function cellValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  return v;
}

/**
 * A row of typed cells from plain values, typed like `like`'s cells where it has the column.
 * `fill`: columns of `like` missing from `values` become NULL cells (system columns such as
 * `_seq` stay absent: the row has no server version yet).
 */
export function toCells(values: Record<string, unknown>, like?: Record<string, unknown>, fill = false): RowData {
  const row: RowData = {};
  if (fill && like && Object.values(like).some(isCell)) {
    for (const [k, t] of Object.entries(like)) {
      if (!k.startsWith('_') && !(k in values)) row[k] = KalamCellValue.from(null, isCell(t) ? t.dataType : undefined);
    }
  }
  for (const [k, v] of Object.entries(values)) {
    const t = like?.[k];
    row[k] = KalamCellValue.from(cellValue(v), isCell(t) ? t.dataType : undefined);
  }
  return row;
}

/** The key identity of `row` for a controller (its getKey or key columns). */
export function identity(controller: LiveQueryController<unknown>, row: unknown): string | null {
  try {
    return controller.rowKey(row);
  } catch {
    return null;
  }
}

/** Begins tracking `write` against the current rows; null when the write cannot be placed. */
export function makeOp(controller: LiveQueryController<unknown>, rows: unknown[], write: PendingWrite): Op | null {
  const cols = controller.keyColumns();
  let key: string | null;
  if (write.kind === 'insert') key = keyOfRow(write.values ?? {}, cols);
  else key = keyOfRowKey(write.key, cols);
  if (key === null && write.kind !== 'insert') return null;
  const base = key === null ? undefined : rows.find((r) => identity(controller, r) === key);
  if (write.kind !== 'insert' && base === undefined) return null; // not a row of this query
  return { id: newOpId(), write, key, base, baseRows: rows, state: 'pending' };
}

/** Whether every written column of `row` holds the written value (compared as text). */
function holdsWritten(row: unknown, values: Record<string, unknown>): boolean {
  const r = row as Record<string, unknown>;
  const entries = Object.entries(values);
  return entries.length > 0 && entries.every(([k, v]) => {
    const got = isCell(r[k]) ? (r[k] as KalamCellValue).asString() : r[k];
    return got !== undefined && got !== null && v !== null && v !== undefined && String(cellValue(got)) === String(cellValue(v));
  });
}

/**
 * Whether the server's rows have caught up with `op` (or it timed out). A keyless insert has
 * no identity to wait for: it is caught up once it succeeded and the rows changed, or as soon
 * as a row that was not there when it began holds the written values (the live change can
 * arrive before the HTTP answer; showing both would show the row twice).
 */
function reconciled(op: Op, current: unknown, rows: unknown[], now: number, settleTimeoutMs: number): boolean {
  if (op.state === 'ok' && op.settledAt !== undefined && now - op.settledAt >= settleTimeoutMs) return true;
  if (op.key === null) {
    if (rows === op.baseRows) return false;
    if (op.state === 'ok') return true;
    const before = new Set(op.baseRows);
    const written = op.write.props ?? op.write.values ?? {};
    return rows.some((r) => !before.has(r) && (holdsWritten(r, written) || holdsWritten(r, op.write.values ?? {})));
  }
  return current !== op.base;
}

/**
 * The rows to show: server rows with the pending writes applied, plus the ids of the writes
 * the server has caught up with (to drop from the overlay).
 */
export function applyOverlay(controller: LiveQueryController<unknown>, rows: unknown[], ops: Op[], mapRow: ((row: RowData) => unknown) | undefined,
  settleTimeoutMs: number, now: number): { rows: unknown[]; done: number[] } {
  if (ops.length === 0) return { rows, done: [] };
  const index = new Map<string, number>();
  rows.forEach((r, i) => {
    const k = identity(controller, r);
    if (k !== null && !index.has(k)) index.set(k, i);
  });
  let out: unknown[] | null = null;
  const appended: unknown[] = [];
  const removed = new Set<number>();
  const done: number[] = [];
  const appendedByKey = new Map<string, number>();
  for (const op of ops) {
    const at = op.key === null ? undefined : index.get(op.key);
    const current = at === undefined ? undefined : rows[at];
    if (reconciled(op, current, rows, now, settleTimeoutMs)) {
      done.push(op.id);
      continue;
    }
    const w = op.write;
    if (w.kind === 'insert') {
      if (at !== undefined) continue;
      let row: unknown = toCells(w.values ?? {}, rows[0] as Record<string, unknown> | undefined, true);
      if (mapRow) {
        try {
          row = mapRow(row as RowData);
        } catch {
          // shown unmapped rather than not at all
        }
      }
      if (op.key !== null && appendedByKey.has(op.key)) appended[appendedByKey.get(op.key)!] = row;
      else {
        if (op.key !== null) appendedByKey.set(op.key, appended.length);
        appended.push(row);
      }
    } else if (at !== undefined) {
      out ??= rows.slice();
      if (w.kind === 'delete') removed.add(at);
      else {
        const prev = out[at] as Record<string, unknown>;
        const values = w.values ?? {};
        const cells = Object.values(prev).some(isCell);
        out[at] = cells ? { ...prev, ...toCells(values, prev) } : { ...prev, ...(w.props ?? values) };
      }
    }
  }
  let result = out ?? rows;
  if (removed.size) result = result.filter((_, i) => !removed.has(i));
  const extra = appended.filter((r) => r !== undefined);
  if (extra.length) result = (result === rows ? rows.slice() : result).concat(extra);
  return { rows: result === rows && done.length === 0 ? rows : result, done };
}
