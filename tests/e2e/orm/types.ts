// Type tests, checked by `tsc --strict` against the installed packages (tests/e2e/orm.test.mjs):
// what must compile does, and every `@ts-expect-error` line must be an error (an unused
// one fails the check too).
import { createClient, Auth, FileRef } from '@kalam-wasm/client';
import { bytes, embedding, file, getKalamTableConfig, kalamDriver, kSystemColumns, kTable, liveTable, type KalamTableConfig } from '@kalam-wasm/orm';
import { bigint, integer, numeric, text, timestamp } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/pg-proxy';
import { eq } from 'drizzle-orm';

const things = kTable.shared('app.things', {
  ...kSystemColumns(),
  id: bigint('id', { mode: 'bigint' }).primaryKey(),
  name: text('name').notNull(),
  count: integer('count'),
  price: numeric('price', { precision: 10, scale: 2 }),
  at: timestamp('at', { mode: 'date' }).notNull(),
  doc: file('doc'),
  raw: bytes('raw'),
  vec: embedding('vec', 3),
});

type Thing = typeof things.$inferSelect;
type NewThing = typeof things.$inferInsert;

const exact = <T>(_value: T) => {};
declare const row: Thing;
exact<bigint>(row.id);
exact<string>(row.name);
exact<number | null>(row.count);
exact<string | null>(row.price);
exact<Date>(row.at);
exact<FileRef | null>(row.doc);
exact<Uint8Array | null>(row.raw);
exact<number[] | null>(row.vec);
exact<string>(row._seq!);
exact<boolean | null>(row._deleted);
// @ts-expect-error a BIGINT in bigint mode is not a number
exact<number>(row.id);
// @ts-expect-error the table has no such column
void row.nope;

const ok: NewThing = { id: 1n, name: 'x', at: new Date() };
// @ts-expect-error name is NOT NULL and has no default
const missing: NewThing = { id: 1n, at: new Date() };
// @ts-expect-error id is a bigint, not a string
const wrongType: NewThing = { id: '1', name: 'x', at: new Date() };

const config: KalamTableConfig | undefined = getKalamTableConfig(things);
void config?.tableType;

const client = createClient({ url: 'http://localhost:8080', authProvider: async () => Auth.basic('u', 'p') });
const db = kalamDriver(client);
const official = drizzle(kalamDriver(client)); // the @kalamdb/orm spelling

export async function queries(): Promise<void> {
  const rows: Thing[] = await db.select().from(things).where(eq(things.name, 'x'));
  const picked: { id: bigint; n: string }[] = await db.select({ id: things.id, n: things.name }).from(things);
  await official.insert(things).values(ok);
  // @ts-expect-error wrong column in where: things has no column `nope`
  await db.select().from(things).where(eq(things.nope, 1));
  // @ts-expect-error wrong value type: count is an integer
  await db.insert(things).values({ id: 2n, name: 'y', at: new Date(), count: 'three' });
  // @ts-expect-error wrong value type in a filter: name is text
  await db.select().from(things).where(eq(things.name, 5));
  await liveTable(db, things, { where: eq(things.name, 'x') }, (live) => {
    const first: Thing | undefined = live[0];
    // @ts-expect-error live rows are typed like $inferSelect
    const wrong: string | undefined = live[0]?.id;
    void first; void wrong;
  });
  void rows; void picked; void missing; void wrongType;
}
