// The public hooks and components (official @kalamdb/react names and shapes).
import { createElement, Fragment, useMemo, type ReactNode } from 'react';
import type { RowData } from '@kalam-wasm/client';
import { useKalamClient } from './context.js';
import { useLiveSet, type AnyDef } from './live-set.js';
import type {
  DrizzleLiveQueryOptions, InferTableRow, LiveQueriesDefinition, LiveQueriesProps, LiveQueryProps, LiveSelectionSelector, MultiLiveQueryContext, SingleLiveQueryContext,
  UseLiveQueriesOptions, UseLiveQueryOptions,
} from './types.js';

/**
 * Live rows of one SQL query with the write actions. Resubscribes when `query`, `limit`,
 * column `getKey` or `deps` change, never because a function option is a new lambda.
 */
export function useLiveQuery<TTable extends object>(options: DrizzleLiveQueryOptions<TTable> & { select?: undefined }): SingleLiveQueryContext<InferTableRow<TTable>>;
export function useLiveQuery<TTable extends object, TSelected>(options: DrizzleLiveQueryOptions<TTable> & { select: (context: SingleLiveQueryContext<InferTableRow<TTable>>) => TSelected }): TSelected;
export function useLiveQuery<TRow = RowData>(options: UseLiveQueryOptions<TRow, SingleLiveQueryContext<TRow>> & { select?: undefined }): SingleLiveQueryContext<TRow>;
export function useLiveQuery<TRow, TSelected>(options: UseLiveQueryOptions<TRow, TSelected>): TSelected;
export function useLiveQuery(options: (UseLiveQueryOptions<unknown, unknown> | DrizzleLiveQueryOptions) & { select?: (context: never) => unknown }): unknown {
  const client = useKalamClient(options.client);
  const { client: _c, select: _s, ...def } = options;
  const set = useLiveSet(client, { q: def as AnyDef }, undefined, 'useLiveQuery');
  const context = set.contexts.q!;
  return options.select ? options.select(context as never) : context;
}

/** `<LiveQuery query="...">{(ctx) => ...}</LiveQuery>`: useLiveQuery as a component. */
export function LiveQuery<TRow = RowData>(props: LiveQueryProps<TRow>): ReactNode {
  const { children, ...options } = props;
  const context = useLiveQuery(options as never) as SingleLiveQueryContext<TRow>;
  return createElement(Fragment, null, children(context));
}

/**
 * Several named live queries with one set of write actions. Each query loads and fails on
 * its own: an error in one leaves its siblings' rows alone. Resubscribes a query when its
 * SQL/options/deps change, and all of them when `deps` change.
 */
export function useLiveQueries<Q extends LiveQueriesDefinition>(options: UseLiveQueriesOptions<Q> & { select?: undefined }): MultiLiveQueryContext<Q>;
export function useLiveQueries<Q extends LiveQueriesDefinition, TSelected>(options: UseLiveQueriesOptions<Q, TSelected>): TSelected;
export function useLiveQueries(options: UseLiveQueriesOptions<LiveQueriesDefinition, unknown>): unknown {
  const client = useKalamClient(options.client);
  const set = useLiveSet(client, options.queries as Record<string, AnyDef>, options.deps, 'useLiveQueries');
  const context = useMemo(() => {
    const snaps = Object.values(set.snapshots);
    const names = Object.keys(options.queries);
    const { insert, update, remove, clearError, ...mstate } = set.mutation;
    const queryError = names.map((n) => set.contexts[n]?.state.error).find(Boolean);
    const state = {
      ...mstate,
      loading: names.length > 0 && names.some((n) => (set.snapshots[n]?.loading ?? true)),
      connected: snaps.length > 0 && snaps.every((s) => s.connected),
      ...(mstate.error ?? queryError ? { error: mstate.error ?? queryError } : {}),
    };
    return { ...set.contexts, state, insert, update, remove, clearError, refetch: set.refetch };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [set.contexts, set.snapshots, set.mutation, set.refetch]);
  return options.select ? options.select(context as never) : context;
}

/** `<LiveQueries queries={...}>{(ctx) => ...}</LiveQueries>`: useLiveQueries as a component. */
export function LiveQueries<Q extends LiveQueriesDefinition>(props: LiveQueriesProps<Q>): ReactNode {
  const { children, ...options } = props;
  const context = useLiveQueries<Q>(options as UseLiveQueriesOptions<Q> & { select?: undefined });
  return createElement(Fragment, null, children(context));
}

/** A value derived from a live context, recomputed when the context changes (memoized). */
export function useLiveSelection<TContext, TSelected>(context: TContext, selector: LiveSelectionSelector<TContext, TSelected>): TSelected {
  return useMemo(() => selector(context), [context, selector]);
}
