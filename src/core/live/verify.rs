//! Self-verification of materialized subscriptions.
//!
//! A real server drops change notifications silently when a connection's 128-message
//! outbound queue is full (PROTOCOL.md §4.6.7, §12.1), and nothing on the wire shows it. So
//! every `live()` subscription checks itself with the checksum of §12.2:
//!
//! ```sql
//! SELECT COUNT(*) AS c, SUM(_seq % 1000003) AS s, MAX(_seq) AS m FROM <the live SQL's FROM and WHERE>
//! ```
//!
//! run over HTTP, compared with the same three figures over the materialized rows (every row
//! carries `_seq`, and a row's `_seq` changes with every write, so stale values change the
//! sum). When to check: after a burst of changes on the socket (a run of
//! [`VerifyConfig::after_burst`] change frames with gaps under a second: the only moment a
//! queue can overflow), and every [`VerifyConfig::interval_ms`]. A mismatch is confirmed by
//! a second check [`VerifyConfig::confirm_ms`] later (changes in flight make one check
//! disagree); two in a row heal the subscription with a resync in the background (the
//! staging machinery: no empty flash, one delta with only the real differences).
//!
//! Shapes: `lastRows` sets hold every row written since the snapshot's oldest row, so their
//! checksum adds `_seq >= <the oldest held _seq>` (a `from` set: `_seq > from`). A `limit`
//! set over a table with more rows than its limit holds only the newest keys; only its
//! `MAX(_seq)` is compared (the newest write must be held).

use crate::core::json::{quote, Value};

use crate::core::error::{codes, KalamError};
use crate::core::seq_id::SeqId;

/// The modulus of the `_seq` sum (§12.2).
pub const CHECKSUM_MODULUS: i64 = 1_000_003;

/// When subscriptions verify themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Off: no checksum queries at all. Default on (the shell turns it off when it cannot
    /// run SQL).
    pub enabled: bool,
    /// Periodic check of each live subscription; 0 = only after bursts. Default 30 000.
    pub interval_ms: u64,
    /// A run of this many change frames on the socket (each within [`BURST_GAP_MS`] of the
    /// previous) is a burst; every subscription is checked after it. 0 = never. Default 100
    /// (the server drops beyond 128 queued).
    pub after_burst: u32,
    /// Quiet time after the last change of a burst before checking. Default 500.
    pub settle_ms: u64,
    /// Delay of the second, confirming check after a mismatch. Default 1000.
    pub confirm_ms: u64,
}

/// Changes further apart than this end a burst.
pub const BURST_GAP_MS: u64 = 1000;
/// A burst that never pauses is checked after this long anyway.
pub const BURST_MAX_DEFER_MS: u64 = 5000;

impl Default for VerifyConfig {
    fn default() -> VerifyConfig {
        VerifyConfig {
            enabled: true,
            interval_ms: 30_000,
            after_burst: 100,
            settle_ms: 500,
            confirm_ms: 1000,
        }
    }
}

/// The three figures of §12.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checksum {
    pub count: u64,
    /// `SUM(_seq % CHECKSUM_MODULUS)`.
    pub sum: i64,
    /// `MAX(_seq)`; `None` for an empty set.
    pub max: Option<SeqId>,
}

/// The checksum query for `live_sql` (its FROM and WHERE verbatim), optionally only over
/// rows with `_seq >= floor`. `None` when the SQL has no top-level FROM (cannot happen for
/// SQL that passed `validate_live_sql`).
pub fn checksum_sql(live_sql: &str, floor: Option<SeqId>) -> Option<String> {
    let sql = live_sql.trim().trim_end_matches(';').trim_end();
    let words = top_level_words(sql);
    let from = words
        .iter()
        .find(|(_, w)| w.eq_ignore_ascii_case("FROM"))?
        .0;
    let where_at = words
        .iter()
        .find(|(at, w)| *at > from && w.eq_ignore_ascii_case("WHERE"))
        .map(|(at, _)| *at);
    let head =
        format!("SELECT COUNT(*) AS c, SUM(_seq % {CHECKSUM_MODULUS}) AS s, MAX(_seq) AS m FROM");
    let rest = sql[from + 4..].trim();
    // Appended parts start on a new line: the SQL may end in a `--` comment.
    Some(match (where_at, floor) {
        (_, None) => format!("{head} {rest}"),
        (None, Some(f)) => format!("{head} {rest}\nWHERE _seq >= {f}"),
        (Some(w), Some(f)) => format!(
            "{head} {}\nWHERE ({}\n) AND _seq >= {f}",
            sql[from + 4..w].trim(),
            sql[w + 5..].trim()
        ),
    })
}

