//! KalamDB data types, the §1.6 value encoding, SeqId generation and shared error type.

use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// KalamDB's column types, serialised on the wire with serde's external tagging (§1.5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KType {
    Boolean,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Text,
    Timestamp,
    Date,
    DateTime,
    Time,
    Json,
    Bytes,
    Uuid,
    File,
    Embedding(u32),
    Decimal { precision: u8, scale: u8 },
}

impl KType {
    /// Parses a SQL type name as written in `CREATE TABLE` or `CAST`.
    pub fn parse(sql: &str) -> Option<KType> {
        let s = sql.trim().to_ascii_uppercase();
        let (base, args) = match s.find('(') {
            Some(i) => (
                s[..i].trim().to_string(),
                s[i + 1..].trim_end_matches(')').to_string(),
            ),
            None => (s.clone(), String::new()),
        };
        let nums: Vec<u32> = args
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(match base.as_str() {
            "BOOLEAN" | "BOOL" => KType::Boolean,
            "SMALLINT" | "INT2" | "TINYINT" => KType::SmallInt,
            "INT" | "INTEGER" | "INT4" => KType::Int,
            "BIGINT" | "INT8" | "LONG" => KType::BigInt,
            "FLOAT" | "REAL" | "FLOAT4" => KType::Float,
            "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" => KType::Double,
            "TEXT" | "VARCHAR" | "STRING" | "CHAR" | "CHARACTER VARYING" => KType::Text,
            "TIMESTAMP" => KType::Timestamp,
            "DATE" => KType::Date,
            "DATETIME" | "TIMESTAMPTZ" => KType::DateTime,
            "TIME" => KType::Time,
            "JSON" | "JSONB" => KType::Json,
            "BYTES" | "BLOB" | "BYTEA" | "BINARY" | "VARBINARY" => KType::Bytes,
            "UUID" => KType::Uuid,
            "FILE" => KType::File,
            "EMBEDDING" | "VECTOR" => KType::Embedding(*nums.first()?),
            "DECIMAL" | "NUMERIC" => KType::Decimal {
                precision: nums.first().copied().unwrap_or(38) as u8,
                scale: nums.get(1).copied().unwrap_or(0) as u8,
            },
            _ => return None,
        })
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Declared type of the physical SQLite column (only the affinity matters).
    pub fn sqlite_decl(&self) -> &'static str {
        match self {
            KType::Boolean
            | KType::SmallInt
            | KType::Int
            | KType::BigInt
            | KType::Timestamp
            | KType::Date
            | KType::DateTime
            | KType::Time => "INTEGER",
            KType::Float | KType::Double | KType::Decimal { .. } => "REAL",
            KType::Bytes => "BLOB",
            _ => "TEXT",
        }
    }

    /// Encodes one stored cell per PROTOCOL.md §1.6 (shared by HTTP, WebSocket and topics).
    pub fn encode(&self, v: &SqlValue) -> Value {
        match (self, v) {
            (_, SqlValue::Null) => Value::Null,
            (KType::Boolean, SqlValue::Integer(i)) => Value::Bool(*i != 0),
            (KType::Boolean, SqlValue::Real(f)) => Value::Bool(*f != 0.0),
            (KType::Boolean, SqlValue::Text(t)) => Value::Bool(t.eq_ignore_ascii_case("true")),
            (KType::SmallInt | KType::Int, SqlValue::Integer(i)) => json!(i),
            (KType::SmallInt | KType::Int, SqlValue::Real(f)) => json!(*f as i64),
            (KType::BigInt, SqlValue::Integer(i)) => Value::String(i.to_string()),
            (KType::BigInt, SqlValue::Real(f)) => Value::String((*f as i64).to_string()),
            (KType::Float | KType::Double, SqlValue::Integer(i)) => json!(*i as f64),
            (KType::Float | KType::Double, SqlValue::Real(f)) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            (KType::Decimal { scale, .. }, SqlValue::Integer(i)) => {
                Value::String(format!("{:.*}", *scale as usize, *i as f64))
            }
            (KType::Decimal { scale, .. }, SqlValue::Real(f)) => {
                Value::String(format!("{:.*}", *scale as usize, f))
            }
            (
                KType::Timestamp | KType::DateTime | KType::Time | KType::Date,
                SqlValue::Integer(i),
            ) => json!(i),
            (KType::Bytes, SqlValue::Blob(b)) => json!(b),
            (KType::Bytes, SqlValue::Text(t)) => json!(t.as_bytes()),
            (KType::Embedding(_), SqlValue::Text(t)) => {
                serde_json::from_str(t).unwrap_or(Value::Null)
            }
            (_, SqlValue::Integer(i)) => Value::String(i.to_string()),
            (_, SqlValue::Real(f)) => Value::String(f.to_string()),
            (_, SqlValue::Text(t)) => Value::String(t.clone()),
            (_, SqlValue::Blob(b)) => json!(b),
        }
    }

