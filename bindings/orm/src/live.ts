// Live tables: the client's `live()` / `liveEvents()` on a Drizzle table, rows typed as
// the table's `$inferSelect` and converted like query results.
import { Column, getTableColumns, getTableName, is, sql, SQL, type InferSelectModel, type SQLWrapper, type Table } from 'drizzle-orm';
import { KalamError, type LiveEvent, type LiveEventsOptions, type LiveOptions, type LiveRowsChange, type RowData, type SchemaField, type Unsubscribe } from '@kalam-wasm/client';
import type { KalamQueryClient } from './driver.js';
import { compile } from './execute.js';
import { cellDriverValue, toDriverValue } from './values.js';

/** An order for live rows: a column, `asc(column)` or `desc(column)`. */
export type LiveOrder = Column | SQL;

export interface LiveTableOptions<TRow> extends Omit<LiveOptions<TRow>, 'mapRow'> {
  /** A Drizzle filter (`eq(t.room, 'main')`), sent as the subscription's WHERE. */
  where?: SQLWrapper;
  /**
   * Order of `rows` in each callback: written into the live SQL as `ORDER BY`, which the
   * client strips before subscribing and applies in its Rust ordered window (a change costs
   * O(log n); NULLs last ascending, first descending). With `limit`, the window is the
   * first `limit` rows of that order (`ORDER BY … LIMIT n`). Without it, rows keep the
   * client's order: snapshot in `_seq` order, then new rows appended.
   */
  orderBy?: LiveOrder | LiveOrder[];
}

export type LiveTableCallback<TRow> = (rows: TRow[], change: LiveRowsChange<TRow>) => void;

type LiveSource = KalamQueryClient | { readonly $kalamClient: KalamQueryClient };

export type TableSubscriptionEvent<TTable extends Table> = LiveEvent & {
  rows?: InferSelectModel<TTable>[];
  old_values?: InferSelectModel<TTable>[];
};

export interface SubscribeTableOptions extends LiveEventsOptions {
  where?: SQLWrapper;
}

function clientOf(source: LiveSource): KalamQueryClient {
  const client = '$kalamClient' in source ? source.$kalamClient : source;
  if (typeof client?.live !== 'function' || typeof client.liveEvents !== 'function') {
    throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'live tables need a @kalam-wasm/client client (or a kalamDriver database made with one)' });
  }
  return client;
}

function tableRef(table: Table): { namespace: string; table: string } {
  const name = getTableName(table);
  const dot = name.indexOf('.');
  if (dot < 1) throw new KalamError({ code: 'INVALID_ARGUMENT', message: `live tables need a namespace-qualified table ('ns.table'), got '${name}'` });
  return { namespace: name.slice(0, dot).toLowerCase(), table: name.slice(dot + 1).toLowerCase() };
}

/**
 * `SELECT * FROM "ns"."t" [WHERE …] [ORDER BY … [LIMIT n]]` with the filter's values written
 * in. The ORDER BY is compiled as Drizzle writes it (`"col" desc`); its shape (columns of the
 * table, ASC/DESC, NULLS FIRST/LAST) is checked by the core, which refuses anything else.
 */
function liveSql(table: Table, where?: SQLWrapper, orderBy?: LiveOrder | LiveOrder[], limit?: number): string {
  const ref = tableRef(table);
  const from = `SELECT * FROM "${ref.namespace}"."${ref.table}"`;
  let text = where ? `${from} WHERE ${compile(where, true, true).sql}` : from;
  if (orderBy !== undefined) {
    const keys = (Array.isArray(orderBy) ? orderBy : [orderBy]).map((o) => (is(o, Column) ? sql`${o}` : o));
    if (keys.length === 0 || keys.some((k) => !is(k, SQL))) {
      throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'liveTable orderBy: give columns of this table, asc(column) or desc(column)' });
    }
    text += ` ORDER BY ${compile(sql.join(keys as SQL[], sql`, `), true, true).sql}`;
    if (limit !== undefined) text += ` LIMIT ${limitValue(limit)}`;
  }
  return text;
}

function limitValue(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new KalamError({ code: 'INVALID_ARGUMENT', message: `liveTable limit: a non-negative integer, got ${String(limit)}` });
  return limit;
}

