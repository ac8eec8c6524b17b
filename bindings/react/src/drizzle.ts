// Drizzle mode for useLiveQuery / useLiveQueries / <LiveQuery> (`{ table, where, orderBy }`): import
// this entry once. The live SQL and the row mapping are @kalam-wasm/orm's own (its
// liveTable, asked for the subscription it would open, which is not opened here), so tables,
// filters, orders and values follow one set of rules (the order is live SQL ORDER BY, applied
// by the core's ordered window).
import { KalamError, type RowData } from '@kalam-wasm/client';
import { liveTable } from '@kalam-wasm/orm';
import { registerDrizzle } from './live-set.js';

registerDrizzle((table, where, orderBy, limit) => {
  let captured: { sql: string; mapRow?: (row: RowData) => unknown } | null = null;
  const noop = async () => {};
  const probe = {
    live: (sql: string, _onRows: unknown, options?: { mapRow?: (row: RowData) => unknown }) => {
      captured = { sql, mapRow: options?.mapRow };
      return Promise.resolve(noop);
    },
    liveEvents: () => Promise.resolve(noop),
  };
  let failure: unknown;
  const options = { ...(where === undefined ? {} : { where }), ...(orderBy === undefined ? {} : { orderBy, limit }) };
  const pending = liveTable(probe, table, () => {}, options);
  // liveTable asks for the subscription before its first await; a bad table or filter rejects.
  pending.catch((err: unknown) => {
    failure = err;
    console.error('@kalam-wasm/react: the Drizzle query could not be compiled', err);
  });
  const got = captured as { sql: string; mapRow?: (row: RowData) => unknown } | null;
  if (got) return got;
  return { error: KalamError.from(failure ?? new KalamError({ code: 'INVALID_ARGUMENT', message: 'the Drizzle table, where or orderBy could not be compiled to live SQL (see the console)' })) };
});

export {};