/// Byte offsets and text of the words outside quotes, comments and parentheses.
fn top_level_words(sql: &str) -> Vec<(usize, &str)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < b.len() {
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if depth == 0 {
                    out.push((start, &sql[start..i]));
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The figures from the JSON of a SQL answer: the client's normalised result
/// (`results[0].columns`) or the server's envelope (`results[0].schema`); values as numbers
/// or decimal strings, `null` for an empty set. An error envelope becomes its `KalamError`.
pub fn parse_checksum(json: &str) -> Result<Checksum, KalamError> {
    let v: Value = crate::core::json::parse(json)
        .map_err(|e| KalamError::protocol(format!("checksum answer is not JSON: {e}")))?;
    if let Some(err) = v.get("error").filter(|e| e.is_object()) {
        let text = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        return Err(KalamError::new(text("code"), text("message")));
    }
    let result = v
        .get("results")
        .and_then(|r| r.get(0))
        .ok_or_else(|| KalamError::protocol("checksum answer has no result"))?;
    let names: Vec<String> = result
        .get("columns")
        .or_else(|| result.get("schema"))
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| {
                    c.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_ascii_lowercase()
                })
                .collect()
        })
        .unwrap_or_default();
    let row = result
        .get("rows")
        .and_then(|r| r.get(0))
        .ok_or_else(|| KalamError::protocol("checksum answer has no row"))?;
    let cell = |name: &str, pos: usize| -> Option<&Value> {
        let at = names.iter().position(|n| n == name).unwrap_or(pos);
        match row {
            Value::Array(cells) => cells.get(at),
            Value::Object(map) => map.get(name),
            _ => None,
        }
    };
    let int = |v: Option<&Value>| -> Result<Option<i64>, KalamError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                KalamError::protocol(format!("checksum figure {n} is not an integer"))
            }),
            Some(Value::String(s)) => s.parse::<i64>().map(Some).map_err(|_| {
                KalamError::protocol(format!("checksum figure {} is not an integer", quote(s)))
            }),
            Some(other) => Err(KalamError::protocol(format!(
                "checksum figure {other} is not an integer"
            ))),
        }
    };
    let count = int(cell("c", 0))?.unwrap_or(0);
    Ok(Checksum {
        count: u64::try_from(count).unwrap_or(0),
        sum: int(cell("s", 1))?.unwrap_or(0),
        max: int(cell("m", 2))?.map(SeqId::new),
    })
}

/// A failed checksum query as a subscription error (the code stays the server's).
pub fn query_error(error: KalamError) -> KalamError {
    let code = if error.code.is_empty() {
        codes::PROTOCOL.to_string()
    } else {
        error.code.clone()
    };
    KalamError::new(
        code,
        format!(
            "the live verification query failed (rows are not being checked): {}",
            error.message
        ),
    )
    .retryable(error.retryable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_sql_reuses_from_and_where() {
        let head = "SELECT COUNT(*) AS c, SUM(_seq % 1000003) AS s, MAX(_seq) AS m FROM";
        assert_eq!(
            checksum_sql("SELECT * FROM app.t", None).unwrap(),
            format!("{head} app.t")
        );
        assert_eq!(
            checksum_sql(
                "select id, \"from\" FROM app.t WHERE n > 1 AND s = 'a where b';",
                None
            )
            .unwrap(),
            format!("{head} app.t WHERE n > 1 AND s = 'a where b'")
        );
        assert_eq!(
            checksum_sql(
                "SELECT * FROM app.t x WHERE x.n = 1 OR x.n = 2",
                Some(SeqId::new(42))
            )
            .unwrap(),
            format!("{head} app.t x\nWHERE (x.n = 1 OR x.n = 2\n) AND _seq >= 42")
        );
        assert_eq!(
            checksum_sql("SELECT * FROM app.t -- where\n", Some(SeqId::new(7))).unwrap(),
            format!("{head} app.t -- where\nWHERE _seq >= 7")
        );
        assert_eq!(checksum_sql("SELECT 1", None), None);
    }

    #[test]
    fn parses_normalised_and_raw_answers() {
        let norm = r#"{"results":[{"columns":[{"name":"c"},{"name":"s"},{"name":"m"}],"rows":[["3",12,"384000000000000001"]],"row_count":1}]}"#;
        assert_eq!(
            parse_checksum(norm).unwrap(),
            Checksum {
                count: 3,
                sum: 12,
                max: Some(SeqId::new(384000000000000001))
            }
        );
        let raw = r#"{"status":"success","results":[{"schema":[{"name":"c","data_type":"BigInt","index":0}],"rows":[[0,null,null]]}]}"#;
        assert_eq!(parse_checksum(raw).unwrap(), Checksum::default());
        let err = r#"{"status":"error","error":{"code":"SQL_EXECUTION_ERROR","message":"no"}}"#;
        assert_eq!(parse_checksum(err).unwrap_err().code, "SQL_EXECUTION_ERROR");
        assert!(parse_checksum("nope").is_err());
    }
}
