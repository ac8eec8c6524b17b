// The React example of the demo: the inbox of the main demo (USER table demo.inbox) with
// @kalam-wasm/react. One useLiveQuery with live `ORDER BY id` (snowflake ids: oldest first,
// like a chat; the client's Rust core keeps the order, the server never sees the ORDER BY;
// pending inserts show at the end, where their row will land), and writes through the
// hook's actions, which show at once (optimistic, marked pending until the server's change
// arrives) and roll back with the error if the server refuses them.
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Auth, createClient } from '@kalam-wasm/client';
import { KalamProvider, useLiveQuery } from '@kalam-wasm/react';

const INBOX = 'demo.inbox';

function Inbox() {
  const { rows, state, insert, remove, clearError } = useLiveQuery({ query: `SELECT * FROM ${INBOX} ORDER BY id` });
  const [text, setText] = useState('');
  const send = (event) => {
    event.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText('');
    // The id is the table's SNOWFLAKE_ID() default: the pending row has no id (and no _seq) yet.
    insert(INBOX, { body, author: 'me' }).catch(() => {}); // a refusal lands in state.error
  };
  return (
    <main>
      <header>
        <h1>Inbox (React)</h1>
        <span className={`pill ${state.status}`} data-testid="status">{state.status}</span>
      </header>
      <p className="muted">useLiveQuery over <code>{INBOX}</code> with live ORDER BY id. <a href="../">Back to the demo</a></p>
      <form onSubmit={send}>
        <input aria-label="New note" placeholder="Write a note" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit">Add</button>
      </form>
      {state.error ? <p className="error-box" role="alert">{state.error.message} <button className="link" onClick={clearError}>dismiss</button></p> : null}
      {state.loading ? <p className="muted">Loading…</p> : null}
      <ul data-testid="notes">
        {rows.map((row, i) => {
          const pending = row._seq === undefined;
          const id = row.id?.asString?.() ?? null;
          return (
            <li key={id ?? `pending-${i}`} className={pending ? 'pending' : ''} data-pending={pending ? 'true' : 'false'}>
              <span>{row.body?.asString?.() ?? ''}</span>
              {pending ? <span className="muted">sending…</span> : <button className="link" onClick={() => remove(INBOX, id).catch(() => {})}>delete</button>}
            </li>
          );
        })}
      </ul>
    </main>
  );
}

function SignIn({ people, onClient }) {
  const [error, setError] = useState(null);
  const signIn = async (person) => {
    const client = createClient({ url: window.__demo.url, auth: Auth.basic(person.id, person.password) });
    try {
      await client.login();
      onClient(client, person);
    } catch (err) {
      await client.shutdown().catch(() => {});
      setError(err.message);
    }
  };
  return (
    <main>
      <h1>Kalam Live · React example</h1>
      <p className="muted">Sign in as a demo account:</p>
      {people.map((p) => <button key={p.id} style={{ marginRight: 8 }} onClick={() => signIn(p)}>{`Sign in as ${p.name}`}</button>)}
      {error ? <p className="error-box" role="alert">{error}</p> : null}
    </main>
  );
}

function App({ people }) {
  const [session, setSession] = useState(null);
  if (!session) return <SignIn people={people} onClient={(client, person) => setSession({ client, person })} />;
  return <KalamProvider client={session.client}><Inbox /></KalamProvider>;
}

const config = await fetch('../demo-config.json', { cache: 'no-store' }).then((r) => r.json()).catch(() => ({ url: null, people: [] }));
// null: the embedded test server serves this page, so the origin is the server.
window.__demo = { url: config.url ?? window.location.origin };
createRoot(document.getElementById('root')).render(<StrictMode><App people={config.people ?? []} /></StrictMode>);
