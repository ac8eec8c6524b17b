// kTable: Drizzle pg tables named `namespace.table` that also carry KalamDB's table type
// and, on request, its system columns (`_seq`, `_deleted`, `_commit_seq`).
import type { Table } from 'drizzle-orm';
import type { BuildColumns, BuildExtraConfigColumns } from 'drizzle-orm/column-builder';
import { boolean, pgTable, text } from 'drizzle-orm/pg-core';
import type {
  PgBooleanBuilderInitial, PgColumnBuilderBase, PgTableExtraConfig, PgTableExtraConfigValue, PgTableWithColumns, PgTextBuilderInitial,
} from 'drizzle-orm/pg-core';

/** KalamDB's table types (PROTOCOL §9.1; `system` for the server's own tables). */
export type KalamTableType = 'shared' | 'user' | 'stream' | 'system';

/** Columns KalamDB adds to every table: `_seq` (version, BIGINT), `_deleted` (soft delete), `_commit_seq` (internal). */
export type KalamSystemColumnName = '_seq' | '_deleted' | '_commit_seq';

export interface KalamTableOptions {
  /** The table's KalamDB type; `kTable.shared/user/stream/system` set it for you. */
  tableType?: KalamTableType;
  /**
   * Add KalamDB's system columns to the table at run time: `true` adds `_seq` and `_deleted`
   * (`_seq` alone for streams, none for system tables), `'all'` also `_commit_seq`
   * (diagnostics only), or a list. For typed access spread `kSystemColumns()` into the
   * columns instead.
   */
  systemColumns?: boolean | 'all' | readonly KalamSystemColumnName[];
}

/** What kTable records about a table (read it back with {@link getKalamTableConfig}). */
export interface KalamTableConfig {
  /** The name as given: `namespace.table`. */
  qualifiedName: string;
  namespace?: string;
  name: string;
  /** `namespace:table`, the server's table id. */
  tableId: string;
  tableType?: KalamTableType;
  systemColumns: readonly KalamSystemColumnName[];
}

type ColumnMap = Record<string, PgColumnBuilderBase>;
type KalamPgTable<TName extends string, TColumns extends ColumnMap> = PgTableWithColumns<{
  name: TName;
  schema: undefined;
  columns: BuildColumns<TName, TColumns, 'pg'>;
  dialect: 'pg';
}>;
type SeqColumns = { _seq: PgTextBuilderInitial<'_seq', [string, ...string[]]> };
type DeletedColumns = { _deleted: PgBooleanBuilderInitial<'_deleted'> };
type CommitSeqColumns = { _commit_seq: PgTextBuilderInitial<'_commit_seq', [string, ...string[]]> };
type VersionColumns = SeqColumns & DeletedColumns;

/** The overloads kTable adds to `pgTable`'s: a trailing {@link KalamTableOptions}. */
interface KalamTableWithOptions {
  <TName extends string, TColumns extends ColumnMap>(name: TName, columns: TColumns, options: KalamTableOptions): KalamPgTable<TName, TColumns>;
  <TName extends string, TColumns extends ColumnMap>(name: TName, columns: TColumns,
    extraConfig: (self: BuildExtraConfigColumns<TName, TColumns, 'pg'>) => PgTableExtraConfigValue[] | PgTableExtraConfig,
    options: KalamTableOptions): KalamPgTable<TName, TColumns>;
}
type KalamTableKindFactory = typeof pgTable & KalamTableWithOptions;
type KalamTableFactory = KalamTableKindFactory & {
  shared: KalamTableKindFactory;
  user: KalamTableKindFactory;
  stream: KalamTableKindFactory;
  system: KalamTableKindFactory;
};

/** Where a table's {@link KalamTableConfig} is kept (a global symbol: one per realm, whatever the copy of this package). */
export const kalamTableConfigSymbol: unique symbol = Symbol.for('kalamdb.orm.tableConfig') as never;

const VERSION_COLUMNS: readonly KalamSystemColumnName[] = ['_seq', '_deleted'];
const ALL_COLUMNS: readonly KalamSystemColumnName[] = ['_seq', '_deleted', '_commit_seq'];

