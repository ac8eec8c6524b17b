// kalamDriver: Drizzle's pg-proxy driver running every query through the client's
// `query()` (or `executeAsUser()`), with bound parameters and KalamDB's SQL rewrites.
import { drizzle, type PgRemoteDatabase, type RemoteCallback } from 'drizzle-orm/pg-proxy';
import type { DrizzleConfig } from 'drizzle-orm';
import { KalamError, rowsOf, type KalamDBClient, type QueryResponse, type SchemaField, type SqlValue } from '@kalam-wasm/client';
import { prepareSql, type OrderKey } from './sql.js';
import { cellDriverValue, comparatorFor, toDriverValue, toParam } from './values.js';

/** What the driver needs of a client: `query`, and `executeAsUser` for `asUser`. */
export type KalamQueryClient = Pick<KalamDBClient, 'query'> & Partial<Pick<KalamDBClient, 'executeAsUser' | 'live' | 'liveEvents'>>;

export interface KalamDriverOptions {
  /**
   * Run every statement as this user (`EXECUTE AS USER`): USER tables then read and write
   * that user's rows. Needs a service, dba or system role.
   */
  asUser?: string;
}

/**
 * A Drizzle database (`db.select()…`) that is also the pg-proxy callback
 * (`drizzle(kalamDriver(client))` works too, as with `@kalamdb/orm`).
 */
export type KalamDatabase<TSchema extends Record<string, unknown> = Record<string, never>> = PgRemoteDatabase<TSchema> & RemoteCallback & {
  /** The client the queries run through. */
  readonly $kalamClient: KalamQueryClient;
};

/** Runs one Drizzle statement; `all` gives positional rows in select order. */
async function runStatement(client: KalamQueryClient, sql: string, params: unknown[], method: 'all' | 'execute',
  typings: string[] | undefined, asUser?: string): Promise<{ rows: unknown[] }> {
  const prepared = prepareSql(sql, false, undefined, method === 'all');
  const values = params.map((p, i) => toParam(p, typings?.[i])) as SqlValue[];
  const send = async (text: string, bound: SqlValue[]): Promise<QueryResponse> => {
    try {
      if (asUser === undefined) return await client.query(text, bound);
      if (client.executeAsUser) return await client.executeAsUser(text, asUser, bound);
      throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'kalamDriver: asUser needs a client with executeAsUser()' });
    } catch (err) {
      throw KalamError.from(err);
    }
  };
  if (prepared.statements) {
    // One INSERT per column set, in order (see prepareSql).
    for (const s of prepared.statements) await send(s.sql, s.params.map((i) => values[i]!));
    return { rows: [] };
  }
  const response = await send(prepared.sql, values);
  const result = response.results.find((r) => r.rows) ?? response.results[0];
  if (method === 'execute') return { rows: result?.named_rows ?? [] };
  const schema = result?.schema ?? [];
  let rows = result?.rows ?? [];
  if (prepared.order) restoreOrder(rows, schema, prepared.order, prepared.appendedColumns ?? 0);
  if (prepared.appendedColumns) rows = rows.map((row) => row.slice(0, schema.length - prepared.appendedColumns!));
  if (!schema.some((f) => f.data_type === 'File')) {
    return { rows: rows.map((row) => row.map((v, i) => toDriverValue(v, schema[i]?.data_type))) };
  }
  // FILE cells need the client's download context: take them from its typed rows.
  const cells = rowsOf(response, result);
  return {
    rows: rows.map((row, r) => row.map((v, i) => {
      const field = schema[i]!;
      return field.data_type === 'File' ? cellDriverValue(cells[r]?.[field.name], prepared.table) : toDriverValue(v, field.data_type);
    })),
  };
}

/**
 * Sorts a limited SELECT's rows by its ORDER BY again (stable: the server's order stays
 * among equal keys), when every key is a result column of a type ordered here.
 */
