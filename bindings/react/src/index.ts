// @kalam-wasm/react: React bindings for @kalam-wasm/client live queries (official @kalamdb/react names).
export { KalamProvider, useKalamClient } from './context.js';
export type { KalamProviderProps } from './context.js';
export { useLiveQuery, useLiveQueries, LiveQuery, LiveQueries, useLiveSelection } from './hooks.js';
export { useMutationActions, useMutationState } from './mutations.js';
export type { MutationAction } from './mutations.js';
export type {
  RowKey, MutationTarget, MutationState, InsertAction, UpdateAction, RemoveAction, MutationActions, LiveQueryState,
  SingleLiveQueryContext, RawSqlLiveQueryOptions, UseLiveQueryOptions, LiveQueryProps, LiveQueryDefinition, LiveQueriesDefinition,
  InferLiveQueryRow, InferTableRow, DrizzleLiveQueryOptions, DrizzleOrder, MultiLiveQueryAggregateState, MultiLiveQueryContext, UseLiveQueriesOptions, LiveQueriesProps, LiveSelectionSelector,
} from './types.js';
