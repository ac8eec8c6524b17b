//! Up-front check of live SQL against the server's rules (PROTOCOL.md §4.8), so a bad
//! query fails at `live()` with `INVALID_ARGUMENT` instead of later on the socket.
//!
//! Accepted: `SELECT <* | col [, col …]> FROM <namespace>.<table> [[AS] alias] [WHERE …]`,
//! one statement (a trailing `;` is allowed). Rejected: non-SELECT statements, `WITH`,
//! `ORDER BY`, `LIMIT`/`OFFSET`/`FETCH`, `DISTINCT`, `GROUP BY`, `HAVING`, joins and
//! multiple FROM items, set operations, subqueries, windows, an unqualified table, and
//! projecting `_seq` or `_deleted`. Tokens come from the crate's one SQL lexer
//! ([`crate::core::sql_lexer`]); not a SQL parser.

use std::ops::Range;

use crate::core::error::KalamError;
use crate::core::json::quote;
use crate::core::live::ordered::LiveOrder;
use crate::core::sql_lexer::{self as lexer, Tok, Unterminated};

fn invalid(message: impl Into<String>) -> KalamError {
    KalamError::invalid_argument(message)
}

/// The tokens of live SQL: an unterminated quote or comment is refused (the server would
/// refuse the query later, on the socket).
fn tokenize(sql: &str) -> Result<Vec<Tok<'_>>, KalamError> {
    Ok(tokenize_spans(sql)?.into_iter().map(|(t, _)| t).collect())
}

/// Tokens with their byte range in `sql` (to cut a trailing ORDER BY / LIMIT off).
fn tokenize_spans(sql: &str) -> Result<Vec<(Tok<'_>, Range<usize>)>, KalamError> {
    let lexed = lexer::lex_spans(sql);
    match lexed.unterminated {
        Some(Unterminated::Quote) => Err(invalid("unterminated quote in live SQL")),
        Some(Unterminated::Comment) => Err(invalid("unterminated /* comment in live SQL")),
        None => Ok(lexed.toks.into_iter().zip(lexed.spans).collect()),
    }
}

const REJECTED: &[(&str, &str)] = &[
    ("WITH", "WITH (common table expressions)"),
    ("ORDER", "ORDER BY"),
    ("LIMIT", "LIMIT"),
    ("OFFSET", "OFFSET"),
    ("FETCH", "FETCH"),
    ("DISTINCT", "DISTINCT"),
    ("GROUP", "GROUP BY"),
    ("HAVING", "HAVING"),
    ("JOIN", "joins"),
    ("UNION", "UNION"),
    ("INTERSECT", "INTERSECT"),
    ("EXCEPT", "EXCEPT"),
    ("WINDOW", "WINDOW"),
    ("QUALIFY", "QUALIFY"),
    ("OVER", "window functions"),
];

const SHAPE: &str =
    "live SQL must be SELECT <columns> FROM <namespace>.<table> [WHERE <condition>]";

/// Checks `sql` against the live-query rules; `INVALID_ARGUMENT` explains a violation.
pub fn validate_live_sql(sql: &str) -> Result<(), KalamError> {
    let mut toks = tokenize(sql)?;
    while toks.last() == Some(&Tok::Semi) {
        toks.pop();
    }
    if toks.is_empty() {
        return Err(invalid("live SQL is empty"));
    }
    if toks.contains(&Tok::Semi) {
        return Err(invalid("live SQL must be exactly one statement"));
    }
    if !toks[0].is_word("SELECT") {
        if toks[0].is_word("WITH") {
            return Err(invalid(
                "live queries do not support WITH (common table expressions)",
            ));
        }
        return Err(invalid(format!(
            "live queries must be SELECT statements; {SHAPE}"
        )));
    }
    for tok in &toks {
        for (kw, what) in REJECTED {
            if tok.is_word(kw) {
                return Err(invalid(format!(
                    "live queries do not support {what}; {SHAPE}"
                )));
            }
        }
    }
    if toks.iter().skip(1).any(|t| t.is_word("SELECT")) {
        return Err(invalid(format!(
            "live queries do not support subqueries; {SHAPE}"
        )));
    }

    // The first FROM outside parentheses ends the projection.
    let mut depth = 0i32;
    let mut from = None;
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            t if depth == 0 && t.is_word("FROM") => {
                from = Some(i);
                break;
            }
            _ => {}
        }
    }
    let from = from.ok_or_else(|| invalid(format!("live SQL lacks FROM; {SHAPE}")))?;

    check_projection(&toks[1..from])?;
    check_from_and_rest(&toks[from + 1..])
}

