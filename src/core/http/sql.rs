//! Building `POST /v1/api/sql` requests (PROTOCOL.md §1.1, §1.3, §3.7): bound parameters,
//! client-side limits, the `insert` / `update` / `delete` / `executeAsUser` builders, and the
//! statement classification the retry policy needs.
//!
//! Values are never written into SQL text: every user value becomes a `$n` parameter. The
//! only literal the builders emit is the keyword `NULL` for null values (constant text,
//! avoids binding a text-typed NULL into a typed column).

use crate::core::error::{KalamError, Result};
use crate::core::json::{parse, ArrayWriter, Map, Number, ObjectWriter, ToJson, Value};
use crate::core::text;

// ------------------------------------------------------------------------------------------
// Parameters
// ------------------------------------------------------------------------------------------

/// One positional parameter, as the server binds it (§1.1): NULL, BOOLEAN, BIGINT (a JSON
/// integer), DOUBLE (a JSON fraction) or TEXT.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    /// Written as an exact JSON integer (never through f64).
    Int(i64),
    /// Written as a JSON number with a fraction or exponent (`2.0`, `1e300`): the caller's
    /// number text, kept exact (never formatted from an `f64`); must be finite.
    Float(Number),
    Text(String),
}

/// The JSON form a JS `BigInt` takes on its way in: `{"$bigint": "<decimal>"}`. The shell
/// produces it with `JSON.stringify(params, (k, v) => typeof v === 'bigint' ? { $bigint:
/// v.toString() } : v)`; it is unambiguous because the server rejects object parameters.
pub const BIGINT_TAG: &str = "$bigint";

impl Param {
    /// An exact BIGINT from a decimal string (JS `BigInt.prototype.toString()`), e.g.
    /// `"-9223372036854775808"`. Out of the i64 range → `INVALID_ARGUMENT`.
    pub fn big_int(decimal: &str) -> Result<Param> {
        parse_i64_strict(decimal).map(Param::Int).ok_or_else(|| {
            KalamError::invalid_argument(format!(
                "\"{decimal}\" is not a 64-bit signed integer (BIGINT range)"
            ))
        })
    }

    /// A parameter from a JSON value, as a query parameter: objects and arrays are
    /// rejected (the server cannot bind them, §1.1) except the `{"$bigint": "…"}` form.
    /// Integers that fit i64 become `Int`; other numbers `Float`.
    pub fn from_json(value: &Value) -> Result<Param> {
        Param::convert(value, false)
    }

    /// A parameter from a JSON value for a row builder (`insert` / `update`): like
    /// [`Param::from_json`], but objects and arrays become their JSON text (`Text`), which
    /// is how JSON columns are stored (§2).
    pub fn from_row_value(value: &Value) -> Result<Param> {
        Param::convert(value, true)
    }

    fn convert(value: &Value, structured_as_text: bool) -> Result<Param> {
        Ok(match value {
            Value::Null => Param::Null,
            Value::Bool(b) => Param::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Param::Int(i)
                } else {
                    // u64 above i64::MAX (it came from a JS double anyway) or a fraction.
                    Param::Float(n.clone())
                }
            }
            Value::String(s) => Param::Text(s.clone()),
            Value::Object(map) if map.len() == 1 && map.contains_key(BIGINT_TAG) => {
                match &map[BIGINT_TAG] {
                    Value::String(s) => Param::big_int(s)?,
                    Value::Number(n) if n.is_i64() => Param::Int(n.as_i64().unwrap_or(0)),
                    other => {
                        return Err(KalamError::invalid_argument(format!(
                            "{BIGINT_TAG} needs a decimal string, got {other}"
                        )))
                    }
                }
            }
            Value::Object(_) | Value::Array(_) if structured_as_text => {
                Param::Text(value.to_string())
            }
            Value::Array(_) => {
                return Err(KalamError::invalid_argument(
                    "array parameters are not supported by the server; pass JSON text or bind each element",
                ))
            }
            Value::Object(_) => {
                return Err(KalamError::invalid_argument(
                    "object parameters are not supported by the server; pass JSON text (JSON.stringify)",
                ))
            }
        })
    }

    /// The byte size the server counts against `max_parameter_size_bytes` (text length;
    /// scalars are tiny).
    fn size_bytes(&self) -> usize {
        match self {
            Param::Text(s) => s.len(),
            _ => 8,
        }
    }
}

impl ToJson for Param {
    fn write_json(&self, out: &mut String) {
        match self {
            Param::Null => out.push_str("null"),
            Param::Bool(b) => b.write_json(out),
            Param::Int(i) => i.write_json(out),
            Param::Float(n) => {
                n.write_json(out);
                // An integer beyond i64 stays a DOUBLE for the server (serde wrote it as one).
                if n.is_integer() {
                    out.push_str(".0");
                }
            }
            Param::Text(t) => t.write_json(out),
        }
    }
}

