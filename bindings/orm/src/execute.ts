// Compiling a Drizzle query or SQL fragment to KalamDB SQL outside the driver
// (executeAsUser, live filters).
import type { SQLWrapper } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { KalamError, type KalamDBClient, type QueryResponse, type SqlValue } from '@kalam-wasm/client';
import { prepareSql } from './sql.js';
import { toParam } from './values.js';

/** Anything with Drizzle's `toSQL()` (query builders). */
export interface QueryBuilderLike {
  toSQL(): { sql: string; params: unknown[] };
}

/** A Drizzle query builder, an `sql\`…\`` fragment, or SQL text. */
export type SqlSource = SQLWrapper | QueryBuilderLike | string;

let dialect: PgDialect | undefined;

/** @internal Compiles a source to KalamDB SQL; `inline` writes the values into the SQL (live queries take no params). */
export function compile(source: Exclude<SqlSource, string>, inline = false, unqualified = false): { sql: string; params: SqlValue[]; table?: { namespace: string; table: string } } {
  let compiled: { sql: string; params: unknown[]; typings?: string[] };
  if (typeof (source as SQLWrapper).getSQL === 'function') {
    const sqlObj = (source as SQLWrapper).getSQL();
    compiled = (dialect ??= new PgDialect()).sqlToQuery(sqlObj);
  } else if (typeof (source as QueryBuilderLike).toSQL === 'function') {
    compiled = (source as QueryBuilderLike).toSQL();
  } else {
    throw new KalamError({ code: 'INVALID_ARGUMENT', message: 'expected a Drizzle query, an sql`` fragment or SQL text' });
  }
  const params = compiled.params.map((p, i) => toParam(p, compiled.typings?.[i])) as SqlValue[];
  const prepared = prepareSql(compiled.sql, unqualified, inline ? params : undefined);
  return { ...prepared, params: inline ? [] : params };
}

/**
 * Runs a Drizzle query (or SQL text) as `user` with `EXECUTE AS USER` and returns the raw
 * response (official `executeAsUser(client, query, user)`). For typed rows use
 * `kalamDriver(client, { asUser })`.
 */
export async function executeAsUser(client: Pick<KalamDBClient, 'executeAsUser'>, source: SqlSource, user: string): Promise<QueryResponse> {
  if (typeof source === 'string') return client.executeAsUser(source, user);
  const { sql, params } = compile(source);
  return client.executeAsUser(sql, user, params);
}
