// Live tables: the client's `live()` / `liveEvents()` on a Drizzle table, rows typed as
// the table's `$inferSelect` and converted like query results.
import { Column, getTableColumns, getTableName, is, SQL, type InferSelectModel, type SQLWrapper, type Table } from 'drizzle-orm';
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
   * Order of `rows` in each callback, applied here (live SQL has no ORDER BY). Without it,
   * rows keep the client's order: snapshot in `_seq` order, then new rows appended.
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

/** `SELECT * FROM "ns"."t" [WHERE …]` with the filter's values written in. */
function liveSql(table: Table, where?: SQLWrapper): string {
  const ref = tableRef(table);
  const from = `SELECT * FROM "${ref.namespace}"."${ref.table}"`;
  return where ? `${from} WHERE ${compile(where, true, true).sql}` : from;
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

function comparator(table: Table, orderBy: LiveOrder | LiveOrder[]): (a: Record<string, unknown>, b: Record<string, unknown>) => number {
  const keys = new Map(Object.entries(getTableColumns(table)).map(([key, col]) => [col as Column, key]));
  const specs = (Array.isArray(orderBy) ? orderBy : [orderBy]).map((o) => {
    const column = is(o, Column) ? o : (o as SQL).queryChunks.find((c): c is Column => is(c, Column));
    const key = column && keys.get(column);
    if (!key) throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'liveTable orderBy: give columns of this table, asc(column) or desc(column)' });
    const desc = !is(o, Column) && (o as SQL).queryChunks.some((c) => !is(c, Column) && /\bdesc\b/i.test(String((c as { value?: unknown }).value ?? '')));
    return { key, dir: desc ? -1 : 1 };
  });
  const value = (v: unknown) => (v instanceof Date ? v.getTime() : v);
  return (a, b) => {
    for (const { key, dir } of specs) {
      const x = value(a[key]);
      const y = value(b[key]);
      if (x === y) continue;
      // NULLS LAST ascending, first descending, as in SQL.
      if (x === null || x === undefined) return dir;
      if (y === null || y === undefined) return -dir;
      return ((x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0) * dir;
    }
    return 0;
  };
}

/**
 * Live rows of a Drizzle table, typed as `$inferSelect`: `onRows(rows, change)` once per
 * applied batch (first the complete snapshot), as the client's `live()`. Both argument
 * orders work: `(source, table, onRows, options)` (official) and `(source, table, options, onRows)`.
 * `limit` keeps the newest N rows; `orderBy` sorts each callback's rows.
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
  const { where, orderBy, ...liveOptions } = options;
  const ref = tableRef(table);
  const map = mapper(table);
  const compare = orderBy === undefined ? undefined : comparator(table, orderBy);
  const mapRow = (row: RowData) => map((name) => cellDriverValue(row[name], ref)) as Row;
  return client.live!<Row>(liveSql(table, where), compare ? (rows, change) => onRows(rows.sort(compare), change) : onRows, { ...liveOptions, mapRow });
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