/// Splits a trailing `ORDER BY <col> [ASC|DESC] [NULLS FIRST|LAST], … [LIMIT n] [OFFSET m]`
/// (LIMIT and OFFSET in either order) off live SQL: the SQL to subscribe with (the server
/// refuses these clauses in live SQL) and the order the materializer applies
/// ([`super::ordered`]). The rest is checked by [`validate_live_sql`]. Order items must be
/// plain, optionally qualified column names; expressions, functions, ordinals, `LIMIT`
/// without `ORDER BY` and `FETCH` are `INVALID_ARGUMENT`.
pub fn split_live_order(sql: &str) -> Result<(String, Option<LiveOrder>), KalamError> {
    let mut toks = tokenize_spans(sql)?;
    while toks.last().is_some_and(|(t, _)| *t == Tok::Semi) {
        toks.pop();
    }
    let mut depth = 0i32;
    let mut seen_from = false;
    let mut cut = None;
    for (i, (tok, _)) in toks.iter().enumerate() {
        match tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            t if depth == 0 && t.is_word("FROM") => seen_from = true,
            t if depth == 0
                && seen_from
                && (t.is_word("ORDER") || t.is_word("LIMIT") || t.is_word("OFFSET")) =>
            {
                cut = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(cut) = cut else {
        validate_live_sql(sql)?;
        return Ok((sql.to_string(), None));
    };
    let head = sql[..toks[cut].1.start].trim_end().to_string();
    validate_live_sql(&head)?;
    let tail: Vec<(&Tok, &str)> = toks[cut..]
        .iter()
        .map(|(t, span)| (t, &sql[span.clone()]))
        .collect();
    Ok((head, Some(parse_order_tail(&tail)?)))
}

const ORDER_SHAPE: &str = "live ORDER BY takes column names (optionally qualified) with ASC/DESC and NULLS FIRST/LAST, then optional LIMIT n and OFFSET m";

fn parse_order_tail(tail: &[(&Tok, &str)]) -> Result<LiveOrder, KalamError> {
    let mut order = LiveOrder {
        keys: Vec::new(),
        limit: None,
        offset: 0,
    };
    let kw = |i: usize, k: &str| tail.get(i).is_some_and(|(t, _)| t.is_word(k));
    let mut i = 0;
    if kw(0, "ORDER") {
        if !kw(1, "BY") {
            return Err(invalid(format!(
                "live SQL has ORDER without BY; {ORDER_SHAPE}"
            )));
        }
        i = 2;
        loop {
            // ident (. ident)*: the last part is the column. Unquoted names fold to ASCII
            // lowercase, as DataFusion folds them (and no Unicode case tables ship).
            let mut column = match tail.get(i) {
                Some((Tok::Word(w), _)) if !is_order_word(w) => w.to_ascii_lowercase(),
                Some((Tok::Quoted(q), _)) => q.clone(),
                other => {
                    let got = other.map_or("nothing", |(_, text)| text);
                    return Err(invalid(format!(
                        "live ORDER BY cannot sort by {}: {ORDER_SHAPE}",
                        quote(got)
                    )));
                }
            };
            i += 1;
            while tail.get(i).is_some_and(|(t, _)| **t == Tok::Punct('.')) {
                column = match tail.get(i + 1) {
                    Some((Tok::Word(w), _)) => w.to_ascii_lowercase(),
                    Some((Tok::Quoted(q), _)) => q.clone(),
                    _ => {
                        return Err(invalid(format!(
                            "live ORDER BY has a malformed column name; {ORDER_SHAPE}"
                        )))
                    }
                };
                i += 2;
            }
            if tail.get(i).is_some_and(|(t, _)| **t == Tok::Punct('(')) {
                return Err(invalid(format!(
                    "live ORDER BY cannot sort by a function call ({column}(…)): {ORDER_SHAPE}"
                )));
            }
            let mut desc = false;
            if kw(i, "ASC") {
                i += 1;
            } else if kw(i, "DESC") {
                desc = true;
                i += 1;
            }
            // PostgreSQL's and DataFusion's default: NULLs are larger than any value.
            let mut nulls_first = desc;
            if kw(i, "NULLS") {
                if kw(i + 1, "FIRST") {
                    nulls_first = true;
                } else if kw(i + 1, "LAST") {
                    nulls_first = false;
                } else {
                    return Err(invalid(format!(
                        "live ORDER BY has NULLS without FIRST or LAST; {ORDER_SHAPE}"
                    )));
                }
                i += 2;
            }
            order.keys.push(crate::core::live::ordered::OrderKey {
                column,
                desc,
                nulls_first,
            });
            if tail.get(i).is_some_and(|(t, _)| **t == Tok::Punct(',')) {
                i += 1;
                continue;
            }
            break;
        }
    }
    let mut seen_limit = false;
    let mut seen_offset = false;
    while let Some((tok, text)) = tail.get(i) {
        let count = |what: &str| -> Result<usize, KalamError> {
            match tail.get(i + 1) {
                Some((Tok::Num(_), n)) if n.bytes().all(|b| b.is_ascii_digit()) => n
                    .parse::<usize>()
                    .map_err(|_| invalid(format!("live SQL {what} is too large"))),
                other => Err(invalid(format!(
                    "live SQL {what} needs a whole number, got {}; {ORDER_SHAPE}",
                    quote(other.map_or("nothing", |(_, t)| t))
                ))),
            }
        };
        if tok.is_word("LIMIT") && !seen_limit {
            seen_limit = true;
            order.limit = Some(count("LIMIT")?);
        } else if tok.is_word("OFFSET") && !seen_offset {
            seen_offset = true;
            order.offset = count("OFFSET")?;
        } else {
            return Err(invalid(format!(
                "live queries do not support {} here; {ORDER_SHAPE}",
                quote(text)
            )));
        }
        i += 2;
        if kw(i, "ROW") || kw(i, "ROWS") {
            i += 1; // OFFSET m ROWS
        }
    }
    if order.keys.is_empty() {
        return Err(invalid(
            "live LIMIT/OFFSET needs an ORDER BY (the window must have a defined order); without one use the live() limit option",
        ));
    }
    Ok(order)
}

fn is_order_word(w: &str) -> bool {
    ["ASC", "DESC", "NULLS", "LIMIT", "OFFSET", "BY"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// The `(namespace, table)` a live query reads, for FILE cell download paths: the one
/// table rule of the crate ([`lexer::select_table`], unquoted names folded to lowercase
/// like the server does), with the namespace required. `None` when the SQL has no
/// recognisable qualified table.
pub fn live_sql_table(sql: &str) -> Option<(String, String)> {
    match lexer::select_table(sql)? {
        (Some(namespace), table) => Some((namespace, table)),
        (None, _) => None,
    }
}

/// The live SQL of `liveTable(name)`: `SELECT * FROM "namespace"."table"`. The name must be
/// exactly `namespace.table`, each part a plain identifier (letters, digits, `_`; not
/// starting with a digit), optionally already in double quotes. Anything else (spaces, a
/// WHERE clause, quotes inside, a missing namespace) is `INVALID_ARGUMENT`: the name is
/// never pasted into SQL as written (PROTOCOL.md §4.8, §9.4).
pub fn live_table_sql(name: &str) -> Result<String, KalamError> {
    let bad = |why: &str| {
        invalid(format!(
            "liveTable needs a table name `namespace.table` made of identifiers; {} {why}",
            quote(name)
        ))
    };
    let parts: Vec<&str> = name.split('.').collect();
    let [ns, table] = parts.as_slice() else {
        return Err(bad(if parts.len() < 2 {
            "has no namespace"
        } else {
            "has more than two parts"
        }));
    };
    let mut quoted = Vec::with_capacity(2);
    for part in [ns, table] {
        let ident = part
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .unwrap_or(part);
        let mut chars = ident.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("is not an identifier"));
        }
        quoted.push(crate::core::http::sql::quote_ident(ident)?);
    }
    Ok(format!("SELECT * FROM {}.{}", quoted[0], quoted[1]))
}

fn check_projection(items: &[Tok]) -> Result<(), KalamError> {
    if items.is_empty() {
        return Err(invalid(format!("live SQL selects no columns; {SHAPE}")));
    }
    let mut depth = 0i32;
    let mut item: Vec<&Tok> = Vec::new();
    let check = |item: &[&Tok]| -> Result<(), KalamError> {
        if item.is_empty() {
            return Err(invalid("live SQL has an empty projection item"));
        }
        // A plain (possibly qualified) column: ident (. ident)*
        let plain = item.iter().enumerate().all(|(i, t)| {
            if i % 2 == 0 {
                t.ident().is_some()
            } else {
                **t == Tok::Punct('.')
            }
        }) && item.len() % 2 == 1;
        if plain {
            let last = item[item.len() - 1].ident().unwrap_or_default();
            if last.eq_ignore_ascii_case("_seq") || last.eq_ignore_ascii_case("_deleted") {
                return Err(invalid(format!(
                    "live queries must not project {last}: _seq is added automatically"
                )));
            }
        }
        Ok(())
    };
    for tok in items {
        match tok {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                check(&item)?;
                item.clear();
                continue;
            }
            _ => {}
        }
        item.push(tok);
    }
    check(&item)
}

fn check_from_and_rest(rest: &[Tok]) -> Result<(), KalamError> {
    let mut i = 0;
    match rest.first() {
        Some(Tok::Punct('(')) => {
            return Err(invalid(format!(
                "live queries do not support subqueries or table functions in FROM; {SHAPE}"
            )))
        }
        Some(t) if t.ident().is_some() && !t.is_word("WHERE") => {}
        _ => {
            return Err(invalid(format!(
                "live SQL lacks a table after FROM; {SHAPE}"
            )))
        }
    }
    let mut parts = 1;
    i += 1;
    while rest.get(i) == Some(&Tok::Punct('.')) {
        match rest.get(i + 1) {
            Some(t) if t.ident().is_some() => {
                parts += 1;
                i += 2;
            }
            _ => {
                return Err(invalid(format!(
                    "live SQL has a malformed table name; {SHAPE}"
                )))
            }
        }
    }
    if parts < 2 {
        return Err(invalid(
            "live queries must use a namespace-qualified table (namespace.table)",
        ));
    }
    // Optional alias: [AS] ident (not a keyword that starts a clause).
    if rest.get(i).is_some_and(|t| t.is_word("AS")) {
        i += 1;
        if rest.get(i).and_then(Tok::ident).is_none() {
            return Err(invalid(format!(
                "live SQL has AS without an alias; {SHAPE}"
            )));
        }
        i += 1;
    } else if let Some(t) = rest.get(i) {
        let clause = [
            "WHERE", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL", "ON",
        ]
        .iter()
        .any(|kw| t.is_word(kw));
        if t.ident().is_some() && !clause {
            i += 1;
        }
    }
    match rest.get(i) {
        None => Ok(()),
        Some(t) if t.is_word("WHERE") => {
            if rest.len() == i + 1 {
                Err(invalid("live SQL has an empty WHERE clause"))
            } else {
                Ok(())
            }
        }
        Some(Tok::Punct(',')) => Err(invalid(format!(
            "live queries support exactly one table (no multiple FROM items); {SHAPE}"
        ))),
        Some(_) => Err(invalid(format!(
            "live queries support only one table and an optional WHERE (no joins); {SHAPE}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_supported_shape() {
        for sql in [
            "SELECT * FROM wire445072.inbox",
            "SELECT * FROM wire445072.inbox WHERE room = 'paging'",
            "select id, title from wire445072.room;",
            "SELECT body FROM wire445072.inbox WHERE room = 'paging'",
            "SELECT \"id\", t.body FROM \"app\".\"orders\" t WHERE status = 'order by limit join'",
            "SELECT * FROM app.orders AS o WHERE (a = 1 OR b <> 'x''y') AND c LIKE 'z%' -- trailing LIMIT",
            "SELECT * FROM app.orders /* ORDER BY */ WHERE id > 10",
            "SELECT id AS ident FROM app.t",
        ] {
            validate_live_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn names_the_table_of_a_live_query() {
        let t = |ns: &str, table: &str| Some((ns.to_string(), table.to_string()));
        assert_eq!(
            live_sql_table("SELECT * FROM app.orders"),
            t("app", "orders")
        );
        assert_eq!(
            live_sql_table("select id from \"My Ns\".\"t\" x where a = 'FROM b.c'"),
            t("My Ns", "t")
        );
        assert_eq!(
            live_sql_table("SELECT (a) FROM app.t WHERE x = 1"),
            t("app", "t")
        );
        assert_eq!(live_sql_table("SELECT * FROM inbox"), None);
        // Unquoted names are case-insensitive on the server: the FILE path uses them
        // folded (the old live-only rule kept "App"/"Orders" as written).
        assert_eq!(
            live_sql_table("SELECT * FROM App.Orders"),
            t("app", "orders")
        );
        assert_eq!(live_sql_table("SELECT 1"), None);
    }

    #[test]
    fn live_table_names_are_identifiers_only() {
        for (name, sql) in [
            ("app.orders", r#"SELECT * FROM "app"."orders""#),
            ("App.Order_2", r#"SELECT * FROM "app"."order_2""#),
            (r#""app"."_t""#, r#"SELECT * FROM "app"."_t""#),
        ] {
            let got = live_table_sql(name).unwrap();
            assert_eq!(got, sql);
            validate_live_sql(&got).unwrap();
        }
        for name in [
            "ns.items WHERE name LIKE '%'",
            "ns.items;DROP TABLE ns.items",
            "items",
            "",
            ".items",
            "ns.",
            "a.b.c",
            "ns.\"it\"\"ems\"",
            "ns.1items",
            "ns. items",
            "ns.items--",
            "ns.it-ems",
            "ns.ïtems",
        ] {
            let err = live_table_sql(name).unwrap_err();
            assert_eq!(err.code, "INVALID_ARGUMENT", "{name}");
        }
    }

    #[test]
    fn splits_order_by_and_limit_off_live_sql() {
        use crate::core::live::ordered::OrderKey;
        let key = |c: &str, desc: bool, nulls_first: bool| OrderKey {
            column: c.into(),
            desc,
            nulls_first,
        };
        let (sql, order) = split_live_order(
            "SELECT * FROM app.t t WHERE s = 'ORDER BY x' ORDER BY t.a DESC, \"B\" NULLS FIRST, c desc nulls last LIMIT 50 OFFSET 10;",
        )
        .unwrap();
        assert_eq!(sql, "SELECT * FROM app.t t WHERE s = 'ORDER BY x'");
        let order = order.unwrap();
        assert_eq!(
            order.keys,
            [
                key("a", true, true),
                key("B", false, true),
                key("c", true, false)
            ]
        );
        assert_eq!((order.limit, order.offset), (Some(50), 10));
        let (_, order) =
            split_live_order("select id from app.t order by Id offset 3 limit 2").unwrap();
        let order = order.unwrap();
        assert_eq!(order.keys, [key("id", false, false)]);
        assert_eq!((order.limit, order.offset), (Some(2), 3));
        let (sql, order) = split_live_order("SELECT * FROM app.t WHERE a > 1").unwrap();
        assert_eq!(
            (sql.as_str(), order),
            ("SELECT * FROM app.t WHERE a > 1", None)
        );
        for (sql, needle) in [
            ("SELECT * FROM app.t ORDER BY lower(a)", "function"),
            ("SELECT * FROM app.t ORDER BY a + 1", "\"+\""),
            ("SELECT * FROM app.t ORDER BY 1", "\"1\""),
            ("SELECT * FROM app.t ORDER BY", "nothing"),
            ("SELECT * FROM app.t ORDER a", "without BY"),
            ("SELECT * FROM app.t LIMIT 5", "needs an ORDER BY"),
            ("SELECT * FROM app.t ORDER BY a LIMIT x", "whole number"),
            ("SELECT * FROM app.t ORDER BY a LIMIT 1 LIMIT 2", "LIMIT"),
            (
                "SELECT * FROM app.t ORDER BY a FETCH FIRST 1 ROWS ONLY",
                "FETCH",
            ),
            ("SELECT * FROM app.t ORDER BY a NULLS a", "NULLS without"),
            ("SELECT * FROM app.a JOIN app.b ON x ORDER BY a", "joins"),
            ("SELECT * FROM (SELECT * FROM app.t ORDER BY a)", "ORDER BY"),
        ] {
            let err = split_live_order(sql).unwrap_err();
            assert_eq!(err.code, "INVALID_ARGUMENT");
            assert!(
                err.message.contains(needle),
                "{sql}: {} (wanted {needle})",
                err.message
            );
        }
    }

    #[test]
    fn rejects_what_the_server_rejects() {
        for (sql, needle) in [
            ("SELECT * FROM wire445072.inbox ORDER BY id", "ORDER BY"),
            ("SELECT * FROM inbox", "namespace"),
            ("SELECT * FROM app.t LIMIT 5", "LIMIT"),
            ("SELECT * FROM app.t OFFSET 5", "OFFSET"),
            ("SELECT * FROM app.a JOIN app.b ON a.id = b.id", "joins"),
            ("SELECT * FROM app.a, app.b", "one table"),
            ("SELECT * FROM app.a a LEFT OUTER x", "joins"),
            ("SELECT room, count(*) FROM app.t GROUP BY room", "GROUP BY"),
            ("SELECT DISTINCT room FROM app.t", "DISTINCT"),
            ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
            ("DELETE FROM app.t", "SELECT"),
            ("INSERT INTO app.t VALUES (1)", "SELECT"),
            ("SELECT id, _seq FROM app.t", "_seq"),
            ("SELECT id, t._deleted FROM app.t t", "_deleted"),
            ("SELECT * FROM (SELECT * FROM app.t)", "subqueries"),
            (
                "SELECT * FROM app.t WHERE id IN (SELECT id FROM app.u)",
                "subqueries",
            ),
            ("SELECT * FROM app.t; SELECT * FROM app.u", "one statement"),
            ("SELECT * FROM app.t UNION SELECT * FROM app.u", "UNION"),
            ("SELECT * FROM app.t WHERE", "empty WHERE"),
            ("SELECT FROM app.t", "no columns"),
            ("SELECT *", "FROM"),
            ("", "empty"),
            ("SELECT * FROM app.t WHERE a = 'open", "unterminated"),
        ] {
            let err = validate_live_sql(sql).unwrap_err();
            assert_eq!(err.code, "INVALID_ARGUMENT");
            assert!(
                err.message.contains(needle),
                "{sql}: {} (wanted {needle})",
                err.message
            );
        }
    }
}