function restoreOrder(rows: unknown[][], schema: SchemaField[], order: OrderKey[], appended: number): void {
  const keys: { index: number; compare: (a: unknown, b: unknown) => number; dir: number; nulls: number }[] = [];
  const selected = schema.slice(0, schema.length - appended);
  for (const key of order) {
    const matches = key.appended === undefined ? selected.filter((f) => f.name.toLowerCase() === key.column) : [schema[selected.length + key.appended]!];
    const compare = matches.length === 1 && matches[0] ? comparatorFor(matches[0].data_type) : undefined;
    if (!compare) return;
    keys.push({ index: matches[0]!.index, compare, dir: key.desc ? -1 : 1, nulls: key.nullsFirst ? -1 : 1 });
  }
  rows.sort((a, b) => {
    for (const k of keys) {
      const x = a[k.index];
      const y = b[k.index];
      if (x === null || x === undefined || y === null || y === undefined) {
        if ((x ?? null) === (y ?? null)) continue;
        return x === null || x === undefined ? k.nulls : -k.nulls;
      }
      const c = k.compare(x, y);
      if (c) return c * k.dir;
    }
    return 0;
  });
}

const KALAM_CLIENT = '$kalamClient';

type Prepared = { queryWithCache: (...args: unknown[]) => Promise<unknown> };
type Session = { prepareQuery: (...args: unknown[]) => Prepared };

/**
 * Drizzle wraps every driver failure in its DrizzleQueryError (`cause`: ours); a database
 * from kalamDriver() rejects with the KalamError itself, as every call of this SDK does.
 */
function unwrapErrors(db: object): void {
  const session = (db as { session?: Session }).session;
  if (!session || typeof session.prepareQuery !== 'function') return;
  const prepare = session.prepareQuery.bind(session);
  session.prepareQuery = (...args) => {
    const prepared = prepare(...args);
    const run = prepared.queryWithCache.bind(prepared);
    prepared.queryWithCache = (...a) => run(...a).catch((err: unknown) => {
      const cause = (err as { cause?: unknown })?.cause;
      throw cause instanceof KalamError ? cause : KalamError.from(err);
    });
    return prepared;
  };
}

/**
 * A Drizzle database on KalamDB: `const db = kalamDriver(client)`, then
 * `db.select().from(table)…`. Values are bound as `$n` parameters (BIGINT exact as
 * `bigint`), results are converted for Drizzle's columns (timestamps to `Date` in
 * `mode: 'date'`, JSON, FILE, BYTES, EMBEDDING), and every failure is a `KalamError`.
 * `config` is Drizzle's (`schema`, `logger`, `casing`) plus {@link KalamDriverOptions}.
 */
export function kalamDriver<TSchema extends Record<string, unknown> = Record<string, never>>(
  client: KalamQueryClient, config: DrizzleConfig<TSchema> & KalamDriverOptions = {},
): KalamDatabase<TSchema> {
  if (!client || typeof client.query !== 'function') throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'kalamDriver(client): client must have query()' });
  const { asUser, ...drizzleConfig } = config;
  const callback: RemoteCallback = (sql, params, method, typings) => runStatement(client, sql, params, method, typings, asUser);
  const db = drizzle(callback, drizzleConfig);
  unwrapErrors(db);
  const transaction = () => Promise.reject(new KalamError({
    code: 'INVALID_ARGUMENT',
    message: 'db.transaction() is not supported: KalamDB keeps a transaction within one SQL request, and Drizzle sends one request per statement',
  }));
  // The callback itself, answering for the database's members: both the official
  // `drizzle(kalamDriver(client))` and `kalamDriver(client).select()` work.
  return new Proxy(callback, {
    get(target, prop) {
      if (prop === KALAM_CLIENT) return client;
      if (prop === 'transaction') return transaction;
      if (prop in db) {
        const value = Reflect.get(db, prop, db) as unknown;
        return typeof value === 'function' ? value.bind(db) : value;
      }
      return Reflect.get(target, prop);
    },
    has: (target, prop) => prop === KALAM_CLIENT || prop in db || prop in target,
  }) as unknown as KalamDatabase<TSchema>;
}