    /// Converts a value computed by SQLite into the stored form of this type.
    pub fn coerce(&self, v: SqlValue, col: &str) -> Result<SqlValue, String> {
        let mismatch = |v: &SqlValue| {
            format!(
                "type mismatch and can't cast {:?} to {:?} for column '{col}'",
                v.data_type(),
                self
            )
        };
        Ok(match (self, v) {
            (_, SqlValue::Null) => SqlValue::Null,
            (KType::Boolean, SqlValue::Integer(i)) => SqlValue::Integer((i != 0) as i64),
            (KType::Boolean, SqlValue::Text(t)) => match t.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" => SqlValue::Integer(1),
                "false" | "f" | "0" => SqlValue::Integer(0),
                _ => return Err(mismatch(&SqlValue::Text(t))),
            },
            (KType::SmallInt | KType::Int | KType::BigInt, SqlValue::Integer(i)) => {
                SqlValue::Integer(i)
            }
            (KType::SmallInt | KType::Int | KType::BigInt, SqlValue::Real(f))
                if f.fract() == 0.0 =>
            {
                SqlValue::Integer(f as i64)
            }
            (KType::SmallInt | KType::Int | KType::BigInt, SqlValue::Text(t)) => {
                match t.trim().parse::<i64>() {
                    Ok(i) => SqlValue::Integer(i),
                    Err(_) => return Err(mismatch(&SqlValue::Text(t))),
                }
            }
            (KType::Float | KType::Double | KType::Decimal { .. }, SqlValue::Integer(i)) => {
                SqlValue::Real(i as f64)
            }
            (KType::Float | KType::Double | KType::Decimal { .. }, SqlValue::Real(f)) => {
                SqlValue::Real(f)
            }
            (KType::Float | KType::Double | KType::Decimal { .. }, SqlValue::Text(t)) => {
                match t.trim().parse::<f64>() {
                    Ok(f) => SqlValue::Real(f),
                    Err(_) => return Err(mismatch(&SqlValue::Text(t))),
                }
            }
            (KType::Timestamp | KType::DateTime, SqlValue::Integer(i)) => SqlValue::Integer(i),
            (KType::Timestamp | KType::DateTime, SqlValue::Text(t)) => match parse_timestamp(&t) {
                Some(us) => SqlValue::Integer(us),
                None => return Err(mismatch(&SqlValue::Text(t))),
            },
            (KType::Date, SqlValue::Integer(i)) => SqlValue::Integer(i),
            (KType::Date, SqlValue::Text(t)) => {
                match chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d") {
                    Ok(d) => SqlValue::Integer(
                        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
                            .num_days(),
                    ),
                    Err(_) => return Err(mismatch(&SqlValue::Text(t))),
                }
            }
            (KType::Time, SqlValue::Integer(i)) => SqlValue::Integer(i),
            (KType::Time, SqlValue::Text(t)) => {
                match chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M:%S%.f") {
                    Ok(tm) => SqlValue::Integer(
                        (tm - chrono::NaiveTime::MIN)
                            .num_microseconds()
                            .unwrap_or(0),
                    ),
                    Err(_) => return Err(mismatch(&SqlValue::Text(t))),
                }
            }
            // The real server cannot cast a text literal to its 16-byte UUID representation
            // (recorded in 20-sql.json), so neither do we.
            (KType::Uuid, v @ SqlValue::Text(_)) => return Err(mismatch(&v)),
            (KType::Bytes, SqlValue::Blob(b)) => SqlValue::Blob(b),
            (KType::Bytes, SqlValue::Text(t)) => SqlValue::Blob(t.into_bytes()),
            (KType::Json | KType::Embedding(_), SqlValue::Text(t)) => {
                if serde_json::from_str::<Value>(&t).is_err() {
                    return Err(format!("invalid JSON for column '{col}'"));
                }
                SqlValue::Text(t)
            }
            (_, SqlValue::Text(t)) => SqlValue::Text(t),
            (_, SqlValue::Integer(i)) => SqlValue::Text(i.to_string()),
            (_, SqlValue::Real(f)) => SqlValue::Text(f.to_string()),
            (_, v @ SqlValue::Blob(_)) => return Err(mismatch(&v)),
        })
    }
}

fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_micros())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// KalamDB's custom Snowflake epoch, 2024-01-01T00:00:00Z (§5).
pub const SNOWFLAKE_EPOCH_MS: i64 = 1_704_067_200_000;

/// Snowflake generator: bits 63..22 ms since the epoch, 21..12 worker 0, 11..0 sequence.
/// Strictly increasing even when the clock stalls or several ids fall in one millisecond.
#[derive(Default)]
pub struct SeqGen {
    last: Mutex<i64>,
}

impl SeqGen {
    pub fn next(&self) -> i64 {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let base = (now_ms() - SNOWFLAKE_EPOCH_MS) << 22;
        let v = if base > *last { base } else { *last + 1 };
        *last = v;
        v
    }

    /// Makes sure ids continue above values already stored (data directory reopened).
    pub fn observe(&self, v: i64) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if v > *last {
            *last = v;
        }
    }

    pub fn current(&self) -> i64 {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An error of the SQL endpoint, rendered into the §1.7 envelope.
#[derive(Debug, Clone)]
pub struct SqlError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// "Safe" errors keep their message for non-admin callers (§1.7 redaction).
    pub safe: bool,
    /// Execution-stage errors are prefixed with `Statement N failed: `.
    pub prefixed: bool,
}

impl SqlError {
    pub fn exec(msg: impl Into<String>) -> Self {
        SqlError {
            status: 400,
            code: "SQL_EXECUTION_ERROR",
            message: msg.into(),
            safe: false,
            prefixed: true,
        }
    }
    pub fn safe_exec(msg: impl Into<String>) -> Self {
        SqlError {
            safe: true,
            ..SqlError::exec(msg)
        }
    }
    pub fn invalid_sql(msg: impl Into<String>) -> Self {
        SqlError {
            status: 400,
            code: "INVALID_SQL",
            message: msg.into(),
            safe: false,
            prefixed: false,
        }
    }
    pub fn denied(msg: impl Into<String>) -> Self {
        SqlError {
            status: 403,
            code: "PERMISSION_DENIED",
            message: msg.into(),
            safe: true,
            prefixed: true,
        }
    }
    pub fn plain(status: u16, code: &'static str, msg: impl Into<String>) -> Self {
        SqlError {
            status,
            code,
            message: msg.into(),
            safe: true,
            prefixed: false,
        }
    }
    pub fn unprefixed(mut self) -> Self {
        self.prefixed = false;
        self
    }
}

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        SqlError::exec(format!("Execution error: {e}"))
    }
}

/// Roles as lowercase wire strings (§3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Service,
    Dba,
    System,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "user" => Some(Role::User),
            "service" => Some(Role::Service),
            "dba" => Some(Role::Dba),
            "system" => Some(Role::System),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Service => "service",
            Role::Dba => "dba",
            Role::System => "system",
        }
    }
    /// Rust-debug spelling used inside some server messages ("Role 'User' ...").
    pub fn title(&self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Service => "Service",
            Role::Dba => "Dba",
            Role::System => "System",
        }
    }
    pub fn is_admin(&self) -> bool {
        matches!(self, Role::Dba | Role::System)
    }
}

/// RFC 3339 with `+00:00` like chrono's `to_rfc3339` on the server.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

pub fn rfc3339_nanos(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_per_protocol() {
        assert_eq!(KType::BigInt.encode(&SqlValue::Integer(7)), json!("7"));
        assert_eq!(
            KType::Decimal {
                precision: 10,
                scale: 2
            }
            .encode(&SqlValue::Real(12.5)),
            json!("12.50")
        );
        assert_eq!(KType::Boolean.encode(&SqlValue::Integer(0)), json!(false));
        assert_eq!(
            KType::Date.coerce(SqlValue::Text("2026-01-02".into()), "d"),
            Ok(SqlValue::Integer(20455))
        );
        assert_eq!(
            KType::Time.coerce(SqlValue::Text("10:11:12".into()), "t"),
            Ok(SqlValue::Integer(36_672_000_000))
        );
        assert_eq!(
            serde_json::to_value(KType::Decimal {
                precision: 10,
                scale: 2
            })
            .unwrap(),
            json!({"Decimal": {"precision": 10, "scale": 2}})
        );
    }

    #[test]
    fn seq_is_strictly_increasing() {
        let g = SeqGen::default();
        let mut prev = 0;
        for _ in 0..10_000 {
            let v = g.next();
            assert!(v > prev);
            prev = v;
        }
        assert!((prev >> 22) + SNOWFLAKE_EPOCH_MS <= now_ms());
    }
}
