import type { ReactNode } from 'react';
import type { KalamDBClient, KalamError, LiveGetKey, LiveQuerySnapshot, RowData } from '@kalam-wasm/client';

/** A row key: a value of the `id` column (text or number), or `{ column: value }` for other or composite keys. */
export type RowKey = string | number | bigint | Record<string, unknown>;

/** A write target: `'namespace.table'`, or a `kTable` from @kalam-wasm/orm (Drizzle). */
export type MutationTarget = string | object;

export interface MutationState {
  /** True while at least one insert is in flight (a counter underneath: overlapping inserts do not race). */
  inserting: boolean;
  /** How many inserts are in flight. */
  pendingInserts: number;
  /** Keys with an update in flight. */
  updating: Set<RowKey>;
  /** Keys with a delete in flight. */
  deleting: Set<RowKey>;
  /** The last failed write's error (until `clearError()` or the next write). */
  error?: KalamError;
}

export interface InsertAction {
  (table: MutationTarget, row: Record<string, unknown>): Promise<void>;
  (table: object): { values: (row: Record<string, unknown>) => Promise<void> };
}
export interface UpdateAction {
  (table: MutationTarget, key: RowKey, patch: Record<string, unknown>): Promise<void>;
  (table: object, key: RowKey): { set: (patch: Record<string, unknown>) => Promise<void> };
}
export type RemoveAction = (table: MutationTarget, key: RowKey) => Promise<void>;

export interface MutationActions {
  insert: InsertAction;
  update: UpdateAction;
  remove: RemoveAction;
  /** Clears `error`; writes in flight stay tracked. */
  clearError: () => void;
}

export type LiveQueryState<TRow> = LiveQuerySnapshot<TRow> & MutationState;

export interface SingleLiveQueryContext<TRow = RowData> extends MutationActions {
  rows: TRow[];
  state: LiveQueryState<TRow>;
  refetch: () => Promise<void>;
}

export interface RawSqlLiveQueryOptions<TRow = RowData> {
  /** Live SQL (`SELECT ... FROM ns.table [WHERE ...]`). A change of the text resubscribes. */
  query: string;
  /** Keep at most this many rows (the newest keys). */
  limit?: number;
  /** Row identity: a column, columns (used by the core as key columns) or a function. */
  getKey?: LiveGetKey<TRow>;
  /** Map each row once when it enters or changes. Changing the function does not resubscribe. */
  mapRow?: (row: RowData) => TRow;
  /** Values that resubscribe when they change (like an effect's deps). */
  deps?: readonly unknown[];
  client?: KalamDBClient;
  /** Show writes made through this context in `rows` before the server confirms them. Default true. */
  optimistic?: boolean;
  /** How long a confirmed write waits for its live change before the overlay is dropped. Default 3000 ms. */
  settleTimeoutMs?: number;
  batchSize?: number;
  lastRows?: number;
}

/** One Drizzle order: a column, `asc(column)` or `desc(column)` (an object of drizzle-orm). */
export type DrizzleOrder = object;

/** The row type of a Drizzle table (`$inferSelect`). */
export type InferTableRow<TTable> = TTable extends { $inferSelect: infer R } ? R : Record<string, unknown>;

/**
 * Drizzle mode (needs `import '@kalam-wasm/react/drizzle'` once and @kalam-wasm/orm): the
 * table's rows typed as `$inferSelect`, filtered by `where`, ordered by `orderBy`. Both are
 * compiled to live SQL on every render; a different SQL text resubscribes (inline lambdas are fine).
 */
export interface DrizzleLiveQueryOptions<TTable extends object = object, TRow = InferTableRow<TTable>>
  extends Omit<RawSqlLiveQueryOptions<TRow>, 'query' | 'mapRow'> {
  table: TTable;
  where?: (table: TTable) => unknown;
  /**
   * A column, `asc(col)`/`desc(col)`, an array of them, or a function of the table returning
   * those: compiled to the live SQL's `ORDER BY` (with `limit`: `ORDER BY … LIMIT n`, the first
   * n rows of the order), applied by the client's Rust ordered window, never sorted in JS.
   */
  orderBy?: DrizzleOrder | readonly DrizzleOrder[] | ((table: TTable) => DrizzleOrder | readonly DrizzleOrder[]);
  query?: undefined;
}

export type UseLiveQueryOptions<TRow = RowData, TSelected = SingleLiveQueryContext<TRow>> = RawSqlLiveQueryOptions<TRow> & {
  select?: (context: SingleLiveQueryContext<TRow>) => TSelected;
};

export type LiveQueryProps<TRow = RowData> = (RawSqlLiveQueryOptions<TRow> | DrizzleLiveQueryOptions<object, TRow>) & {
  children: (context: SingleLiveQueryContext<TRow>) => ReactNode;
};

export type LiveQueryDefinition<TRow = RowData> =
  | (Omit<RawSqlLiveQueryOptions<TRow>, 'client' | 'deps'> & { deps?: readonly unknown[] })
  | Omit<DrizzleLiveQueryOptions<object, TRow>, 'client'>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LiveQueriesDefinition = Record<string, LiveQueryDefinition<any>>;
export type InferLiveQueryRow<D> = D extends { table: infer T } ? InferTableRow<T> : D extends { mapRow: (row: RowData) => infer R } ? R : RowData;

export interface MultiLiveQueryAggregateState extends MutationState {
  loading: boolean;
  connected: boolean;
}

export type MultiLiveQueryContext<Q extends LiveQueriesDefinition> = {
  [K in keyof Q]: SingleLiveQueryContext<InferLiveQueryRow<Q[K]>>;
} & MutationActions & {
  state: MultiLiveQueryAggregateState;
  refetch: () => Promise<void>;
};

export interface UseLiveQueriesOptions<Q extends LiveQueriesDefinition, TSelected = MultiLiveQueryContext<Q>> {
  client?: KalamDBClient;
  queries: Q;
  deps?: readonly unknown[];
  select?: (context: MultiLiveQueryContext<Q>) => TSelected;
}

export interface LiveQueriesProps<Q extends LiveQueriesDefinition> {
  client?: KalamDBClient;
  queries: Q;
  deps?: readonly unknown[];
  children: (context: MultiLiveQueryContext<Q>) => ReactNode;
}

export type LiveSelectionSelector<TContext, TSelected> = (context: TContext) => TSelected;
