//! Response parsing (PROTOCOL.md §1.4, §1.7, §3.4, §3.6, §7.4, §9.3): SQL envelopes into
//! results or a [`KalamError`], and the error bodies of every other endpoint.
//!
//! Error mapping, whatever the endpoint:
//! * SQL / auth-extractor envelope `{"status":"error","error":{code,message,details?}}` →
//!   that code and message (also with HTTP 200, e.g. `TOKEN_EXPIRED`);
//! * login/refresh/setup shape `{"error":"unauthorized","message":"…"}` → code upper-cased
//!   (`UNAUTHORIZED`, `ACCOUNT_LOCKED`, `RATE_LIMITED`, …);
//! * topic/file shape `{"error":"<message>","code":"NOT_FOUND"}` → `code`, message from
//!   `error`;
//! * connection guard `{"error":"RATE_LIMIT_EXCEEDED",…}` → that code;
//! * anything else (text/plain, empty, unrecognised JSON) → `HTTP_ERROR` with the status
//!   and the body text (first 500 characters) as message.
//!
//! `retryable` is true for HTTP 429 (except `IP_BANNED`), 502, 503, 504; false otherwise.
//! A 2xx body that is not valid JSON is a SELECT whose stream broke off mid-way (§1.4): it
//! becomes `INTERNAL_ERROR` (not retryable) with the parse error in `details`.

use crate::core::cells::{self, DecodedResult, FileTable, ResultWriter};
use crate::core::error::{codes, KalamError, Result};
use crate::core::http::sql::TableRef;
use crate::core::json::{parse, JsonError, Map, Number, ObjectWriter, Reader, ToJson, Value};
use crate::core::schema::SchemaField;

/// The server code that means "refresh the access token and retry once".
pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";

/// Code given to a 2xx SQL body that is not valid JSON (a streamed SELECT that broke off).
pub const TRUNCATED_CODE: &str = "INTERNAL_ERROR";

/// Whether `err` is the server's `TOKEN_EXPIRED` (HTTP 401, or 200 with an error envelope).
pub fn is_token_expired(err: &KalamError) -> bool {
    err.code == TOKEN_EXPIRED
}

/// HTTP statuses worth retrying unchanged: 429, 502, 503, 504.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// One statement result as the server sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub schema: Vec<SchemaField>,
    /// Present for row-returning statements (possibly empty), absent for DDL/DML.
    pub rows: Option<Vec<Vec<Value>>>,
    pub row_count: u64,
    pub message: Option<String>,
    pub as_user: Option<String>,
}

/// A successful SQL response.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlResponse {
    pub results: Vec<QueryResult>,
    /// Server time in ms (kept as the server wrote it: passed through, never formatted).
    pub took: Option<Number>,
}

struct ErrorObject {
    code: Option<String>,
    message: Option<String>,
    details: Option<Value>,
}

/// The SQL envelope, walked out of a parsed `Value` (not derived: one `Value` parse serves
/// every response shape, and the derive's per-field deserializers cost bytes in both
/// bundles). Absent and `null` fields are `None`.
struct Envelope {
    status: Option<String>,
    results: Option<Vec<QueryResult>>,
    took: Option<Number>,
    error: Option<ErrorObject>,
}

/// Why a JSON answer is not a SQL envelope (the text of a PROTOCOL error).
type Shape = String;

fn shape(what: &str, expected: &str) -> Shape {
    format!("`{what}` is not {expected}")
}

/// `map[key]` as an optional string (absent or `null`: `None`).
fn opt_string(map: &mut Map, key: &str) -> std::result::Result<Option<String>, Shape> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(shape(key, "a string")),
    }
}

fn object(value: Value, what: &str) -> std::result::Result<Map, Shape> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(shape(what, "an object")),
    }
}

impl QueryResult {
    /// `schema` and `row_count` default when absent (not when `null`); `rows` is an array
    /// of arrays or absent/`null`.
    fn from_json(value: Value) -> std::result::Result<QueryResult, Shape> {
        let mut map = object(value, "results[]")?;
        let schema = match map.remove("schema") {
            None => Vec::new(),
            Some(v) => SchemaField::list_from_value(v).map_err(|e| format!("`schema`: {e}"))?,
        };
        let rows = match map.remove("rows") {
            None | Some(Value::Null) => None,
            // Loops, not `collect::<Result<..>>` (its adapter is a monomorph of its own).
            Some(Value::Array(rows)) => {
                let mut all = Vec::with_capacity(rows.len());
                for row in rows {
                    match row {
                        Value::Array(cells) => all.push(cells),
                        _ => return Err(shape("rows[]", "an array")),
                    }
                }
                Some(all)
            }
            Some(_) => return Err(shape("rows", "an array")),
        };
        let row_count = match map.remove("row_count") {
            None => 0,
            Some(v) => v.as_u64().ok_or_else(|| shape("row_count", "a count"))?,
        };
        Ok(QueryResult {
            schema,
            rows,
            row_count,
            message: opt_string(&mut map, "message")?,
            as_user: opt_string(&mut map, "as_user")?,
        })
    }
}