/** The system columns a table gets for its options (the generator uses the same rule). */
export function systemColumnsFor(tableType: KalamTableType | undefined, requested: KalamTableOptions['systemColumns']): readonly KalamSystemColumnName[] {
  if (!requested) return [];
  if (requested === 'all') return ALL_COLUMNS;
  if (Array.isArray(requested)) return requested;
  if (tableType === 'stream') return ['_seq'];
  if (tableType === 'system') return [];
  return VERSION_COLUMNS;
}

function systemColumnBuilders(names: readonly KalamSystemColumnName[]): ColumnMap {
  const columns: ColumnMap = {};
  // `_seq`/`_commit_seq` are 64-bit: text keeps them exact (SeqId.from(row._seq) for the parts).
  for (const name of names) columns[name] = name === '_deleted' ? boolean(name) : text(name);
  return columns;
}

/**
 * System column builders to spread into a table's columns, typed: `_seq` (text, exact),
 * `_deleted` (boolean), `_commit_seq` (text). Default: `_seq` and `_deleted`.
 */
export function kSystemColumns(): VersionColumns;
export function kSystemColumns(names: readonly ['_seq']): SeqColumns;
export function kSystemColumns(names: readonly ['_seq', '_deleted']): VersionColumns;
export function kSystemColumns(names: readonly ['_seq', '_deleted', '_commit_seq']): VersionColumns & CommitSeqColumns;
export function kSystemColumns(names: readonly KalamSystemColumnName[]): ColumnMap;
export function kSystemColumns(names: readonly KalamSystemColumnName[] = VERSION_COLUMNS): ColumnMap {
  return systemColumnBuilders(names);
}

function isOptions(value: unknown): value is KalamTableOptions {
  return typeof value === 'object' && value !== null && ('tableType' in value || 'systemColumns' in value);
}

function parseName(qualifiedName: string): Pick<KalamTableConfig, 'namespace' | 'name' | 'tableId'> {
  const dot = qualifiedName.indexOf('.');
  if (dot < 0) return { name: qualifiedName, tableId: qualifiedName };
  const namespace = qualifiedName.slice(0, dot);
  const name = qualifiedName.slice(dot + 1);
  return { namespace, name, tableId: `${namespace}:${name}` };
}

function createKTable(defaultType?: KalamTableType) {
  return (name: string, columns: ColumnMap | ((c: unknown) => ColumnMap), third?: unknown, fourth?: KalamTableOptions) => {
    const options: KalamTableOptions = { tableType: defaultType, ...(isOptions(third) ? third : undefined), ...fourth };
    const systemColumns = systemColumnsFor(options.tableType, options.systemColumns);
    // Declared columns win over system columns of the same name.
    const merge = (declared: ColumnMap): ColumnMap => ({ ...systemColumnBuilders(systemColumns.filter((c) => !(c in declared))), ...declared });
    const resolved = typeof columns === 'function' ? (c: unknown) => merge(columns(c)) : merge(columns);
    const table = typeof third === 'function' ? pgTable(name, resolved as never, third as never) : pgTable(name, resolved as never);
    const config: KalamTableConfig = { qualifiedName: name, ...parseName(name), tableType: options.tableType, systemColumns };
    Object.defineProperty(table, kalamTableConfigSymbol, { value: Object.freeze(config), enumerable: false });
    return table;
  };
}

/** The {@link KalamTableConfig} of a table made by kTable, or undefined. */
export function getKalamTableConfig(table: Table): KalamTableConfig | undefined {
  return (table as Table & { [kalamTableConfigSymbol]?: KalamTableConfig })[kalamTableConfigSymbol];
}

/**
 * `pgTable` for KalamDB: `kTable('ns.table', columns, extraConfig?, options?)`, and
 * `kTable.shared/user/stream/system(...)`, which record the table type.
 */
export const kTable: KalamTableFactory = Object.assign(createKTable() as unknown as KalamTableKindFactory, {
  shared: createKTable('shared') as unknown as KalamTableKindFactory,
  user: createKTable('user') as unknown as KalamTableKindFactory,
  stream: createKTable('stream') as unknown as KalamTableKindFactory,
  system: createKTable('system') as unknown as KalamTableKindFactory,
});