/// Parses a JSON array text of parameters (see [`Param::from_json`] and [`BIGINT_TAG`]).
/// `null` / empty text means no parameters.
pub fn params_from_json(text: &str) -> Result<Vec<Param>> {
    let text = text.trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    let value = parse(text)
        .map_err(|e| KalamError::invalid_argument(format!("params are not valid JSON: {e}")))?;
    match value {
        // A loop, not `collect::<Result<..>>` (its adapter is a monomorph of its own).
        Value::Array(items) => {
            let mut params = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                params.push(Param::from_json(v).map_err(|e| {
                    KalamError::invalid_argument(format!("parameter ${}: {}", i + 1, e.message))
                })?);
            }
            Ok(params)
        }
        _ => Err(KalamError::invalid_argument("params must be a JSON array")),
    }
}

/// Strict decimal i64 (one rule for SQL params and cells).
pub(crate) use crate::core::cells::parse_i64_strict;

// ------------------------------------------------------------------------------------------
// Limits and the request
// ------------------------------------------------------------------------------------------

/// Client-side copies of the server limits (§1.1 defaults). A server configured with larger
/// limits needs these raised too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlLimits {
    /// `execution.max_parameters` (default 50).
    pub max_params: usize,
    /// `execution.max_parameter_size_bytes` (default 512 KiB).
    pub max_param_bytes: usize,
    /// `MAX_SQL_QUERY_LENGTH` (1 MiB).
    pub max_sql_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_params: 50,
            max_param_bytes: 512 * 1024,
            max_sql_bytes: 1024 * 1024,
        }
    }
}

/// A `POST /v1/api/sql` request (JSON form).
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRequest {
    pub sql: String,
    pub params: Vec<Param>,
    /// Namespace for unqualified table names (server default `"default"`).
    pub namespace_id: Option<String>,
}

impl SqlRequest {
    pub fn new(sql: impl Into<String>) -> SqlRequest {
        SqlRequest {
            sql: sql.into(),
            params: Vec::new(),
            namespace_id: None,
        }
    }

    pub fn with_params(mut self, params: Vec<Param>) -> SqlRequest {
        self.params = params;
        self
    }

    pub fn with_namespace(mut self, namespace_id: Option<String>) -> SqlRequest {
        self.namespace_id = namespace_id.filter(|n| !n.is_empty());
        self
    }

    /// Rejects, with `INVALID_ARGUMENT`, what the server would reject anyway: empty SQL,
    /// SQL over the length limit, too many or too large parameters, non-finite floats,
    /// parameters with a multi-statement batch, and `FILE(...)` placeholders (they need the
    /// multipart form, see `files::UploadForm`).
    pub fn validate(&self, limits: &SqlLimits) -> Result<()> {
        self.validate_common(limits)?;
        if !crate::core::http::files::file_placeholders(&self.sql).is_empty() {
            return Err(KalamError::invalid_argument(
                "FILE(...) placeholders need a multipart upload (queryWithFiles)",
            ));
        }
        Ok(())
    }

    pub(crate) fn validate_common(&self, limits: &SqlLimits) -> Result<()> {
        if self.sql.trim().is_empty() {
            return Err(KalamError::invalid_argument("the SQL text is empty"));
        }
        if self.sql.len() > limits.max_sql_bytes {
            return Err(KalamError::invalid_argument(format!(
                "the SQL text is {} bytes; the server accepts at most {}",
                self.sql.len(),
                limits.max_sql_bytes
            )));
        }
        if self.params.len() > limits.max_params {
            return Err(KalamError::invalid_argument(format!(
                "{} parameters given; the server accepts at most {}",
                self.params.len(),
                limits.max_params
            )));
        }
        for (i, p) in self.params.iter().enumerate() {
            if let Param::Float(f) = p {
                // `1e400` would reach the server as an infinity.
                if !f.is_finite_f64() {
                    return Err(KalamError::invalid_argument(format!(
                        "parameter ${} is {f}; only finite numbers can be sent",
                        i + 1
                    )));
                }
            }
            if p.size_bytes() > limits.max_param_bytes {
                return Err(KalamError::invalid_argument(format!(
                    "parameter ${} is {} bytes; the server accepts at most {}",
                    i + 1,
                    p.size_bytes(),
                    limits.max_param_bytes
                )));
            }
        }
        if !self.params.is_empty() && statement_count(&self.sql) > 1 {
            return Err(KalamError::invalid_argument(
                "parameters cannot be used with a multi-statement batch",
            ));
        }
        Ok(())
    }

    /// The JSON body (without validation). `params` is omitted when empty, `namespace_id`
    /// when absent.
    pub fn body_json(&self) -> String {
        params_body(&self.sql, &self.params, self.namespace_id.as_deref())
    }