type Mapper = (value: (name: string) => unknown) => Record<string, unknown>;

function mapper(table: Table): Mapper {
  const columns = Object.entries(getTableColumns(table));
  return (value) => {
    const row: Record<string, unknown> = {};
    for (const [key, col] of columns) {
      const v = value(col.name);
      row[key] = v === null || v === undefined ? null : col.mapFromDriverValue(v);
    }
    return row;
  };
}

/**
 * Live rows of a Drizzle table, typed as `$inferSelect`: `onRows(rows, change)` once per
 * applied batch (first the complete snapshot), as the client's `live()`. Both argument
 * orders work: `(source, table, onRows, options)` (official) and `(source, table, options, onRows)`.
 * `limit` keeps the newest N rows, or with `orderBy` the first N of that order; `orderBy`
 * becomes the live SQL's ORDER BY, applied by the core's ordered window (never sorted here).
 */
export function liveTable<TTable extends Table>(source: LiveSource, table: TTable,
  onRows: LiveTableCallback<InferSelectModel<TTable>>, options?: LiveTableOptions<InferSelectModel<TTable>>): Promise<Unsubscribe>;
export function liveTable<TTable extends Table>(source: LiveSource, table: TTable,
  options: LiveTableOptions<InferSelectModel<TTable>>, onRows: LiveTableCallback<InferSelectModel<TTable>>): Promise<Unsubscribe>;
export async function liveTable<TTable extends Table>(source: LiveSource, table: TTable,
  a: LiveTableCallback<InferSelectModel<TTable>> | LiveTableOptions<InferSelectModel<TTable>>,
  b?: LiveTableCallback<InferSelectModel<TTable>> | LiveTableOptions<InferSelectModel<TTable>>): Promise<Unsubscribe> {
  type Row = InferSelectModel<TTable>;
  const onRows = (typeof a === 'function' ? a : b) as LiveTableCallback<Row> | undefined;
  const options = ((typeof a === 'function' ? b : a) ?? {}) as LiveTableOptions<Row>;
  if (typeof onRows !== 'function') throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'liveTable: onRows must be a function' });
  const client = clientOf(source);
  const { where, orderBy, limit, ...liveOptions } = options;
  const ref = tableRef(table);
  const map = mapper(table);
  const mapRow = (row: RowData) => map((name) => cellDriverValue(row[name], ref)) as Row;
  // With an order, the limit is the SQL's (top N of the order); the client's limit option
  // (newest N) cannot be combined with a live ORDER BY.
  const text = liveSql(table, where, orderBy, orderBy === undefined ? undefined : limit);
  return client.live!<Row>(text, onRows, { ...liveOptions, ...(orderBy === undefined && limit !== undefined ? { limit } : {}), mapRow });
}

/**
 * The raw subscription events of a Drizzle table (`subscription_ack`,
 * `initial_data_batch`, `change`, `error`) with `rows`/`old_values` typed as `$inferSelect`
 * (official `subscribeTable`), on the client's `liveEvents()`.
 */
export async function subscribeTable<TTable extends Table>(source: LiveSource, table: TTable,
  callback: (event: TableSubscriptionEvent<TTable>) => void, options: SubscribeTableOptions = {}): Promise<Unsubscribe> {
  const client = clientOf(source);
  const { where, ...eventOptions } = options;
  const map = mapper(table);
  let types = new Map<string, SchemaField['data_type']>();
  const mapRows = (rows: Record<string, unknown>[] | undefined) =>
    rows?.map((row) => map((name) => toDriverValue(row[name], types.get(name))) as InferSelectModel<TTable>);
  return client.liveEvents!(liveSql(table, where), (event) => {
    if (event.type === 'subscription_ack') types = new Map(event.schema.map((f) => [f.name, f.data_type]));
    const typed = { ...event } as TableSubscriptionEvent<TTable>;
    if ('rows' in event && event.rows) typed.rows = mapRows(event.rows);
    if ('old_values' in event && event.old_values) typed.old_values = mapRows(event.old_values);
    callback(typed);
  }, eventOptions);
}
