// Turns the SQL Drizzle's pg dialect writes into SQL KalamDB runs:
// - `"ns.table"` (a kTable name) becomes `"ns"."table"`, and quoted names are lowercased
//   (KalamDB folds identifiers to lowercase; a quoted mixed-case name would not match);
// - `DEFAULT` in INSERT VALUES (Drizzle's word for an omitted column) is dropped with its
//   column, as KalamDB has no DEFAULT there; the server then applies the column default
//   (rows that omit different columns become one INSERT per column set);
// - RETURNING and ON CONFLICT, which KalamDB's SQL API does not run (DataFusion plans
//   neither), are refused before sending;
// - the ORDER BY of a limited SELECT is noted (and its columns fetched) so that the driver
//   can sort the rows again (KalamDB 0.4.3 re-sorts them by primary key, PROTOCOL §12.5).
// The SQL is tokenized (strings, quoted names, parameters), never edited by regex.
import { KalamError } from '@kalam-wasm/client';

type Kind = 'ws' | 'str' | 'id' | 'word' | 'num' | 'param' | 'punct';
/** A token; a quoted name also has its dot-separated parts (normalised). */
interface Tok { k: Kind; t: string; parts?: string[] }

function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    let j = i + 1;
    let k: Kind;
    if (/\s/.test(c)) {
      while (j < sql.length && /\s/.test(sql[j]!)) j++;
      k = 'ws';
    } else if (c === "'" || c === '"') {
      // A doubled quote inside is an escaped quote.
      for (;;) {
        if (j >= sql.length) throw invalid(`unterminated ${c === '"' ? 'quoted name' : 'string'} in: ${sql}`);
        if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2;
          else { j++; break; }
        } else j++;
      }
      k = c === '"' ? 'id' : 'str';
    } else if (c === '$' && /\d/.test(sql[j] ?? '')) {
      while (/\d/.test(sql[j] ?? '')) j++;
      k = 'param';
    } else if (/\d/.test(c)) {
      while (/[0-9.]/.test(sql[j] ?? '') || (/[eE]/.test(sql[j] ?? '') && /[-+\d]/.test(sql[j + 1] ?? ''))) j += /[eE]/.test(sql[j]!) ? 2 : 1;
      k = 'num';
    } else if (/[A-Za-z_]/.test(c)) {
      while (/[A-Za-z0-9_$]/.test(sql[j] ?? '')) j++;
      k = 'word';
    } else {
      k = 'punct'; // one character: operators keep their original spelling and spacing
    }
    const tok: Tok = { k, t: sql.slice(i, j) };
    if (k === 'id') {
      tok.parts = normalizeIdent(tok.t);
      tok.t = tok.parts.map(quote).join('.');
    }
    out.push(tok);
    i = j;
  }
  return out;
}