impl Envelope {
    fn from_json(value: Value) -> std::result::Result<Envelope, Shape> {
        let mut map = object(value, "the response")?;
        let results = match map.remove("results") {
            None | Some(Value::Null) => None,
            Some(Value::Array(results)) => {
                let mut all = Vec::with_capacity(results.len());
                for result in results {
                    all.push(QueryResult::from_json(result)?);
                }
                Some(all)
            }
            Some(_) => return Err(shape("results", "an array")),
        };
        let took = match map.remove("took") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n),
            Some(_) => return Err(shape("took", "a number")),
        };
        let error = match map.remove("error") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let mut obj = object(v, "error")?;
                Some(ErrorObject {
                    code: opt_string(&mut obj, "code")?,
                    message: opt_string(&mut obj, "message")?,
                    details: obj.remove("details").filter(|d| !d.is_null()),
                })
            }
        };
        Ok(Envelope {
            status: opt_string(&mut map, "status")?,
            results,
            took,
            error,
        })
    }
}

fn body_excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

/// Builds the error for `status` with a code and message, applying the retry rule.
pub fn status_error(status: u16, code: &str, message: &str) -> KalamError {
    let retryable = is_retryable_status(status) && code != "IP_BANNED";
    // A server answer with an empty message still gets one (found by fuzzing).
    let message = match message.trim() {
        "" => format!("HTTP {status} {code}"),
        _ => message.to_string(),
    };
    KalamError::new(code, message)
        .with_status(status)
        .retryable(retryable)
}

fn http_error(status: u16, body: &str) -> KalamError {
    let excerpt = body_excerpt(body);
    let message = if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        excerpt
    };
    status_error(status, codes::HTTP_ERROR, &message)
}

fn looks_like_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

fn details_text(details: Option<Value>) -> Option<String> {
    match details? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn error_from_value(status: u16, value: &Value, body: &str) -> KalamError {
    let Some(map) = value.as_object() else {
        return http_error(status, body);
    };
    let str_of = |k: &str| map.get(k).and_then(Value::as_str);
    match map.get("error") {
        Some(Value::Object(obj)) => {
            let code = obj
                .get("code")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .unwrap_or(codes::HTTP_ERROR);
            let message = obj
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let mut err = status_error(status, code, &message);
            err.details = details_text(obj.get("details").cloned());
            err
        }
        Some(Value::String(error)) => {
            if let Some(code) = str_of("code").filter(|c| !c.is_empty()) {
                // Topics / files: message in `error`, code in `code`.
                status_error(status, code, error)
            } else if looks_like_code(error) {
                // Auth endpoints and the connection guard: code in `error`.
                let message = str_of("message").unwrap_or(error);
                status_error(status, &error.to_ascii_uppercase(), message)
            } else {
                status_error(status, codes::HTTP_ERROR, error)
            }
        }
        _ => match str_of("message") {
            Some(message) => status_error(status, codes::HTTP_ERROR, message),
            None => http_error(status, body),
        },
    }
}

/// The error for a non-2xx answer (or a 2xx whose JSON says error) from any endpoint.
pub fn parse_error_body(status: u16, body: &str) -> KalamError {
    match parse(body) {
        Ok(value) => error_from_value(status, &value, body),
        Err(_) => http_error(status, body),
    }
}

/// Parses a `POST /v1/api/sql` answer (status code + body text).
pub fn parse_sql_response(status: u16, body: &str) -> Result<SqlResponse> {
    let parsed = parse(body);
    let envelope = match parsed {
        Ok(value) => Envelope::from_json(value).map_err(ParseFailure::Shape),
        Err(e) => Err(ParseFailure::Json(e)),
    };
    match envelope {
        Ok(env) => {
            if let Some(err) = env.error {
                // `error: null` deserializes to None; an object is a failure, even with 200.
                let code = err
                    .code
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| codes::HTTP_ERROR.to_string());
                let message = err.message.unwrap_or_else(|| format!("HTTP {status}"));
                let mut e = status_error(status, &code, &message);
                e.details = details_text(err.details);
                return Err(e);
            }
            if env.status.as_deref() == Some("error") || !is_success(status) {
                return Err(parse_error_body(status, body));
            }
            if env.status.as_deref() != Some("success") {
                return Err(KalamError::protocol(format!(
                    "SQL response without status \"success\": {}",
                    body_excerpt(body)
                ))
                .with_status(status));
            }
            Ok(SqlResponse {
                results: env.results.unwrap_or_default(),
                took: env.took,
            })
        }
        Err(_) if !is_success(status) => Err(parse_error_body(status, body)),
        Err(ParseFailure::Shape(shape)) => Err(KalamError::protocol(format!(
            "unexpected SQL response shape: {shape}"
        ))
        .with_status(status)),
        Err(ParseFailure::Json(parse_err)) => Err(KalamError::new(
            TRUNCATED_CODE,
            "the server failed while streaming the result (response body truncated or invalid)",
        )
        .with_status(status)
        .with_details(parse_err.to_string())),
    }
}