    /// [`SqlRequest::validate`] then [`SqlRequest::body_json`].
    pub fn to_json(&self, limits: &SqlLimits) -> Result<String> {
        self.validate(limits)?;
        Ok(self.body_json())
    }

    /// Whether the request may be retried on a transport error (see [`is_idempotent`]).
    pub fn is_idempotent(&self) -> bool {
        is_idempotent(&self.sql)
    }

    /// The table FILE cells of the answer belong to, when the SQL is a simple
    /// single-table SELECT (see [`single_table`]).
    pub fn file_table(&self) -> Option<TableRef> {
        single_table(&self.sql, self.namespace_id.as_deref())
    }

    /// The table FILE cells belong to: `explicit` (`table` or `ns.table`, e.g. the
    /// `queryRows` argument) when given and valid, with an unqualified name placed in this
    /// request's `namespace_id` like the server does; else [`SqlRequest::file_table`].
    pub fn file_table_or(&self, explicit: Option<&str>) -> Option<TableRef> {
        match explicit.and_then(|t| TableRef::parse(t).ok()) {
            Some(mut table) => {
                if table.namespace.is_none() {
                    table.namespace = self.namespace_id.clone();
                }
                Some(table)
            }
            None => self.file_table(),
        }
    }
}

/// Parses a `{column: value}` row given as JSON text (for the JSON-text variants of the
/// builders below).
pub fn row_from_json(text: &str) -> Result<Map> {
    match parse(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(KalamError::invalid_argument("a row must be a JSON object")),
        Err(e) => Err(KalamError::invalid_argument(format!(
            "the row is not valid JSON: {e}"
        ))),
    }
}

/// [`insert`] with the row as JSON text.
pub fn insert_json(table: &str, row_json: &str) -> Result<SqlRequest> {
    insert(table, &row_from_json(row_json)?)
}

/// [`update`] with the key (see [`key_from_json`]) and the changes as JSON text.
pub fn update_json(table: &str, key_json: &str, changes_json: &str) -> Result<SqlRequest> {
    update(
        table,
        &key_from_json_text(key_json)?,
        &row_from_json(changes_json)?,
    )
}

/// [`delete`] with the key (see [`key_from_json`]) as JSON text.
pub fn delete_json(table: &str, key_json: &str) -> Result<SqlRequest> {
    delete(table, &key_from_json_text(key_json)?)
}

/// [`key_from_json`] from JSON text.
pub fn key_from_json_text(text: &str) -> Result<Key> {
    let value = parse(text)
        .map_err(|e| KalamError::invalid_argument(format!("the row key is not valid JSON: {e}")))?;
    key_from_json(&value)
}

fn params_body(sql: &str, params: &[Param], namespace_id: Option<&str>) -> String {
    let mut out = String::with_capacity(sql.len() + 16 + params.len() * 8);
    let mut w = ObjectWriter::new(&mut out);
    w.field("sql", sql)
        .nonempty_field("params", params)
        .opt_field("namespace_id", &namespace_id);
    w.finish();
    out
}

/// The JSON text of a parameter array (the multipart `params` part).
pub fn params_json(params: &[Param]) -> String {
    let mut out = String::new();
    let mut w = ArrayWriter::new(&mut out);
    for p in params {
        w.item(p);
    }
    w.finish();
    out
}

// ------------------------------------------------------------------------------------------
// Identifiers and builders
// ------------------------------------------------------------------------------------------

/// Quotes one identifier as `"name"`. KalamDB folds identifiers to lowercase (unquoted
/// names are case-insensitive), so ASCII letters are lowercased to keep the meaning the
/// same name has unquoted; quoting makes reserved words and odd characters safe. Names
/// that cannot be quoted safely (empty, containing `"`, NUL or control characters, longer
/// than 256 bytes) → `INVALID_ARGUMENT`.
pub fn quote_ident(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(KalamError::invalid_argument("an identifier is empty"));
    }
    if name.len() > 256 {
        return Err(KalamError::invalid_argument(format!(
            "identifier too long ({} bytes)",
            name.len()
        )));
    }
    if text::has(name, b'"') || name.chars().any(char::is_control) {
        return Err(KalamError::invalid_argument(format!(
            "identifier \"{name}\" contains a double quote or control character"
        )));
    }
    if name.trim() != name {
        return Err(KalamError::invalid_argument(format!(
            "identifier \"{name}\" has leading or trailing whitespace"
        )));
    }
    Ok(format!("\"{}\"", name.to_ascii_lowercase()))
}

/// A table name, `table` or `namespace.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub namespace: Option<String>,
    pub table: String,
}

