// The one export of @kalam-wasm/orm this package uses (an optional peer: only the
// '@kalam-wasm/react/drizzle' entry imports it). Declared here so the build does not need it.
declare module '@kalam-wasm/orm' {
  export function liveTable(source: unknown, table: unknown, onRows: (rows: unknown[]) => void, options?: { where?: unknown; orderBy?: unknown; limit?: number }): Promise<unknown>;
}