/// Why a body is not a SQL envelope: not JSON (a broken-off stream on 2xx) or JSON of
/// another shape.
enum ParseFailure {
    Json(JsonError),
    Shape(Shape),
}

/// The normalised response handed to JS (see `cells` for the value rules).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedResponse {
    pub results: Vec<DecodedResult>,
    pub took: Option<Number>,
}

/// `{"results":[…],"took"?}`.
impl ToJson for DecodedResponse {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("results", &self.results)
            .opt_field("took", &self.took);
        w.finish();
    }
}

/// `(namespace, table)` of the FILE cells' download paths.
fn file_table_of(table: Option<&TableRef>) -> FileTable<'_> {
    table.map(|t| {
        (
            t.namespace.as_deref().unwrap_or("default"),
            t.table.as_str(),
        )
    })
}

impl SqlResponse {
    /// Decodes every result's cells. `file_table` gives FILE cells a download path (see
    /// `sql::single_table` to derive it from a simple SELECT).
    pub fn decode(self, file_table: Option<&TableRef>) -> DecodedResponse {
        let ft = file_table_of(file_table);
        DecodedResponse {
            results: self
                .results
                .into_iter()
                .map(|r| {
                    cells::decode_result(
                        &r.schema,
                        r.rows.unwrap_or_default(),
                        r.row_count,
                        r.message,
                        r.as_user,
                        ft,
                    )
                })
                .collect(),
            took: self.took,
        }
    }
}

/// The one call per SQL answer: parse + decode into the JSON text JS parses once:
/// `{"results":[{"columns":[{"name","type","flags"}],"rows":[[…]],"row_count":N,
/// "message"?,"as_user"?,"invalid"?}],"took"?}`.
pub fn decode_sql_response(
    status: u16,
    body: &str,
    file_table: Option<&TableRef>,
) -> Result<String> {
    let ft = file_table_of(file_table);
    if is_success(status) {
        if let Some(out) = stream_success(body, ft) {
            return Ok(out);
        }
    }
    // Not the plain shape: the tree path gives the error, or (duplicate keys, `rows` before
    // `schema`) the answer, re-written in the plain shape for the one streaming decoder.
    let canonical = parse_sql_response(status, body)?.to_json();
    stream_success(&canonical, ft)
        .ok_or_else(|| KalamError::protocol("unexpected SQL response shape").with_status(status))
}

/// `{"status":"success","results":[{"schema","rows"?,"row_count","message"?,"as_user"?}],
/// "took"?}`: the plain shape [`stream_success`] reads.
impl ToJson for SqlResponse {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("status", "success");
        let mut results = crate::core::json::ArrayWriter::new(w.key("results"));
        for r in &self.results {
            let mut o = ObjectWriter::new(results.slot());
            o.field("schema", &r.schema)
                .opt_field("rows", &r.rows)
                .field("row_count", &r.row_count)
                .opt_field("message", &r.message)
                .opt_field("as_user", &r.as_user);
            o.finish();
        }
        results.finish();
        w.opt_field("took", &self.took);
        w.finish();
    }
}

/// Marks `seen[i]`; `None` when it was already set (a duplicate key: the tree path applies
/// the last-one-wins rule).
fn first_time(seen: &mut [bool], i: usize) -> Option<()> {
    (!std::mem::replace(&mut seen[i], true)).then_some(())
}