impl TableRef {
    /// Parses `table` or `namespace.table` (exactly one dot at most; each part must be
    /// quotable, see [`quote_ident`]).
    pub fn parse(name: &str) -> Result<TableRef> {
        let parts: Vec<&str> = name.split('.').collect();
        let table = match parts.as_slice() {
            [table] => TableRef {
                namespace: None,
                table: table.to_string(),
            },
            [ns, table] => TableRef {
                namespace: Some(ns.to_string()),
                table: table.to_string(),
            },
            _ => {
                return Err(KalamError::invalid_argument(format!(
                    "table name \"{name}\" must be `table` or `namespace.table`"
                )))
            }
        };
        table.sql()?;
        Ok(table)
    }

    /// `"ns"."table"` or `"table"`.
    pub fn sql(&self) -> Result<String> {
        let table = quote_ident(&self.table)?;
        Ok(match &self.namespace {
            Some(ns) => format!("{}.{}", quote_ident(ns)?, table),
            None => table,
        })
    }

    /// The namespace, or `fallback` (the request's `namespace_id`, else `"default"`).
    pub fn namespace_or<'a>(&'a self, fallback: Option<&'a str>) -> &'a str {
        self.namespace
            .as_deref()
            .or(fallback)
            .unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// The server's namespace for unqualified names when no `namespace_id` is sent.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The key column used when a row key is given as a bare value (the official SDK's `id`).
pub const DEFAULT_KEY_COLUMN: &str = "id";

/// A row key: `(column, value)` pairs combined with AND.
pub type Key = Vec<(String, Param)>;

/// A key from JSON: an object is `{column: value}` (composite keys allowed); any other
/// value is the value of the `id` column. Null key values and empty objects →
/// `INVALID_ARGUMENT`. Values follow [`Param::from_json`] (BigInt via `{"$bigint": …}`).
pub fn key_from_json(value: &Value) -> Result<Key> {
    let pairs: Vec<(String, &Value)> = match value {
        Value::Object(map) if !(map.len() == 1 && map.contains_key(BIGINT_TAG)) => {
            map.iter().map(|(k, v)| (k.clone(), v)).collect()
        }
        other => vec![(DEFAULT_KEY_COLUMN.to_string(), other)],
    };
    if pairs.is_empty() {
        return Err(KalamError::invalid_argument("the row key is empty"));
    }
    pairs
        .into_iter()
        .map(|(col, v)| {
            if v.is_null() {
                return Err(KalamError::invalid_argument(format!(
                    "key column \"{col}\" is null; a key needs a value"
                )));
            }
            Ok((col, Param::from_json(v)?))
        })
        .collect()
}

fn push_param(sql: &mut String, params: &mut Vec<Param>, value: Param) {
    if value == Param::Null {
        sql.push_str("NULL");
    } else {
        params.push(value);
        sql.push('$');
        sql.push_str(&params.len().to_string());
    }
}

fn row_pairs(row: &Map, what: &str) -> Result<Vec<(String, Param)>> {
    if row.is_empty() {
        return Err(KalamError::invalid_argument(format!(
            "{what} has no columns"
        )));
    }
    // Sorted by column name: the same SQL text whatever order the caller's object had.
    // A loop, not `collect::<Result<..>>` (its adapter is a monomorph of its own).
    let mut pairs = Vec::with_capacity(row.len());
    for (k, v) in row.iter() {
        let p = Param::from_row_value(v)
            .map_err(|e| KalamError::invalid_argument(format!("column \"{k}\": {}", e.message)))?;
        pairs.push((k.clone(), p));
    }
    Ok(crate::core::sort::sorted(pairs, &|a, b| a.0.cmp(&b.0)))
}

fn where_clause(sql: &mut String, params: &mut Vec<Param>, key: &Key) -> Result<()> {
    if key.is_empty() {
        return Err(KalamError::invalid_argument("the row key is empty"));
    }
    sql.push_str(" WHERE ");
    for (i, (col, value)) in key.iter().enumerate() {
        if i > 0 {
            sql.push_str(" AND ");
        }
        if *value == Param::Null {
            return Err(KalamError::invalid_argument(format!(
                "key column \"{col}\" is null; a key needs a value"
            )));
        }
        sql.push_str(&quote_ident(col)?);
        sql.push_str(" = ");
        push_param(sql, params, value.clone());
    }
    Ok(())
}

/// `INSERT INTO "ns"."t" ("a", "b") VALUES ($1, $2)` from a `{column: value}` row (JSON
/// object; objects/arrays become JSON text, see [`Param::from_row_value`]).
pub fn insert(table: &str, row: &Map) -> Result<SqlRequest> {
    let table = TableRef::parse(table)?;
    let pairs = row_pairs(row, "the row")?;
    let mut sql = format!("INSERT INTO {} (", table.sql()?);
    for (i, (col, _)) in pairs.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote_ident(col)?);
    }
    sql.push_str(") VALUES (");
    let mut params = Vec::with_capacity(pairs.len());
    for (i, (_, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        push_param(&mut sql, &mut params, value);
    }
    sql.push(')');
    Ok(SqlRequest::new(sql).with_params(params))
}

/// `UPDATE "ns"."t" SET "a" = $1, "b" = NULL WHERE "id" = $2`.
pub fn update(table: &str, key: &Key, changes: &Map) -> Result<SqlRequest> {
    let table = TableRef::parse(table)?;
    let pairs = row_pairs(changes, "the update")?;
    let mut sql = format!("UPDATE {} SET ", table.sql()?);
    let mut params = Vec::with_capacity(pairs.len() + key.len());
    for (i, (col, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote_ident(&col)?);
        sql.push_str(" = ");
        push_param(&mut sql, &mut params, value);
    }
    where_clause(&mut sql, &mut params, key)?;
    Ok(SqlRequest::new(sql).with_params(params))
}

/// `DELETE FROM "ns"."t" WHERE "id" = $1`.
pub fn delete(table: &str, key: &Key) -> Result<SqlRequest> {
    let table = TableRef::parse(table)?;
    let mut sql = format!("DELETE FROM {}", table.sql()?);
    let mut params = Vec::with_capacity(key.len());
    where_clause(&mut sql, &mut params, key)?;
    Ok(SqlRequest::new(sql).with_params(params))
}

/// `EXECUTE AS USER '<user>' (<sql>)` (§3.7): surrounding whitespace and trailing
/// semicolons of `sql` trimmed, single quotes in the user id doubled. Empty SQL or user,
/// or a user id with NUL / control characters → `INVALID_ARGUMENT`.
pub fn execute_as_user(sql: &str, user: &str) -> Result<String> {
    let mut inner = sql.trim();
    while let Some(stripped) = inner.strip_suffix(';') {
        inner = stripped.trim_end();
    }
    if inner.is_empty() {
        return Err(KalamError::invalid_argument(
            "executeAsUser needs a non-empty SQL statement",
        ));
    }
    let user = user.trim();
    if user.is_empty() {
        return Err(KalamError::invalid_argument(
            "executeAsUser needs a user id",
        ));
    }
    if user.chars().any(char::is_control) {
        return Err(KalamError::invalid_argument(
            "the user id contains control characters",
        ));
    }
    // KalamDB user ids (PROTOCOL.md §9.4): no `..`, `/` or `\` (they name storage paths).
    if text::find(user, b"..").is_some() || text::has(user, b'/') || text::has(user, b'\\') {
        return Err(KalamError::invalid_argument(format!(
            "the user id \"{user}\" contains `..`, `/` or `\\`, which KalamDB user ids never do"
        )));
    }
    Ok(format!(
        "EXECUTE AS USER '{}' ({inner})",
        user.replace('\'', "''")
    ))
}

// The SQL lexer is shared with the live SQL checks (one lexer, one table-name rule).
pub(crate) use crate::core::sql_lexer as lexer;
use lexer::unwrap_execute_as;
pub(crate) use lexer::{lex, statements, Tok};

/// Number of non-empty statements (quotes and comments respected).
pub fn statement_count(sql: &str) -> usize {
    statements(&lex(sql)).len()
}

fn statement_is_read_only(stmt: &[Tok<'_>]) -> bool {
    let stmt = unwrap_execute_as(stmt);
    let Some(first) = stmt.first() else {
        return false;
    };
    if first.is_word("SELECT") || first.is_word("SHOW") || first.is_word("DESCRIBE") {
        return true;
    }
    if first.is_word("EXPLAIN") {
        // EXPLAIN ANALYZE runs the statement: classify what it explains.
        let rest = &stmt[1..];
        if rest.first().is_some_and(|t| t.is_word("ANALYZE")) {
            let mut inner = &rest[1..];
            while inner.first().is_some_and(|t| t.is_word("VERBOSE")) {
                inner = &inner[1..];
            }
            return statement_is_read_only(inner);
        }
        return true;
    }
    false
}

/// Whether `sql` only reads: every statement (after leading comments and whitespace, and
/// inside `EXECUTE AS USER '…' (…)`) starts with SELECT, SHOW, DESCRIBE or EXPLAIN
/// (`EXPLAIN ANALYZE` counts as what it runs). Only such requests are retried on transport
/// errors. Conservative: `WITH …`, `CONSUME …` and anything unrecognised are writes.
pub fn is_idempotent(sql: &str) -> bool {
    let toks = lex(sql);
    let stmts = statements(&toks);
    !stmts.is_empty() && stmts.iter().all(|s| statement_is_read_only(s))
}

/// Best effort: the one table a single-statement `SELECT … FROM <table> …` reads (no
/// joins, no comma lists, no subquery in FROM), with the namespace filled from
/// `namespace_id` (else `"default"`). Used to give FILE cells a download path. `None` when
/// unsure.
pub fn single_table(sql: &str, namespace_id: Option<&str>) -> Option<TableRef> {
    let (namespace, table) = lexer::select_table(sql)?;
    Some(TableRef {
        namespace: Some(
            namespace.unwrap_or_else(|| namespace_id.unwrap_or(DEFAULT_NAMESPACE).to_string()),
        ),
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::codes;
    use crate::core::json::json;

    fn obj(v: Value) -> Map {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn body_matches_recorded_request() {
        // 20-sql.json: params of each JSON type.
        let params =
            params_from_json(r#"["main","hello",1.5,7,true,"{\"a\":1,\"b\":[1,2]}"]"#).unwrap();
        let req = SqlRequest::new(
            "INSERT INTO wire445072.inbox (room, body, score, n, flag, meta) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .with_params(params);
        let body = req.to_json(&SqlLimits::default()).unwrap();
        assert_eq!(
            body,
            r#"{"sql":"INSERT INTO wire445072.inbox (room, body, score, n, flag, meta) VALUES ($1, $2, $3, $4, $5, $6)","params":["main","hello",1.5,7,true,"{\"a\":1,\"b\":[1,2]}"]}"#
        );
        let bare = SqlRequest::new("SELECT body FROM inbox").with_namespace(Some("wire".into()));
        assert_eq!(
            bare.body_json(),
            r#"{"sql":"SELECT body FROM inbox","namespace_id":"wire"}"#
        );
        assert_eq!(
            SqlRequest::new("SELECT 1")
                .with_namespace(Some(String::new()))
                .body_json(),
            r#"{"sql":"SELECT 1"}"#
        );
    }

    #[test]
    fn big_integers_are_exact() {
        let p = params_from_json(
            r#"[{"$bigint":"9223372036854775807"},{"$bigint":"-9223372036854775808"},9007199254740993,null,2.0]"#,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                Param::Int(i64::MAX),
                Param::Int(i64::MIN),
                Param::Int(9007199254740993),
                Param::Null,
                Param::Float(Number::from_text("2.0").unwrap())
            ]
        );
        assert_eq!(
            params_json(&p),
            "[9223372036854775807,-9223372036854775808,9007199254740993,null,2.0]"
        );
        assert_eq!(
            Param::big_int("7530642462960779264").unwrap(),
            Param::Int(7530642462960779264)
        );
        for bad in [
            "9223372036854775808",
            "1.5",
            "",
            "-",
            "+1",
            " 1",
            "01",
            "1e3",
        ] {
            assert_eq!(
                Param::big_int(bad).unwrap_err().code,
                codes::INVALID_ARGUMENT,
                "{bad}"
            );
        }
        assert_eq!(Param::big_int("0").unwrap(), Param::Int(0));
        assert_eq!(Param::big_int("-0").unwrap(), Param::Int(0));
        // A u64 beyond i64 came from a JS double: sent as a double.
        assert!(matches!(
            params_from_json("[18446744073709551615]").unwrap()[0],
            Param::Float(_)
        ));
    }

    #[test]
    fn rejects_what_the_server_rejects() {
        let l = SqlLimits::default();
        let err = params_from_json("[[1,2]]").unwrap_err();
        assert_eq!(err.code, codes::INVALID_ARGUMENT);
        assert!(err.message.contains("$1"), "{}", err.message);
        assert!(params_from_json(r#"[1,{"a":1}]"#)
            .unwrap_err()
            .message
            .contains("$2"));
        assert!(params_from_json(r#"{"a":1}"#).is_err());
        assert!(params_from_json("[1,").is_err());
        assert!(params_from_json(r#"[{"$bigint":1.5}]"#).is_err());
        assert_eq!(params_from_json("null").unwrap(), vec![]);
        assert_eq!(params_from_json("").unwrap(), vec![]);

        let many = SqlRequest::new("SELECT 1").with_params(vec![Param::Int(1); 51]);
        assert_eq!(many.validate(&l).unwrap_err().code, codes::INVALID_ARGUMENT);
        assert!(SqlRequest::new("SELECT 1")
            .with_params(vec![Param::Int(1); 50])
            .validate(&l)
            .is_ok());
        let big =
            SqlRequest::new("SELECT $1").with_params(vec![Param::Text("x".repeat(512 * 1024 + 1))]);
        assert!(big.validate(&l).is_err());
        let inf = params_from_json("[1e400]").unwrap();
        let inf = SqlRequest::new("SELECT $1").with_params(inf);
        assert!(inf.validate(&l).is_err());
        let exact = params_from_json("[1.50, -2.5e-3, 18446744073709551615]").unwrap();
        assert_eq!(params_json(&exact), "[1.50,-2.5e-3,18446744073709551615.0]");
        assert!(SqlRequest::new("SELECT $1, $2, $3")
            .with_params(exact)
            .validate(&l)
            .is_ok());
        assert!(SqlRequest::new("  ").validate(&l).is_err());
        assert!(SqlRequest::new("x".repeat(1024 * 1024 + 1))
            .validate(&l)
            .is_err());
        let batch = SqlRequest::new("SELECT 1; SELECT 2").with_params(vec![Param::Int(1)]);
        assert!(batch.validate(&l).is_err());
        // A semicolon in a literal or a trailing one is not a batch.
        assert!(SqlRequest::new("SELECT ';' AS x, $1;")
            .with_params(vec![Param::Int(1)])
            .validate(&l)
            .is_ok());
        let file = SqlRequest::new("INSERT INTO ns.docs (name, f) VALUES ('x', FILE(\"doc\"))");
        assert!(file.validate(&l).is_err());
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("Messages").unwrap(), "\"messages\"");
        assert_eq!(quote_ident("select").unwrap(), "\"select\"");
        assert_eq!(quote_ident("my col").unwrap(), "\"my col\"");
        for bad in ["", "a\"b", "a\0b", "a\nb", " a"] {
            assert!(quote_ident(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            TableRef::parse("app.messages").unwrap().sql().unwrap(),
            "\"app\".\"messages\""
        );
        assert_eq!(
            TableRef::parse("todos").unwrap().sql().unwrap(),
            "\"todos\""
        );
        for bad in ["a.b.c", ".t", "ns.", "", "ns.\"t\""] {
            assert!(TableRef::parse(bad).is_err(), "{bad:?}");
        }
        let t = TableRef::parse("todos").unwrap();
        assert_eq!(t.namespace_or(None), "default");
        assert_eq!(t.namespace_or(Some("app")), "app");
        // queryRows' table: unqualified names take the request's namespace, as on the server.
        let req = SqlRequest::new("SELECT f FROM docs").with_namespace(Some("app".into()));
        let t = req.file_table_or(Some("docs")).unwrap();
        assert_eq!(
            (t.namespace.as_deref(), t.table.as_str()),
            (Some("app"), "docs")
        );
        let t = req.file_table_or(Some("other.docs")).unwrap();
        assert_eq!(t.namespace.as_deref(), Some("other"));
        let t = req.file_table_or(None).unwrap();
        assert_eq!(
            (t.namespace.as_deref(), t.table.as_str()),
            (Some("app"), "docs")
        );
        assert_eq!(req.file_table_or(Some("a.b.c")), req.file_table());
        let plain = SqlRequest::new("SELECT 1");
        assert_eq!(
            plain
                .file_table_or(Some("docs"))
                .unwrap()
                .namespace_or(None),
            "default"
        );
    }

    #[test]
    fn builds_insert_update_delete_with_params_only() {
        let ins = insert(
            "app.messages",
            &obj(json!({"body": "hi'); DROP TABLE x; --", "n": 7, "meta": {"a": [1]}, "gone": null, "big": {"$bigint": "9223372036854775807"}})),
        )
        .unwrap();
        assert_eq!(
            ins.sql,
            "INSERT INTO \"app\".\"messages\" (\"big\", \"body\", \"gone\", \"meta\", \"n\") VALUES ($1, $2, NULL, $3, $4)"
        );
        assert_eq!(
            ins.params,
            vec![
                Param::Int(i64::MAX),
                Param::Text("hi'); DROP TABLE x; --".into()),
                Param::Text("{\"a\":[1]}".into()),
                Param::Int(7)
            ]
        );
        ins.validate(&SqlLimits::default()).unwrap();

        // Text ids and ids containing SQL words are just values.
        let key = key_from_json(&json!("delete from users where 1=1")).unwrap();
        let del = delete("app.messages", &key).unwrap();
        assert_eq!(
            del.sql,
            "DELETE FROM \"app\".\"messages\" WHERE \"id\" = $1"
        );
        assert_eq!(
            del.params,
            vec![Param::Text("delete from users where 1=1".into())]
        );

        let key = key_from_json(&json!({"$bigint": "7530642462960779264"})).unwrap();
        let upd = update(
            "chat.messages",
            &key,
            &obj(json!({"status": "delivered", "n": null})),
        )
        .unwrap();
        assert_eq!(
            upd.sql,
            "UPDATE \"chat\".\"messages\" SET \"n\" = NULL, \"status\" = $1 WHERE \"id\" = $2"
        );
        assert_eq!(
            upd.params,
            vec![
                Param::Text("delivered".into()),
                Param::Int(7530642462960779264)
            ]
        );

        let composite = key_from_json(&json!({"room": "r1", "seq": 3})).unwrap();
        let del = delete("t", &composite).unwrap();
        assert_eq!(
            del.sql,
            "DELETE FROM \"t\" WHERE \"room\" = $1 AND \"seq\" = $2"
        );

        assert!(key_from_json(&json!(null)).is_err());
        assert!(key_from_json(&json!({})).is_err());
        assert!(key_from_json(&json!({"id": null})).is_err());
        assert!(key_from_json(&json!([1])).is_err());
        assert!(insert("t", &Map::new()).is_err());
        assert!(update("t", &key, &Map::new()).is_err());
        assert!(insert("t", &obj(json!({"a\"b": 1}))).is_err());
        assert!(delete("a.b.c", &key).is_err());
    }

    #[test]
    fn json_text_variants() {
        let ins = insert_json("ns.t", r#"{"a": 1}"#).unwrap();
        assert_eq!(ins.sql, "INSERT INTO \"ns\".\"t\" (\"a\") VALUES ($1)");
        let upd =
            update_json("ns.t", r#"{"$bigint":"9007199254740993"}"#, r#"{"a": "x"}"#).unwrap();
        assert_eq!(
            upd.params,
            vec![Param::Text("x".into()), Param::Int(9007199254740993)]
        );
        let del = delete_json("ns.t", "\"abc\"").unwrap();
        assert_eq!(del.params, vec![Param::Text("abc".into())]);
        assert!(insert_json("t", "[1]").is_err());
        assert!(insert_json("t", "{").is_err());
        assert!(delete_json("t", "").is_err());
        let req = SqlRequest::new("SELECT f FROM docs").with_namespace(Some("app".into()));
        assert_eq!(
            req.file_table(),
            Some(TableRef {
                namespace: Some("app".into()),
                table: "docs".into()
            })
        );
    }

    #[test]
    fn wraps_execute_as_user() {
        assert_eq!(
            execute_as_user("  SELECT * FROM ns.t ;; ", "alice").unwrap(),
            "EXECUTE AS USER 'alice' (SELECT * FROM ns.t)"
        );
        assert_eq!(
            execute_as_user("DELETE FROM t", "o'brien").unwrap(),
            "EXECUTE AS USER 'o''brien' (DELETE FROM t)"
        );
        assert!(execute_as_user(" ; ", "alice").is_err());
        assert!(execute_as_user("SELECT 1", "  ").is_err());
        assert!(execute_as_user("SELECT 1", "a\0").is_err());
        for user in ["../root", "a/b", "a\\b", "x..y"] {
            let err = execute_as_user("SELECT 1", user).unwrap_err();
            assert_eq!(err.code, "INVALID_ARGUMENT", "{user}");
        }
        assert!(execute_as_user("SELECT 1", "user-1.a@b").is_ok());
    }

    #[test]
    fn classifies_idempotent_statements() {
        for sql in [
            "SELECT 1",
            "  select * from t",
            "-- comment\n/* block /* nested */ */ SELECT 1",
            "SHOW TABLES",
            "DESCRIBE ns.t",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "SELECT 1; SELECT 2;",
            "EXECUTE AS USER 'a' (SELECT 1)",
        ] {
            assert!(is_idempotent(sql), "{sql}");
        }
        for sql in [
            "",
            " ; ",
            "INSERT INTO t VALUES (1)",
            "SELECT 1; DELETE FROM t",
            "/* SELECT */ UPDATE t SET a = 1",
            "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "CONSUME FROM ns.topic",
            "EXECUTE AS USER 'a' (DELETE FROM t)",
            "SELECTX 1",
        ] {
            assert!(!is_idempotent(sql), "{sql}");
        }
        assert_eq!(statement_count("SELECT 'a;b' -- ;\n; SELECT \"c;\""), 2);
    }

    #[test]
    fn finds_the_single_table() {
        let t = single_table("SELECT name, attachment FROM wire445072.docs", None).unwrap();
        assert_eq!(t.namespace.as_deref(), Some("wire445072"));
        assert_eq!(t.table, "docs");
        let t = single_table("select * from Docs where id = $1 limit 3", Some("app")).unwrap();
        assert_eq!(
            (t.namespace.as_deref(), t.table.as_str()),
            (Some("app"), "docs")
        );
        let t = single_table("SELECT * FROM docs", None).unwrap();
        assert_eq!(t.namespace.as_deref(), Some("default"));
        let t = single_table(
            "EXECUTE AS USER 'a' (SELECT f FROM \"ns\".\"t\" WHERE x IN (SELECT 1 FROM o))",
            None,
        )
        .unwrap();
        assert_eq!(
            (t.namespace.as_deref(), t.table.as_str()),
            (Some("ns"), "t")
        );
        for sql in [
            "SELECT * FROM a JOIN b ON a.id = b.id",
            "SELECT * FROM a, b",
            "SELECT * FROM (SELECT 1) x",
            "SELECT 1",
            "INSERT INTO t VALUES (1)",
            "SELECT 1 FROM a; SELECT 2 FROM b",
            "SELECT * FROM a.b.c",
            "SELECT * FROM a UNION SELECT * FROM b",
        ] {
            assert_eq!(single_table(sql, None), None, "{sql}");
        }
    }
}
