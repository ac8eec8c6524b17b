// generateSchema: a Drizzle `schema.ts` from the server's SHOW TABLES (and DESCRIBE where
// SHOW TABLES lacks column details). Same server state, same text: tables sorted by
// namespace and name, columns by position, imports sorted.
import { KalamError, type KalamDBClient } from '@kalam-wasm/client';
import { parseKalamDataType, type KalamDataTypeDescriptor } from './data-types.js';
import { systemColumnsFor, type KalamSystemColumnName, type KalamTableType } from './ktable.js';

export interface GenerateOptions {
  /** Include the `system` and `dba` namespaces (default: no). */
  includeSystem?: boolean;
  /** Only these namespaces. */
  namespaces?: string[];
  /** Add KalamDB's system columns to the table types (`true`: `_seq`, `_deleted`). */
  includeSystemColumns?: boolean | 'all' | readonly KalamSystemColumnName[];
  /**
   * BIGINT columns as `text()` (`'string'`, the default: exact), `bigint({ mode: 'bigint' })`
   * (exact) or `bigint({ mode: 'number' })` (rounds beyond 2^53).
   */
  bigIntMode?: 'string' | 'bigint' | 'number';
  /** Emit `$inferSelect`/`$inferInsert` type aliases per table (default true). */
  includeTypeAliases?: boolean;
  /** Always DESCRIBE each table instead of only when SHOW TABLES lacks details (some servers allow DESCRIBE to dba/system only). */
  describe?: boolean;
}

type GenerateClient = Pick<KalamDBClient, 'query'>;

interface ColumnInfo {
  name: string;
  type: KalamDataTypeDescriptor;
  nullable: boolean;
  primaryKey: boolean;
  position: number;
  default?: string;
  comment?: string;
}

interface TableInfo {
  namespace: string;
  name: string;
  type?: KalamTableType;
  columns?: ColumnInfo[];
}

const RESERVED = new Set(('await break case catch class const continue debugger default delete do else enum export extends false finally for '
  + 'function if import in instanceof let new null package private protected public return static super switch this throw true try typeof var void while with yield').split(' '));

const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : v === 'true' || v === 'YES' ? true : v === 'false' || v === 'NO' ? false : undefined);

/**
 * `{"FunctionCall":{"name":"NOW","args":[]}}` (SHOW TABLES) or `NOW()` (DESCRIBE's SQL text)
 * → `NOW()`; other defaults → '' (present, so inserts may omit the column; not rendered).
 */
function defaultOf(value: unknown): string | undefined {
  if (value === undefined || value === null || value === 'None') return undefined;
  if (typeof value === 'string') return /^[A-Za-z_][A-Za-z0-9_]*\(\)$/.test(value.trim()) ? value.trim().toUpperCase() : '';
  const call = (value as { FunctionCall?: { name?: unknown; args?: unknown[] } }).FunctionCall;
  if (call && typeof call.name === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(call.name) && !call.args?.length) return `${call.name.toUpperCase()}()`;
  if (typeof value === 'object' && 'None' in (value as object)) return undefined;
  return '';
}

function parseColumn(raw: Record<string, unknown>, index: number): ColumnInfo | null {
  const name = String(raw.column_name ?? raw.name ?? '');
  if (!name || name === '_seq' || name === '_deleted' || name === '_commit_seq') return null;
  const position = Number(raw.ordinal_position ?? raw.column_id ?? index + 1);
  return {
    name,
    type: parseKalamDataType(raw.data_type ?? raw.type),
    nullable: bool(raw.is_nullable ?? raw.nullable) ?? true,
    primaryKey: bool(raw.is_primary_key ?? raw.primary_key) ?? false,
    position: Number.isFinite(position) ? position : index + 1,
    default: defaultOf(raw.default_value ?? raw.column_default),
    comment: typeof raw.column_comment === 'string' && raw.column_comment ? raw.column_comment : undefined,
  };
}

function parseColumns(value: unknown): ColumnInfo[] | undefined {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (!Array.isArray(v)) return undefined;
  // Complete only when every column says its position and key membership.
  if (!v.every((c) => c && typeof c === 'object' && 'is_primary_key' in c && 'ordinal_position' in c)) return undefined;
  return v.map((c, i) => parseColumn(c as Record<string, unknown>, i)).filter((c): c is ColumnInfo => c !== null);
}

function tableType(value: unknown): KalamTableType | undefined {
  const t = String(value ?? '').toLowerCase();
  return t === 'user' || t === 'shared' || t === 'stream' || t === 'system' ? t : undefined;
}

async function describe(client: GenerateClient, t: TableInfo): Promise<ColumnInfo[]> {
  try {
    // `DESCRIBE TABLE`: the real parser wants the word TABLE (plain `DESCRIBE ns.t` is refused).
    const res = await client.query(`DESCRIBE TABLE ${t.namespace}.${t.name}`);
    const rows = res.results[0]?.named_rows ?? [];
    return rows.map((r, i) => parseColumn(r, i)).filter((c): c is ColumnInfo => c !== null);
  } catch (err) {
    const e = KalamError.from(err);
    if (e.code === 'PERMISSION_DENIED' || e.status === 403) {
      throw new KalamError({
        code: e.code, status: e.status,
        message: `DESCRIBE ${t.namespace}.${t.name} needs a role this user lacks (${e.message}); generate the schema as a dba or system user`,
      });
    }
    throw e;
  }
}