/// The fast path of [`decode_sql_response`]: a `{"status":"success",…}` answer streamed
/// from the body into the output, each cell decoded as it is read (no tree of the rows).
/// `None` for anything else (an error envelope, another shape, a truncated body, a
/// duplicate key, `rows` before `schema`): the tree path then gives the same output or the
/// error, so this path only has to be right when it answers.
fn stream_success(body: &str, file_table: FileTable<'_>) -> Option<String> {
    let mut r = Reader::new(body.as_bytes());
    // Output is about the size of the input.
    let mut out = String::with_capacity(body.len() + body.len() / 8);
    out.push_str("{\"results\":[");
    let mut success = false;
    let mut took = None;
    let mut seen = [false; 4];
    r.begin_object().ok()?;
    while let Some(key) = r.next_key().ok()? {
        let i = match &*key {
            "status" => 0,
            "results" => 1,
            "took" => 2,
            "error" => 3,
            _ => {
                r.skip().ok()?;
                continue;
            }
        };
        first_time(&mut seen, i)?;
        match i {
            0 => success = r.str().ok()? == "success",
            1 => {
                if !r.null_or().ok()? {
                    r.begin_array().ok()?;
                    let mut n = 0;
                    while r.next_element().ok()? {
                        if n > 0 {
                            out.push(',');
                        }
                        stream_result(&mut r, &mut out, file_table)?;
                        n += 1;
                    }
                }
            }
            2 => {
                if !r.null_or().ok()? {
                    took = Some(r.number().ok()?);
                }
            }
            _ => {
                if !r.null_or().ok()? {
                    return None;
                }
            }
        }
    }
    r.end().ok()?;
    if !success {
        return None;
    }
    out.push(']');
    if let Some(took) = took {
        out.push_str(",\"took\":");
        took.write_json(&mut out);
    }
    out.push('}');
    Some(out)
}

