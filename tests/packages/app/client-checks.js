// What a first app does with @kalam-wasm/client: insert, query, subscribe live and see a new
// row arrive. Shared by the page, the workers and the Node/Bun/Deno scripts of the matrix.
import { createClient, Auth } from '@kalam-wasm/client';

export async function clientChecks({ url, user, password, table, tag }, extra = {}) {
  const client = createClient({ url, authProvider: async () => Auth.basic(user, password), ...extra });
  try {
    const first = `${tag}-a`;
    const second = `${tag}-b`;
    await client.insert(table, { id: first, note: tag });
    const row = await client.queryOne(`SELECT id, note FROM ${table} WHERE id = $1`, [first]);
    if (row?.note.asString() !== tag) throw new Error(`query gave ${JSON.stringify(row)}`);
    let unsubscribe;
    const liveRows = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('live: the inserted row did not arrive in 15 s')), 15_000);
      client
        .live(`SELECT * FROM ${table}`, (rows) => {
          if (rows.some((r) => r.id.asString() === second)) {
            clearTimeout(timer);
            resolve(rows.length);
          }
        }, { onError: (err) => { clearTimeout(timer); reject(err); } })
        .then(async (unsub) => {
          unsubscribe = unsub;
          await client.insert(table, { id: second, note: tag });
        }, reject);
    });
    await unsubscribe?.();
    return { queried: row.id.asString(), liveRows };
  } finally {
    await client.disconnect();
  }
}
