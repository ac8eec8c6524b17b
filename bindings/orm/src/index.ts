// The public API of @kalam-wasm/orm: Drizzle on KalamDB (same names as @kalamdb/orm).
export { kalamDriver } from './driver.js';
export type { KalamDatabase, KalamDriverOptions, KalamQueryClient } from './driver.js';
export { kTable, kSystemColumns, getKalamTableConfig, kalamTableConfigSymbol } from './ktable.js';
export type { KalamTableConfig, KalamTableOptions, KalamTableType, KalamSystemColumnName } from './ktable.js';
export { file, bytes, embedding } from './columns.js';
export { liveTable, subscribeTable } from './live.js';
export type { LiveTableOptions, LiveTableCallback, LiveOrder, SubscribeTableOptions, TableSubscriptionEvent } from './live.js';
export { executeAsUser } from './execute.js';
export type { SqlSource, QueryBuilderLike } from './execute.js';
export { generateSchema } from './generate.js';
export type { GenerateOptions } from './generate.js';
export { parseKalamDataType } from './data-types.js';
export type { KalamDataTypeDescriptor, KalamDataTypeKind } from './data-types.js';
