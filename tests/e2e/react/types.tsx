// Type tests of @kalam-wasm/react as an app sees its typings (tsc --strict, jsx react-jsx), checked
// by tests/e2e/react.test.mjs in the React 19 app folder; the marked lines must stay errors.

import { createClient, createLiveQuery, Auth, KalamError, type LiveQuerySnapshot, type RowData } from '@kalam-wasm/client';
import {
  KalamProvider, LiveQueries, LiveQuery, useKalamClient, useLiveQueries, useLiveQuery, useLiveSelection, useMutationActions,
  useMutationState, type MutationState, type SingleLiveQueryContext,
} from '@kalam-wasm/react';
import '@kalam-wasm/react/drizzle';
import { kTable } from '@kalam-wasm/orm';
import { desc, eq } from 'drizzle-orm';
import { bigint, text } from 'drizzle-orm/pg-core';

const client = createClient({ url: 'http://localhost:8080', authProvider: async () => Auth.basic('alice', 'x') });
const todos = kTable.user('app.todos', { id: text('id').primaryKey(), owner: text('owner').notNull(), n: bigint('n', { mode: 'bigint' }) });

export function Raw() {
  const { rows, state, insert, update, remove, refetch, clearError } = useLiveQuery({ query: 'SELECT * FROM app.todos', limit: 10, getKey: 'id', deps: [1] });
  const first: RowData | undefined = rows[0];
  const status: 'idle' | 'loading' | 'live' | 'reconnecting' | 'error' | 'disposed' = state.status;
  const err: KalamError | undefined = state.error;
  const pending: number = state.pendingInserts;
  const busy: boolean = state.inserting || state.updating.has('t1') || state.deleting.has(42);
  void insert('app.todos', { id: 't1' }).then(() => update('app.todos', 't1', { title: 'x' })).then(() => remove('app.todos', { id: 't1' }));
  void refetch();
  clearError();
  // @ts-expect-error query is a string
  useLiveQuery({ query: 42 });
  return <button disabled={state.inserting}>{first?.id?.asString()} {status} {String(err?.code)} {pending} {String(busy)}</button>;
}

export function Mapped() {
  const titles = useLiveQuery({ query: 'SELECT * FROM app.todos', mapRow: (row) => ({ title: row.title?.asString() ?? '' }), select: (c) => c.rows.map((r) => r.title) });
  const t: string[] = titles;
  return <p>{t.join(',')}</p>;
}

export function Drizzle({ owner }: { owner: string }) {
  const { rows, insert, update } = useLiveQuery({ table: todos, where: (t) => eq(t.owner, owner) });
  const o: string = rows[0].owner;
  const n: bigint | null = rows[0].n;
  // @ts-expect-error not a column
  void rows[0].nope;
  void insert(todos).values({ id: 'x', owner, n: 1n });
  void update(todos, 'x').set({ n: 2n });
  return <p>{o}{String(n)}</p>;
}

export function DrizzleOrdered({ owner }: { owner: string }) {
  const { rows } = useLiveQuery({ table: todos, where: (t) => eq(t.owner, owner), orderBy: (t) => [desc(t.n), t.id], limit: 10 });
  const top: bigint | null | undefined = rows[0]?.n;
  // @ts-expect-error an order is a column, asc()/desc(), an array of them or a function of the table
  useLiveQuery({ table: todos, orderBy: 42 });
  return <p>{String(top)}</p>;
}

export function Many() {
  const live = useLiveQueries({ queries: { a: { query: 'SELECT * FROM app.a' }, b: { table: todos } }, deps: [1] });
  const aRows: RowData[] = live.a.rows;
  const bOwner: string | undefined = live.b.rows[0]?.owner;
  const loading: boolean = live.state.loading;
  const sel = useLiveSelection(live, (c) => c.a.rows.length);
  const count: number = sel;
  return <p>{aRows.length}{bOwner}{String(loading)}{count}</p>;
}

export function Components() {
  const c = useKalamClient();
  const m: MutationState = useMutationActions(c);
  const [state, dispatch] = useMutationState();
  dispatch({ type: 'insert:start' });
  return (
    <KalamProvider client={client}>
      <LiveQuery query="SELECT * FROM app.todos">{(ctx: SingleLiveQueryContext) => <p>{ctx.rows.length}</p>}</LiveQuery>
      <LiveQueries queries={{ a: { query: 'SELECT * FROM app.a' } }}>{(ctx) => <p>{ctx.a.rows.length}{String(ctx.state.connected)}</p>}</LiveQueries>
      <p>{String(m.inserting)}{state.pendingInserts}</p>
    </KalamProvider>
  );
}

// The client's controller on a real client type: rows typed by mapRow.
const ids = createLiveQuery(client, 'SELECT * FROM app.todos', { getKey: ['id'], mapRow: (row) => row.id?.asString() ?? '' });
const snap: LiveQuerySnapshot<string> = ids.getSnapshot();
const firstId: string | undefined = snap.rows[0];
const off: () => void = ids.subscribe((s) => void s.status);
void ids.start().then(() => ids.refetch()).then(() => ids.stop()).then(() => ids.dispose());
off();
void firstId;