const identifier = (raw: string): string => {
  let id = raw.replace(/[^A-Za-z0-9_$]+/g, '_').replace(/_+/g, '_').replace(/^_+|_+$/g, '') || 'table';
  if (/^\d/.test(id)) id = `_${id}`;
  return RESERVED.has(id) ? `_${id}` : id;
};
const pascal = (id: string) => id.split('_').filter(Boolean).map((p) => p[0]!.toUpperCase() + p.slice(1)).join('') || 'Table';
const str = (s: string) => JSON.stringify(s);
const prop = (s: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s) ? s : str(s));

function builder(c: ColumnInfo, bigIntMode: GenerateOptions['bigIntMode'], pg: Set<string>, orm: Set<string>): string {
  const use = (set: Set<string>, name: string, args = '') => {
    set.add(name);
    return `${name}(${str(c.name)}${args})`;
  };
  switch (c.type.kind) {
    case 'Boolean': return use(pg, 'boolean');
    case 'SmallInt': return use(pg, 'smallint');
    case 'Int': return use(pg, 'integer');
    case 'BigInt': return !bigIntMode || bigIntMode === 'string' ? use(pg, 'text') : use(pg, 'bigint', `, { mode: ${str(bigIntMode)} }`);
    case 'Float': return use(pg, 'real');
    case 'Double': return use(pg, 'doublePrecision');
    case 'Decimal': return use(pg, 'numeric', `, { precision: ${c.type.precision}, scale: ${c.type.scale} }`);
    case 'Timestamp':
    case 'DateTime': return use(pg, 'timestamp', ", { mode: 'date' }");
    case 'Date': return use(pg, 'date', ", { mode: 'date' }");
    case 'Time': return use(pg, 'time');
    case 'Json': return use(pg, 'jsonb');
    case 'Uuid': return use(pg, 'uuid');
    case 'Bytes': return use(orm, 'bytes');
    case 'File': return use(orm, 'file');
    case 'Embedding': return use(orm, 'embedding', `, ${c.type.dimension}`);
    default: return use(pg, 'text');
  }
}

/**
 * The text of a Drizzle schema module for the server's tables: one `kTable.<type>` per
 * table with every column typed, primary keys (composite ones as `primaryKey({ columns })`)
 * and NOT NULL kept, defaults marked (so inserts may omit them), plus `<name>Config` and
 * `$inferSelect`/`$inferInsert` aliases. Deterministic for the same server state.
 */
export async function generateSchema(client: GenerateClient, options: GenerateOptions = {}): Promise<string> {
  const res = await client.query('SHOW TABLES');
  const wanted = new Set((options.namespaces ?? []).map((n) => n.trim()).filter(Boolean));
  const tables: TableInfo[] = (res.results[0]?.named_rows ?? []).map((r) => ({
    namespace: String(r.namespace_id ?? r.namespace ?? 'default'),
    name: String(r.table_name ?? r.name ?? ''),
    type: tableType(r.table_type),
    columns: parseColumns(r.columns),
  })).filter((t) => t.name && (wanted.size ? wanted.has(t.namespace) : options.includeSystem || (t.namespace !== 'system' && t.namespace !== 'dba')));
  tables.sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.namespace < b.namespace ? -1 : 1));

  const pg = new Set<string>();
  const orm = new Set<string>(['kTable', 'getKalamTableConfig']);
  let needsSql = false;
  const used = new Map<string, number>();
  const blocks: string[] = [];
  for (const t of tables) {
    const columns = (options.describe || !t.columns ? await describe(client, t) : t.columns).sort((a, b) => a.position - b.position);
    const base = identifier(`${t.namespace}_${t.name}`);
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    const v = n === 1 ? base : `${base}_${n}`;
    const pks = columns.filter((c) => c.primaryKey);
    const lines = [`export const ${v} = kTable${t.type ? `.${t.type}` : ''}(${str(`${t.namespace}.${t.name}`)}, {`];
    const system = systemColumnsFor(t.type, options.includeSystemColumns);
    if (system.length) {
      orm.add('kSystemColumns');
      lines.push(`  ...kSystemColumns(${JSON.stringify(system)} as const),`);
    }
    for (const c of columns) {
      let def = builder(c, options.bigIntMode, pg, orm);
      if (c.default !== undefined) {
        needsSql = true;
        def += `.default(sql\`${c.default}\`)`;
      }
      if (c.primaryKey && pks.length === 1) def += '.primaryKey()';
      else if (!c.nullable || c.primaryKey) def += '.notNull()';
      if (c.comment) lines.push(`  /** ${c.comment.replaceAll('*/', '* /')} */`);
      lines.push(`  ${prop(c.name)}: ${def},`);
    }
    if (pks.length > 1) {
      pg.add('primaryKey');
      lines.push(`}, (t) => [primaryKey({ columns: [${pks.map((c) => `t.${prop(c.name).startsWith('"') ? `[${str(c.name)}]` : c.name}`).join(', ').replaceAll('t.[', 't[')}] })]);`);
    } else {
      lines.push('});');
    }
    lines.push(`export const ${v}Config = getKalamTableConfig(${v})!;`);
    if (options.includeTypeAliases !== false) {
      lines.push(`export type ${pascal(v)} = typeof ${v}.$inferSelect;`, `export type New${pascal(v)} = typeof ${v}.$inferInsert;`);
    }
    blocks.push(lines.join('\n'));
  }
  const imports = ['// Generated by kalamdb-orm (@kalam-wasm/orm) from SHOW TABLES. Regenerate after schema changes.'];
  imports.push(`import { ${[...orm].sort().join(', ')} } from '@kalam-wasm/orm';`);
  if (pg.size) imports.push(`import { ${[...pg].sort().join(', ')} } from 'drizzle-orm/pg-core';`);
  if (needsSql) imports.push("import { sql } from 'drizzle-orm';");
  return `${imports.join('\n')}\n\n${blocks.join('\n\n')}\n`;
}