/// One `results[]` object of [`stream_success`], written as a [`DecodedResult`].
fn stream_result(r: &mut Reader<'_>, out: &mut String, file_table: FileTable<'_>) -> Option<()> {
    r.begin_object().ok()?;
    out.push_str("{\"columns\":");
    let mut schema: Option<Vec<SchemaField>> = None;
    let mut rows_done = false;
    let mut row_count = 0u64;
    let (mut message, mut as_user) = (None, None);
    let mut invalid = Vec::new();
    let mut seen = [false; 5];
    while let Some(key) = r.next_key().ok()? {
        let i = match &*key {
            "schema" => 0,
            "rows" => 1,
            "row_count" => 2,
            "message" => 3,
            "as_user" => 4,
            _ => {
                r.skip().ok()?;
                continue;
            }
        };
        first_time(&mut seen, i)?;
        match i {
            0 if rows_done => return None,
            0 => schema = Some(SchemaField::list_from_value(r.value().ok()?).ok()?),
            1 => {
                let mut w = ResultWriter::new(schema.get_or_insert_with(Vec::new), file_table);
                w.write_columns(out);
                out.push_str(",\"rows\":[");
                if !r.null_or().ok()? {
                    r.begin_array().ok()?;
                    let mut row = 0;
                    while r.next_element().ok()? {
                        if row > 0 {
                            out.push(',');
                        }
                        out.push('[');
                        r.begin_array().ok()?;
                        let mut column = 0;
                        while r.next_element().ok()? {
                            if column > 0 {
                                out.push(',');
                            }
                            w.write_cell_from((row, column), r, out).ok()?;
                            column += 1;
                        }
                        out.push(']');
                        row += 1;
                    }
                }
                out.push(']');
                invalid = w.into_invalid();
                rows_done = true;
            }
            2 => row_count = r.number().ok()?.as_u64()?,
            _ => {
                let text = if r.null_or().ok()? {
                    None
                } else {
                    Some(r.str().ok()?.into_owned())
                };
                if i == 3 {
                    message = text;
                } else {
                    as_user = text;
                }
            }
        }
    }
    if !rows_done {
        ResultWriter::new(schema.as_deref().unwrap_or_default(), file_table).write_columns(out);
        out.push_str(",\"rows\":[]");
    }
    let mut w = ObjectWriter::continue_object(out);
    w.field("row_count", &row_count)
        .opt_field("message", &message)
        .opt_field("as_user", &as_user)
        .nonempty_field("invalid", &invalid);
    w.finish();
    Some(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::json::json;

    /// The recorded exchanges of one scenario file (None when `shared/` is not beside the
    /// repo).
    pub(crate) fn recording(name: &str) -> Option<Vec<Value>> {
        let path = format!(
            "{}/../shared/kalamdb-wire/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).ok()?;
        let v = parse(&text).expect("recording is JSON");
        Some(v["exchanges"].as_array().unwrap().clone())
    }

    /// `(request body, status, response body text)` of the HTTP exchanges to `path`.
    pub(crate) fn http_exchanges(name: &str, path: &str) -> Vec<(Value, u16, String)> {
        let Some(ex) = recording(name) else {
            eprintln!("recording {name} not found; skipping");
            return Vec::new();
        };
        ex.iter()
            .filter(|e| {
                e["kind"] == "http"
                    && e["request"]["method"] != "OPTIONS"
                    && e["request"]["path"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with(path)
            })
            .map(|e| {
                let body = &e["response"]["body"];
                let text = match body {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (
                    e["request"]["body"].clone(),
                    e["response"]["status"].as_u64().unwrap() as u16,
                    text,
                )
            })
            .collect()
    }

    #[test]
    fn every_recorded_sql_answer_parses() {
        let mut seen = 0;
        for file in [
            "10-auth.json",
            "20-sql.json",
            "50-topics.json",
            "60-files.json",
            "70-limits.json",
        ] {
            for (req, status, body) in http_exchanges(file, "/v1/api/sql") {
                seen += 1;
                let sql = req["sql"].as_str().unwrap_or("<multipart>");
                let res = parse_sql_response(status, &body);
                if status == 200 {
                    let resp = res.unwrap_or_else(|e| panic!("{sql}: {e}"));
                    let table =
                        crate::core::http::sql::single_table(sql, req["namespace_id"].as_str());
                    let decoded = resp.decode(table.as_ref());
                    let invalid: usize = decoded.results.iter().map(|r| r.invalid.len()).sum();
                    // 70-limits.json abbreviates long row lists ("<47 more rows>").
                    if file != "70-limits.json" {
                        assert_eq!(invalid, 0, "{sql}: {:?}", decoded.results);
                    }
                } else {
                    let err = res.expect_err(sql);
                    assert_eq!(err.status, Some(status));
                    assert!(
                        !err.code.is_empty() && err.code != codes::HTTP_ERROR,
                        "{sql}: {err:?}"
                    );
                    assert!(!err.retryable);
                }
            }
        }
        if recording("20-sql.json").is_some() {
            assert!(seen > 30, "{seen}");
        }
    }

    #[test]
    fn decodes_recorded_select_star() {
        let ex = http_exchanges("20-sql.json", "/v1/api/sql");
        let Some((_, status, body)) = ex
            .iter()
            .find(|(r, _, b)| r["sql"] == "SELECT * FROM wire445072.inbox" && b.contains("hello"))
        else {
            return;
        };
        let out = parse(&decode_sql_response(*status, body, None).unwrap()).unwrap();
        let r = &out["results"][0];
        assert_eq!(
            r["columns"][0],
            json!({"name": "id", "type": "BigInt", "flags": ["pk", "nn", "uq"]})
        );
        assert_eq!(r["rows"][2][0], json!("7530642462960779264"));
        assert_eq!(r["rows"][2][6], json!({"a": 1, "b": [1, 2]}));
        assert_eq!(r["rows"][2][3], json!(1.5));
        assert_eq!(r["rows"][0][3], Value::Null);
        assert_eq!(r["rows"][0][7], json!(1795445075753000i64));
        assert_eq!(r["row_count"], 3);
        assert_eq!(r["as_user"], "alice445072");
        assert!(r.get("invalid").is_none());
        assert!(out["took"].is_number());

        // FILE cell with its download path (60-files.json).
        let ex = http_exchanges("60-files.json", "/v1/api/sql");
        let (req, status, body) = ex
            .iter()
            .find(|(r, _, _)| r["sql"] == "SELECT name, attachment FROM wire445072.docs")
            .unwrap();
        let table = crate::core::http::sql::single_table(req["sql"].as_str().unwrap(), None);
        let out = parse(&decode_sql_response(*status, body, table.as_ref()).unwrap()).unwrap();
        let file = &out["results"][0]["rows"][0][1];
        assert_eq!(
            file["stored_name"],
            "383266719688294400-report-q1-final.pdf"
        );
        assert_eq!(
            file["download_path"],
            "/v1/files/wire445072/docs/f0001/383266719688294400-report-q1-final.pdf"
        );
        assert_eq!(file["size"], 1024);
    }

    /// The tree path's output (what the fast path must reproduce).
    fn tree_path(status: u16, body: &str, table: Option<&TableRef>) -> Result<String> {
        let decoded = parse_sql_response(status, body)?.decode(table);
        Ok(decoded.to_json())
    }

    #[test]
    fn the_streamed_path_agrees_with_the_tree_path() {
        let mut streamed = 0;
        for file in [
            "20-sql.json",
            "50-topics.json",
            "60-files.json",
            "70-limits.json",
        ] {
            for (req, status, body) in http_exchanges(file, "/v1/api/sql") {
                let sql = req["sql"].as_str().unwrap_or("");
                let table = crate::core::http::sql::single_table(sql, None);
                let fast = stream_success(&body, file_table_of(table.as_ref()));
                if let Some(fast) = fast {
                    streamed += 1;
                    assert_eq!(Ok(fast), tree_path(status, &body, table.as_ref()), "{sql}");
                } else {
                    assert!(
                        status != 200 || tree_path(status, &body, None).is_err(),
                        "{body}"
                    );
                }
            }
        }
        if recording("20-sql.json").is_some() {
            assert!(streamed > 20, "{streamed}");
        }
        let schema = r#"[{"name":"id","data_type":"BigInt","index":1},{"name":"j","data_type":"Json","index":0}]"#;
        let taken = [
            format!(
                r#"{{"status":"success","results":[{{"schema":{schema},"rows":[["{{\"a\":1}}",7],["{{bad",1.5,"extra"]],"row_count":2,"message":null,"as_user":"u","x":[{{}}]}}],"took":1.50}}"#
            ),
            format!(
                r#"{{"took":null,"results":[{{"schema":{schema}}},{{"rows":null}},{{}}],"error":null,"status":"success"}}"#
            ),
            r#"{"status":"success","results":[{"schema":[],"rows":[[1,"a"]],"row_count":1}]}"#
                .to_string(),
            r#"{"status":"success"}"#.to_string(),
        ];
        for body in &taken {
            let fast = stream_success(body, None).unwrap_or_else(|| panic!("not streamed: {body}"));
            assert_eq!(Ok(fast.clone()), tree_path(200, body, None), "{body}");
            assert_eq!(decode_sql_response(200, body, None), Ok(fast));
        }
        // Left to the tree path (same answer or error either way).
        for body in [
            format!(r#"{{"status":"success","results":[{{"rows":[["1"]],"schema":{schema}}}]}}"#),
            r#"{"status":"success","status":"success","results":[]}"#.to_string(),
            r#"{"status":"success","results":[{"row_count":1,"row_count":2}]}"#.to_string(),
            r#"{"status":"error","results":[],"error":{"code":"X","message":"m"}}"#.to_string(),
            r#"{"status":"success","results":[{"rows":[1]}]}"#.to_string(),
            r#"{"status":"success","results":[{"schema":null}]}"#.to_string(),
            r#"{"status":"success","results":[],"took":"1"}"#.to_string(),
            r#"{"status":"success","results":[{"rows":[[1,"#.to_string(),
            r#"{"results":[]}"#.to_string(),
        ] {
            assert_eq!(stream_success(&body, None), None, "{body}");
            assert_eq!(
                decode_sql_response(200, &body, None),
                tree_path(200, &body, None),
                "{body}"
            );
        }
    }

    #[test]
    fn success_shapes() {
        let dml = r#"{"status":"success","results":[{"row_count":1,"message":"Inserted 1 row(s)","as_user":"alice"}],"took":7.264}"#;
        let out = decode_sql_response(200, dml, None).unwrap();
        assert_eq!(
            out,
            r#"{"results":[{"columns":[],"rows":[],"row_count":1,"message":"Inserted 1 row(s)","as_user":"alice"}],"took":7.264}"#
        );
        let big = r#"{"status":"success","results":[{"schema":[{"name":"big","data_type":"BigInt","index":0},{"name":"d","data_type":{"Decimal":{"precision":10,"scale":3}},"index":1}],"rows":[["9007199254740993","1.250"],[9223372036854775807,1.25]],"row_count":2,"as_user":"root"}],"took":0.944,"error":null}"#;
        let out = parse(&decode_sql_response(200, big, None).unwrap()).unwrap();
        assert_eq!(
            out["results"][0]["rows"],
            json!([
                ["9007199254740993", "1.250"],
                ["9223372036854775807", "1.25"]
            ])
        );
        assert_eq!(
            out["results"][0]["columns"][1]["type"],
            json!({"Decimal": {"precision": 10, "scale": 3}})
        );
        let empty = r#"{"status":"success","results":[{"schema":[],"rows":[],"row_count":0,"as_user":"a"}],"took":1,"error":null}"#;
        assert!(decode_sql_response(200, empty, None).is_ok());
        // Nulls and unknown fields are fine where they were for the derived reader.
        let nulls = r#"{"status":"success","results":[{"rows":null,"message":null,"extra":[1]}],"took":null,"more":{}}"#;
        let resp = parse_sql_response(200, nulls).unwrap();
        assert_eq!((resp.results[0].rows.clone(), resp.took), (None, None));
    }

    #[test]
    fn json_of_another_shape_is_a_protocol_error() {
        for body in [
            r#"[]"#,
            r#""success""#,
            r#"{"status":"success","results":{}}"#,
            r#"{"status":"success","results":[1]}"#,
            r#"{"status":"success","results":[{"rows":[1]}]}"#,
            r#"{"status":"success","results":[{"schema":null}]}"#,
            r#"{"status":"success","results":[{"row_count":null}]}"#,
            r#"{"status":"success","results":[{"row_count":-1}]}"#,
            r#"{"status":"success","results":[{"as_user":5}]}"#,
            r#"{"status":"success","results":[],"took":"1"}"#,
            r#"{"status":1,"results":[]}"#,
            r#"{"status":"success","error":"x"}"#,
            r#"{"status":"success","error":{"code":5}}"#,
        ] {
            let err = parse_sql_response(200, body).unwrap_err();
            assert_eq!(
                (err.code.as_str(), err.status),
                ("PROTOCOL", Some(200)),
                "{body}"
            );
            assert!(
                err.message.starts_with("unexpected SQL response shape"),
                "{body}: {err:?}"
            );
        }
        // The same bodies with an error status are read as error bodies.
        let err = parse_sql_response(503, r#"{"error":"TOO_MANY_CONNECTIONS"}"#).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.retryable),
            ("TOO_MANY_CONNECTIONS", true)
        );
    }

    #[test]
    fn error_shapes() {
        // SQL envelope with details.
        let e = parse_sql_response(400, r#"{"status":"error","results":[],"took":0.392,"error":{"code":"SQL_EXECUTION_ERROR","message":"Statement 1 failed","details":"INSERT …"}}"#).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.status, e.retryable),
            ("SQL_EXECUTION_ERROR", Some(400), false)
        );
        assert_eq!(e.details.as_deref(), Some("INSERT …"));
        // Auth extractor, 401 and 200.
        for status in [401, 200] {
            let e = parse_sql_response(status, r#"{"error":{"code":"TOKEN_EXPIRED","message":"Invalid credentials"},"results":[],"status":"error","took":0.12}"#).unwrap_err();
            assert!(is_token_expired(&e));
            assert_eq!(e.status, Some(status));
        }
        // Rate limits and cluster routing are retryable.
        let e = parse_sql_response(429, r#"{"status":"error","results":[],"took":0.1,"error":{"code":"RATE_LIMIT_EXCEEDED","message":"slow down"}}"#).unwrap_err();
        assert!(e.retryable);
        let e = parse_sql_response(503, r#"{"status":"error","results":[],"took":0.1,"error":{"code":"NOT_LEADER","message":"Not leader for shard. Leader: http://n2:8080"}}"#).unwrap_err();
        assert!(e.retryable);
        assert!(
            !parse_sql_response(
                500,
                r#"{"status":"error","results":[],"error":{"code":"INTERNAL_ERROR","message":"x"}}"#
            )
            .unwrap_err()
            .retryable
        );
        // Connection guard.
        let e = parse_sql_response(
            429,
            r#"{"error":"RATE_LIMIT_EXCEEDED","message":"Too many requests"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.retryable),
            ("RATE_LIMIT_EXCEEDED", "Too many requests", true)
        );
        let e = parse_sql_response(429, r#"{"error":"IP_BANNED","message":"banned"}"#).unwrap_err();
        assert!(!e.retryable);
        let e = parse_sql_response(413, r#"{"error":"BODY_TOO_LARGE","message":"too big"}"#)
            .unwrap_err();
        assert_eq!(e.code, "BODY_TOO_LARGE");
        let e = parse_sql_response(503, r#"{"error":"TOO_MANY_CONNECTIONS","message":"busy"}"#)
            .unwrap_err();
        assert!(e.retryable);
        // Non-JSON bodies.
        let e = parse_sql_response(
            400,
            "Json deserialize error: expected ident at line 1 column 2",
        )
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), (codes::HTTP_ERROR, Some(400)));
        assert!(e.message.starts_with("Json deserialize error"));
        let e = parse_sql_response(502, "").unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.retryable),
            (codes::HTTP_ERROR, "HTTP 502", true)
        );
        let e = parse_sql_response(504, "<html>gateway timeout</html>").unwrap_err();
        assert!(e.retryable);
        let e = parse_sql_response(404, &"x".repeat(2000)).unwrap_err();
        assert!(e.message.chars().count() <= 501);
        // Truncated streamed SELECT with 200.
        let e = parse_sql_response(200, r#"{"status":"success","results":[{"schema":[{"name":"x","data_type":"Double","index":0}],"rows":[[1.0],["#).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.status, e.retryable),
            (TRUNCATED_CODE, Some(200), false)
        );
        assert!(e.details.is_some());
        // Valid JSON, wrong shape.
        assert_eq!(
            parse_sql_response(200, r#"{"status":"success","results":[{"rows":5}]}"#)
                .unwrap_err()
                .code,
            codes::PROTOCOL
        );
        assert_eq!(
            parse_sql_response(200, "[]").unwrap_err().code,
            codes::PROTOCOL
        );
        assert_eq!(
            parse_sql_response(200, r#"{"results":[]}"#)
                .unwrap_err()
                .code,
            codes::PROTOCOL
        );
    }

    #[test]
    fn other_endpoint_error_shapes() {
        let cases: [(u16, &str, &str, &str); 9] = [
            (
                401,
                r#"{"error":"unauthorized","message":"Invalid credentials"}"#,
                "UNAUTHORIZED",
                "Invalid credentials",
            ),
            (
                401,
                r#"{"error":"account_locked","message":"15 minute(s)"}"#,
                "ACCOUNT_LOCKED",
                "15 minute(s)",
            ),
            (
                429,
                r#"{"error":"rate_limited","message":"Too many"}"#,
                "RATE_LIMITED",
                "Too many",
            ),
            (
                403,
                r#"{"error":"Topic consumption requires service, dba, or system role","code":"FORBIDDEN"}"#,
                "FORBIDDEN",
                "Topic consumption requires service, dba, or system role",
            ),
            (
                404,
                r#"{"error":"Topic 'wire445072.nope' does not exist","code":"NOT_FOUND"}"#,
                "NOT_FOUND",
                "Topic 'wire445072.nope' does not exist",
            ),
            (
                404,
                r#"{"code":"FILE_NOT_FOUND","error":"File not found"}"#,
                "FILE_NOT_FOUND",
                "File not found",
            ),
            (
                404,
                r#"{"error":"Table 'ns.t' not found"}"#,
                codes::HTTP_ERROR,
                "Table 'ns.t' not found",
            ),
            (
                403,
                r#"{"error":"Access denied. Health endpoint is localhost-only."}"#,
                codes::HTTP_ERROR,
                "Access denied. Health endpoint is localhost-only.",
            ),
            (
                400,
                "Json deserialize error: EOF while parsing an object at line 1 column 1",
                codes::HTTP_ERROR,
                "Json deserialize error: EOF while parsing an object at line 1 column 1",
            ),
        ];
        for (status, body, code, message) in cases {
            let e = parse_error_body(status, body);
            assert_eq!(
                (e.code.as_str(), e.message.as_str(), e.status),
                (code, message, Some(status)),
                "{body}"
            );
        }
        assert!(parse_error_body(429, r#"{"error":"rate_limited","message":"x"}"#).retryable);
        assert_eq!(
            parse_error_body(500, r#"{"message":"boom"}"#).message,
            "boom"
        );
        assert_eq!(parse_error_body(500, "42").code, codes::HTTP_ERROR);
    }
}

#[cfg(test)]
mod perf {
    /// `cargo test --release --lib -- --ignored decode_throughput --nocapture`
    #[test]
    #[ignore]
    fn decode_throughput() {
        let mut body = String::from(
            r#"{"status":"success","results":[{"schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk","nn","uq"]},{"name":"room","data_type":"Text","index":1},{"name":"body","data_type":"Text","index":2},{"name":"score","data_type":"Double","index":3},{"name":"n","data_type":"Int","index":4},{"name":"meta","data_type":"Json","index":5},{"name":"created_at","data_type":"Timestamp","index":6},{"name":"_seq","data_type":"BigInt","index":7}],"rows":["#,
        );
        let n = 20_000;
        for i in 0..n {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"["{}","main","hello world {i}",1.5,{i},"{{\"a\":{i}}}",1795445075739277,"383266589784248320"]"#,
                383266589782310912u64 + i
            ));
        }
        body.push_str(r#"],"row_count":20000,"as_user":"a"}],"took":1.0,"error":null}"#);
        // Best of 5, interleaved with serde_json's bare parse + serialize of the same body
        // (a lower bound of the serde_json pipeline this replaced): robust to a busy machine.
        let mut ours = std::time::Duration::MAX;
        let mut serde = std::time::Duration::MAX;
        let mut out = String::new();
        for _ in 0..5 {
            let start = std::time::Instant::now();
            out = super::decode_sql_response(200, &body, None).unwrap();
            ours = ours.min(start.elapsed());
            let start = std::time::Instant::now();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            std::hint::black_box(serde_json::to_string(&v).unwrap());
            serde = serde.min(start.elapsed());
        }
        eprintln!(
            "{n} rows, {} KB in, {} KB out: {:?} ({:.0} rows/ms); serde_json parse+write alone {:?}",
            body.len() / 1024,
            out.len() / 1024,
            ours,
            n as f64 / ours.as_secs_f64() / 1000.0,
            serde
        );
    }
}