function invalid(message: string): KalamError {
  return new KalamError({ code: 'INVALID_ARGUMENT', message });
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** `"Ns.Table"` → [`ns`, `table`]: split at dots, ASCII letters lowercased. */
function normalizeIdent(token: string): string[] {
  return token.slice(1, -1).replaceAll('""', '"').split('.').map((part) => {
    if (!part || /[\u0000-\u001f"]/.test(part)) throw invalid(`identifier ${token} cannot be sent to KalamDB`);
    return part.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
  });
}

const word = (tok: Tok | undefined, w: string) => tok?.k === 'word' && tok.t.toLowerCase() === w;
const isName = (tok: Tok | undefined) => tok?.k === 'id' || tok?.k === 'word';

/** The next significant token index at or after `i`. */
function next(toks: Tok[], i: number): number {
  while (toks[i]?.k === 'ws') i++;
  return i;
}

/** Index of the `)` closing the `(` at `open`. */
function closing(toks: Tok[], open: number): number {
  let depth = 0;
  for (let i = open; i < toks.length; i++) {
    if (toks[i]!.t === '(') depth++;
    else if (toks[i]!.t === ')' && --depth === 0) return i;
  }
  throw invalid('unbalanced parentheses');
}

/** Top-level comma-separated items between `open` and its `close` (trimmed source text). */
function items(toks: Tok[], open: number, close: number): string[] {
  const out: string[] = [''];
  let depth = 0;
  for (let i = open + 1; i < close; i++) {
    const t = toks[i]!;
    if (t.t === '(') depth++;
    if (t.t === ')') depth--;
    if (t.t === ',' && depth === 0) out.push('');
    else out[out.length - 1] += t.t;
  }
  return out.map((x) => x.trim());
}

/**
 * INSERT … VALUES without Drizzle's DEFAULT placeholders, their columns left to the
 * server. Rows that leave different columns to their defaults cannot share one VALUES
 * list: they become one INSERT per set of columns (run in order, not atomically), each
 * with its own `$1…` numbering; `params` maps them to Drizzle's.
 */
function stripDefaults(toks: Tok[]): { toks: Tok[]; params?: number[] }[] {
  const open = toks.findIndex((t) => t.t === '(');
  if (open < 0) return [{ toks }];
  const colsClose = closing(toks, open);
  const values = next(toks, colsClose + 1);
  if (!word(toks[values], 'values')) return [{ toks }]; // INSERT … SELECT
  const groups: { open: number; close: number }[] = [];
  let i = next(toks, values + 1);
  while (toks[i]?.t === '(') {
    const close = closing(toks, i);
    groups.push({ open: i, close });
    const comma = next(toks, close + 1);
    i = toks[comma]?.t === ',' ? next(toks, comma + 1) : close + 1;
  }
  const columns = items(toks, open, colsClose);
  const rows = groups.map((g) => items(toks, g.open, g.close));
  const isDefault = (item: string | undefined) => item?.toLowerCase() === 'default';
  if (!rows.some((r) => r.some(isDefault))) return [{ toks }];
  const head = toks.slice(0, open).map((t) => t.t).join('');
  const tail = toks.slice(i).map((t) => t.t).join('');
  // Rows grouped by the columns they give, in first-seen order.
  const sets = new Map<string, string[][]>();
  for (const r of rows) {
    const key = r.map((item) => (isDefault(item) ? '0' : '1')).join('');
    if (!key.includes('1')) throw invalid('insert: every column is left to its default; KalamDB needs at least one column value');
    sets.set(key, [...(sets.get(key) ?? []), r]);
  }
  return [...sets].map(([key, group]) => {
    const list = (parts: string[]) => parts.filter((_, c) => key[c] === '1').join(', ');
    const statement = tokenize(`${head}(${list(columns)}) values ${group.map((r) => `(${list(r)})`).join(', ')}${tail}`);
    if (sets.size === 1) return { toks: statement };
    const params: number[] = [];
    for (const t of statement) {
      if (t.k === 'param') {
        params.push(Number(t.t.slice(1)) - 1);
        t.t = `$${params.length}`;
      }
    }
    return { toks: statement, params };
  });
}

/** SQL ready for KalamDB, plus the one table a plain single-table SELECT reads (for FILE cells). */
export interface PreparedSql {
  sql: string;
  table?: { namespace: string; table: string };
  /**
   * Set when one Drizzle INSERT became several (rows giving different columns): run each
   * in order, with `params[i]` the index into Drizzle's parameters of its `$i+1`.
   */
  statements?: { sql: string; params: number[] }[];
  /** ORDER BY keys to restore on a limited SELECT's rows (see orderKeys). */
  order?: OrderKey[];
  /** How many ORDER BY columns were appended to the select list (the rows' last values). */
  appendedColumns?: number;
}

/** One ORDER BY key: a result column, its direction, where NULLs go (SQL default: last ascending). */
export interface OrderKey {
  column: string;
  desc: boolean;
  nullsFirst: boolean;
  /** Set when the key was appended to the select list: its position among the appended. */
  appended?: number;
}

/** The parts of the dotted name starting at `i` (`"ns"."t"`, `ns.t`, `"ns.t"`) and the index after it. */
function dotted(toks: Tok[], i: number): { parts: string[]; end: number } {
  const parts: string[] = [];
  for (;;) {
    const t = toks[i]!;
    parts.push(...(t.parts ?? [t.t.toLowerCase()]));
    if (toks[i + 1]?.t === '.' && isName(toks[i + 2])) i += 2;
    else return { parts, end: i + 1 };
  }
}

/**
 * Rewrites Drizzle's SQL for KalamDB (see the file comment); throws `INVALID_ARGUMENT`
 * KalamErrors for what KalamDB cannot run. `unqualified` drops table qualifiers from
 * column names (`"ns"."t"."col"` → `"col"`) and `inline` writes these parameter values into
 * the SQL as literals: both for live filters (single table, no parameters). `forRows`: the
 * rows go to Drizzle's positional mapping, so ORDER BY columns may be appended to the
 * select list (see appendOrderColumns).
 */
export function prepareSql(sql: string, unqualified = false, inline?: readonly unknown[], forRows = false): PreparedSql {
  let toks = tokenize(sql);
  // A trailing `;` (Drizzle's $count writes one) would make a parameterised statement look
  // like a batch, which the server refuses with parameters.
  while (toks.length && (toks[toks.length - 1]!.k === 'ws' || toks[toks.length - 1]!.t === ';')) toks.pop();
  const firstTok = toks[next(toks, 0)];
  const first = firstTok?.k === 'word' ? firstTok.t.toLowerCase() : '';
  let depth = 0;
  for (const t of toks) {
    if (t.t === '(') depth++;
    if (t.t === ')') depth--;
    if (depth === 0 && (first === 'insert' || first === 'update' || first === 'delete') && word(t, 'returning')) {
      throw invalid(`${first}: KalamDB does not support RETURNING; read the rows back with a select`);
    }
    if (depth === 0 && first === 'insert' && word(t, 'conflict')) {
      throw invalid('insert: KalamDB does not support ON CONFLICT (onConflictDoNothing/onConflictDoUpdate); select first, then insert or update');
    }
  }
  if (first === 'insert') {
    const parts = stripDefaults(toks);
    if (parts.length > 1) {
      const statements = parts.map((p) => ({ sql: prepareSql(p.toks.map((t) => t.t).join(''), unqualified, inline).sql, params: p.params! }));
      return { sql: statements[0]!.sql, statements };
    }
    toks = parts[0]!.toks;
  }
  const out: PreparedSql = { sql: '' };
  const order = first === 'select' ? orderKeys(toks) : undefined;
  if (order) {
    out.order = order.map((o) => o.key);
    if (forRows) {
      const appended = appendOrderColumns(toks, order);
      if (appended) {
        toks = appended.toks;
        out.appendedColumns = appended.count;
      }
    }
  }
  let froms = 0;
  let inFrom = false;
  let joined = false;
  depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.t === '(') depth++;
    if (t.t === ')') depth--;
    if (depth === 0 && (word(t, 'join') || (t.t === ',' && inFrom))) joined = true;
    if (depth === 0 && t.k === 'word' && /^(where|group|order|limit|offset|having|union|except|intersect|for)$/i.test(t.t)) inFrom = false;
    if (isName(t) && (t.k === 'id' || toks[i + 1]?.t === '.')) {
      const { parts, end } = dotted(toks, i);
      if (depth === 0 && froms === 1 && out.table === undefined && parts.length === 2 && word(toks[prevSig(toks, i)], 'from')) {
        out.table = { namespace: parts[0]!, table: parts[1]! };
      }
      out.sql += (unqualified ? parts.slice(-1) : parts).map(quote).join('.');
      i = end - 1;
      continue;
    }
    if (inline && t.k === 'param') {
      out.sql += literal(inline[Number(t.t.slice(1)) - 1]);
      continue;
    }
    if (depth === 0 && word(t, 'from')) {
      froms++;
      inFrom = true;
    }
    out.sql += t.t;
  }
  if (first !== 'select' || froms !== 1 || joined) delete out.table;
  return out;
}

/**
 * The top-level ORDER BY of a SELECT that also has LIMIT or OFFSET, when every key is a
 * plain column: KalamDB 0.4.3 returns such results re-sorted by primary key (its default
 * ordering wraps the limited query, PROTOCOL §12.5), so the driver sorts them again.
 */
function orderKeys(toks: Tok[]): { key: OrderKey; name: Tok[] }[] | undefined {
  let depth = 0;
  let start = -1;
  let end = toks.length;
  let limited = false;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.t === '(') depth++;
    if (t.t === ')') depth--;
    if (depth !== 0 || t.k !== 'word') continue;
    const w = t.t.toLowerCase();
    if (w === 'order' && word(toks[next(toks, i + 1)], 'by')) start = next(toks, i + 1) + 1;
    else if (w === 'limit' || w === 'offset' || w === 'fetch') {
      limited = true;
      if (start >= 0 && end === toks.length) end = i;
    } else if (w === 'union' || w === 'except' || w === 'intersect') return undefined;
  }
  if (start < 0 || !limited) return undefined;
  const keys: { key: OrderKey; name: Tok[] }[] = [];
  for (const item of split(toks.slice(start, end))) {
    const sig = item.filter((t) => t.k !== 'ws');
    const words = sig.map((t) => (t.k === 'word' ? t.t.toLowerCase() : ''));
    let n = sig.length;
    let nulls: boolean | undefined;
    if (words[n - 2] === 'nulls' && (words[n - 1] === 'first' || words[n - 1] === 'last')) {
      nulls = words[n - 1] === 'first';
      n -= 2;
    }
    const desc = words[n - 1] === 'desc';
    if (desc || words[n - 1] === 'asc') n -= 1;
    // A dotted name: name (. name)*
    const name = sig.slice(0, n);
    if (!name.length || !name.every((t, i) => (i % 2 ? t.t === '.' : isName(t)))) return undefined;
    const last = name[name.length - 1]!;
    keys.push({ key: { column: last.parts ? last.parts[last.parts.length - 1]! : last.t.toLowerCase(), desc, nullsFirst: nulls ?? desc }, name });
  }
  return keys;
}

/**
 * Appends the ORDER BY columns that are not selected to a plain select list (column names
 * only: no DISTINCT, GROUP BY, functions, aliases or `*`), so that the rows can be sorted
 * again; Drizzle maps rows by position and ignores the extra values.
 */
function appendOrderColumns(toks: Tok[], order: { key: OrderKey; name: Tok[] }[]): { toks: Tok[]; count: number } | undefined {
  const select = next(toks, 0);
  let depth = 0;
  let from = -1;
  for (let i = select + 1; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.t === '(') depth++;
    if (t.t === ')') depth--;
    if (depth !== 0) continue;
    if (from < 0 && word(t, 'from')) from = i;
    if (word(t, 'group') || word(t, 'having') || word(t, 'union') || word(t, 'except') || word(t, 'intersect')) return undefined;
  }
  if (from < 0) return undefined;
  const list = toks.slice(select + 1, from);
  if (list.some((t) => t.t === '(' || t.t === '*' || word(t, 'as') || word(t, 'distinct'))) return undefined;
  const selected = new Set(split(list).map((item) => {
    const last = item.filter((t) => t.k !== 'ws').at(-1);
    return last?.parts ? last.parts[last.parts.length - 1] : last?.t.toLowerCase();
  }));
  const extra: Tok[] = [];
  let count = 0;
  for (const o of order) {
    if (selected.has(o.key.column)) continue;
    o.key.appended = count++;
    extra.push({ k: 'punct', t: ',' }, { k: 'ws', t: ' ' }, ...o.name);
  }
  if (!count) return undefined;
  const at = toks[from - 1]?.k === 'ws' ? from - 1 : from; // after the last selected column
  return { toks: [...toks.slice(0, at), ...extra, ...(at === from ? [{ k: 'ws' as const, t: ' ' }] : []), ...toks.slice(at)], count };
}

function split(toks: Tok[]): Tok[][] {
  const out: Tok[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (t.t === '(') depth++;
    if (t.t === ')') depth--;
    if (t.t === ',' && depth === 0) out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out;
}

/** A value as an SQL literal (live queries take no parameters). */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(`cannot write ${value} into SQL`);
    return String(value);
  }
  if (typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  const text = value instanceof Date ? value.toISOString() : typeof value === 'string' ? value : JSON.stringify(value);
  return `'${text.replaceAll("'", "''")}'`;
}

function prevSig(toks: Tok[], i: number): number {
  i--;
  while (toks[i]?.k === 'ws') i--;
  return i;
}
