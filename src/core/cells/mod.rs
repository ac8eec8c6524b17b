//! Cell decoding by column type (PROTOCOL.md §1.5, §1.6, §2), shared by HTTP results, live
//! rows and (schemaless) topic payloads.
//!
//! The output is plain JSON meant for ONE `JSON.parse` on the JS side:
//!
//! | type | wire | normalised |
//! |---|---|---|
//! | `BigInt`, `Decimal`, 64-bit unsigned (reported as `Text`) | string (numbers accepted) | exact decimal **string** |
//! | `SmallInt`, `Int`, `Float`, `Double` | number (numeric strings accepted) | number |
//! | `Boolean` | bool (`"true"`/`"false"` accepted) | bool |
//! | `Timestamp`, `DateTime` | µs number (digit strings accepted) | µs number ⚠ |
//! | `Time` | µs since midnight | µs number ⚠ |
//! | `Date` | days since epoch | days number ⚠ |
//! | `Json` | string holding JSON (parsed value accepted) | the parsed value |
//! | `File` | string holding FileRef JSON (object accepted) | FileRef object + `stored_name` (+ `download_path` when the table is known) |
//! | `Bytes` | array of 0..=255 | same array |
//! | `Embedding(n)` | array of numbers | same array |
//! | `Text`, `Uuid` | string | string (numbers → exact decimal string for `Text`) |
//! | unknown types | anything | passed through unchanged |
//! | NULL | `null` | `null` |
//!
//! ⚠ Unit repair: a `Timestamp`/`DateTime` at or above 10^17 in magnitude cannot be
//! microseconds of a real date (that is year 5138+) and is what the server sends for
//! nanosecond Arrow timestamps under the same type name (`NOW()` in 20-sql.json:
//! `1795445075821899886`); it is divided by 1000 (floor). Likewise a `Time` above
//! 86 400 000 000 (a day in µs) is taken as ns, and a `Date` beyond ±10^7 days as
//! milliseconds (Date64). Values stay integers, so JS numbers are exact below 2^53.
//!
//! Malformed cells never fail a result: the raw wire value is kept in place and the cell
//! is listed in an `invalid` array next to the rows: `{"row": r, "column": c, "reason":
//! "…"}` for HTTP results (row and column positions), `{"column": "name", "reason": "…"}`
//! for a single live row. `invalid` is omitted when empty.

use std::borrow::Cow;

use crate::core::json::{
    parse, write_str, ArrayWriter, JsonError, Kind, Map, Number, ObjectWriter, Reader, ToJson,
    Value,
};

use crate::core::schema::{DataType, SchemaField, SYSTEM_COLUMNS};
use crate::core::sort::sorted;
use crate::core::text;

pub mod file_ref;
pub use file_ref::FileRef;

/// The table FILE cells belong to, for their download path: `(namespace, table)`.
pub type FileTable<'a> = Option<(&'a str, &'a str)>;

const NS_TIMESTAMP_FLOOR: i64 = 100_000_000_000_000_000; // 1e17
const DAY_US: i64 = 86_400_000_000;
const DATE_MS_FLOOR: i64 = 10_000_000;

fn int_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_i64_strict(s.trim()),
        _ => None,
    }
}

/// An `i64` from canonical decimal text: optional `-`, ASCII digits, no leading zeros (`"007"`
/// is refused), no `+`, no whitespace.
pub(crate) fn parse_i64_strict(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn is_decimal_integer(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

fn is_decimal_number(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = d.split_once('.').unwrap_or((d, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(text::has(d, b'.') && frac.is_empty())
}

/// A float cell sent as text: JSON number text, plus the spellings Rust's float parser
/// takes too (`+1`, `.5`, `5.`), written back as a JSON number; non-finite is refused.
fn float_text(s: &str) -> Option<Number> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mantissa = body.split(['e', 'E']).next().unwrap_or("");
    if !mantissa.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut text = String::with_capacity(body.len() + 3);
    if neg {
        text.push('-');
    }
    if body.starts_with('.') {
        text.push('0');
    }
    let mut chars = body.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        text.push(c);
        if c == '.' && !chars.peek().is_some_and(|(_, n)| n.is_ascii_digit()) {
            text.push('0');
        }
    }
    Number::from_text(&text).filter(Number::is_finite_f64)
}

fn bad(value: Value, ty: &str) -> Result<Value, (Value, String)> {
    let shown = match &value {
        Value::String(s) if s.len() > 40 => format!("a string of {} bytes", s.len()),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    };
    Err((value, format!("expected {ty}, got {shown}")))
}

/// Whether `value` is already what [`decode_cell`] makes of it (most cells are).
fn is_decoded(data_type: &DataType, value: &Value) -> bool {
    match (data_type, value) {
        (_, Value::Null) | (DataType::Other(_), _) => true,
        (_, Value::String(s)) => is_decoded_str(data_type, s),
        (DataType::SmallInt | DataType::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (DataType::Float | DataType::Double, Value::Number(_)) => true,
        (DataType::Boolean, Value::Bool(_)) => true,
        (DataType::Timestamp | DataType::DateTime, Value::Number(n)) => n
            .as_i64()
            .is_some_and(|us| us.unsigned_abs() < NS_TIMESTAMP_FLOOR as u64),
        _ => false,
    }
}

/// [`is_decoded`] of a string cell.
fn is_decoded_str(data_type: &DataType, s: &str) -> bool {
    match data_type {
        DataType::BigInt => is_decimal_integer(s),
        DataType::Decimal { .. } => is_decimal_number(s),
        DataType::Text | DataType::Uuid | DataType::Other(_) => true,
        _ => false,
    }
}

/// [`decode_cell`] of a borrowed cell: borrowed back when it is already decoded, so the
/// common cells of a large snapshot are written out without a copy.
pub fn decode_cell_ref<'v>(
    data_type: &DataType,
    value: &'v Value,
    file_table: FileTable<'_>,
) -> Result<Cow<'v, Value>, (Value, String)> {
    if is_decoded(data_type, value) {
        Ok(Cow::Borrowed(value))
    } else {
        decode_cell(data_type, value.clone(), file_table).map(Cow::Owned)
    }
}

/// Decodes one cell. `Ok(normalised)` or `Err((raw value, reason))` for a malformed cell.
pub fn decode_cell(
    data_type: &DataType,
    value: Value,
    file_table: FileTable<'_>,
) -> Result<Value, (Value, String)> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match data_type {
        DataType::BigInt => match value {
            Value::String(ref s) if is_decimal_integer(s) => Ok(value),
            Value::Number(ref n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
            other => bad(other, "a BIGINT (decimal string)"),
        },
        DataType::Decimal { .. } => match value {
            Value::String(ref s) if is_decimal_number(s) => Ok(value),
            Value::Number(ref n) => Ok(Value::String(n.to_string())),
            other => bad(other, "a DECIMAL (decimal string)"),
        },
        DataType::SmallInt | DataType::Int => match int_value(&value) {
            Some(i) => Ok(Value::from(i)),
            None => match value {
                Value::Number(ref n) if n.is_u64() => Ok(value),
                other => bad(other, "an integer"),
            },
        },
        DataType::Float | DataType::Double => match value {
            Value::Number(_) => Ok(value),
            Value::String(ref s) => match float_text(s) {
                Some(n) => Ok(Value::Number(n)),
                None => bad(value, "a finite number"),
            },
            other => bad(other, "a number"),
        },
        DataType::Boolean => match value {
            Value::Bool(_) => Ok(value),
            Value::String(ref s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            other => bad(other, "a boolean"),
        },
        DataType::Timestamp | DataType::DateTime => match int_value(&value) {
            Some(us) if us.unsigned_abs() >= NS_TIMESTAMP_FLOOR as u64 => {
                Ok(Value::from(us.div_euclid(1000)))
            }
            Some(us) => Ok(Value::from(us)),
            None => bad(value, "microseconds since the epoch"),
        },
        DataType::Time => match int_value(&value) {
            Some(t) if t > DAY_US => Ok(Value::from(t.div_euclid(1000))),
            Some(t) => Ok(Value::from(t)),
            None => bad(value, "microseconds since midnight"),
        },
        DataType::Date => match int_value(&value) {
            Some(d) if d.unsigned_abs() > DATE_MS_FLOOR as u64 => {
                Ok(Value::from(d.div_euclid(86_400_000)))
            }
            Some(d) => Ok(Value::from(d)),
            None => bad(value, "days since the epoch"),
        },
        DataType::Json => match value {
            Value::String(ref s) => match parse(s) {
                Ok(parsed) => Ok(parsed),
                Err(_) => bad(value, "JSON text"),
            },
            other => Ok(other),
        },
        DataType::File => match FileRef::from_value(&value) {
            Ok(file) => Ok(file.to_js_value(file_table)),
            Err(reason) => Err((value, reason)),
        },
        DataType::Bytes => match value {
            Value::Array(ref items)
                if items.iter().all(|b| b.as_u64().is_some_and(|b| b <= 255)) =>
            {
                Ok(value)
            }
            other => bad(other, "an array of bytes"),
        },
        DataType::Embedding(_) => match value {
            Value::Array(ref items) if items.iter().all(Value::is_number) => Ok(value),
            other => bad(other, "an array of numbers"),
        },
        DataType::Text => match value {
            Value::String(_) => Ok(value),
            Value::Number(ref n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
            other => bad(other, "text"),
        },
        DataType::Uuid => match value {
            Value::String(_) => Ok(value),
            other => bad(other, "a UUID string"),
        },
        DataType::Other(_) => Ok(value),
    }
}

/// A column in the normalised output.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The wire `data_type` (`"BigInt"`, `{"Decimal":{…}}`, …), written as `type`.
    pub data_type: DataType,
    pub flags: Vec<String>,
}

/// `{"name","type","flags"}`.
impl ToJson for Column {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("name", &self.name)
            .field("type", &self.data_type)
            .field("flags", &self.flags);
        w.finish();
    }
}

/// A malformed cell in an HTTP result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCell {
    pub row: usize,
    pub column: usize,
    pub reason: String,
}

/// `{"row","column","reason"}`.
impl ToJson for InvalidCell {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("row", &self.row)
            .field("column", &self.column)
            .field("reason", &self.reason);
        w.finish();
    }
}

/// One normalised statement result.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedResult {
    /// Empty for DDL/DML.
    pub columns: Vec<Column>,
    /// Positional, in `columns` order; empty for DDL/DML.
    pub rows: Vec<Vec<Value>>,
    pub row_count: u64,
    pub message: Option<String>,
    pub as_user: Option<String>,
    pub invalid: Vec<InvalidCell>,
}

/// `{"columns","rows","row_count","message"?,"as_user"?,"invalid"?}` (absent/empty omitted).
impl ToJson for DecodedResult {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("columns", &self.columns);
        let mut rows = ArrayWriter::new(w.key("rows"));
        for row in &self.rows {
            rows.item(row);
        }
        rows.finish();
        w.field("row_count", &self.row_count)
            .opt_field("message", &self.message)
            .opt_field("as_user", &self.as_user)
            .nonempty_field("invalid", &self.invalid);
        w.finish();
    }
}

/// Schema fields in row-position order: by `index` when the indexes are exactly
/// `0..n`, else as given.
fn positional_schema(schema: &[SchemaField]) -> Vec<&SchemaField> {
    let mut fields: Vec<Option<&SchemaField>> = vec![None; schema.len()];
    // A permutation of 0..n goes to its places (no sort); anything else stays as sent.
    let permutation = schema.iter().all(|f| {
        let slot = fields.get_mut(f.index as usize);
        slot.is_some_and(|s| s.replace(f).is_none())
    });
    if permutation {
        fields.into_iter().flatten().collect()
    } else {
        schema.iter().collect()
    }
}

/// One cell of a positional result: decoded by its column's type (cells beyond the schema's
/// width pass through), a malformed one kept raw and listed in `invalid`.
fn decode_positional(
    field: Option<&SchemaField>,
    (row, column): (usize, usize),
    cell: Value,
    file_table: FileTable<'_>,
    invalid: &mut Vec<InvalidCell>,
) -> Value {
    let Some(field) = field else {
        return cell;
    };
    match decode_cell(&field.data_type, cell, file_table) {
        Ok(v) => v,
        Err((raw, reason)) => {
            invalid.push(InvalidCell {
                row,
                column,
                reason: format!("{}: {reason}", field.name),
            });
            raw
        }
    }
}

fn columns_of(fields: &[&SchemaField]) -> Vec<Column> {
    fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            data_type: f.data_type.clone(),
            flags: f.flags.clone(),
        })
        .collect()
}

/// Decodes a positional result (`schema` + `rows` as the server sent them). Cells beyond
/// the schema's width are passed through unchanged.
pub fn decode_result(
    schema: &[SchemaField],
    rows: Vec<Vec<Value>>,
    row_count: u64,
    message: Option<String>,
    as_user: Option<String>,
    file_table: FileTable<'_>,
) -> DecodedResult {
    let fields = positional_schema(schema);
    let mut invalid = Vec::new();
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(r, row)| {
            row.into_iter()
                .enumerate()
                .map(|(c, cell)| {
                    decode_positional(
                        fields.get(c).copied(),
                        (r, c),
                        cell,
                        file_table,
                        &mut invalid,
                    )
                })
                .collect()
        })
        .collect();
    DecodedResult {
        columns: columns_of(&fields),
        rows,
        row_count,
        message,
        as_user,
        invalid,
    }
}

/// [`decode_result`] streamed: the caller feeds cells as it reads them and the JSON of
/// [`DecodedResult`] is written as it goes (no row tree; the SQL fast path).
pub struct ResultWriter<'s> {
    fields: Vec<&'s SchemaField>,
    file_table: FileTable<'s>,
    invalid: Vec<InvalidCell>,
}

impl<'s> ResultWriter<'s> {
    pub fn new(schema: &'s [SchemaField], file_table: FileTable<'s>) -> ResultWriter<'s> {
        ResultWriter {
            fields: positional_schema(schema),
            file_table,
            invalid: Vec::new(),
        }
    }

    /// The `columns` array.
    pub fn write_columns(&self, out: &mut String) {
        columns_of(&self.fields).write_json(out);
    }

    /// Writes the decoded cell `(row, column)`.
    pub fn write_cell(&mut self, at: (usize, usize), cell: Value, out: &mut String) {
        let field = self.fields.get(at.1).copied();
        decode_positional(field, at, cell, self.file_table, &mut self.invalid).write_json(out);
    }

    /// [`ResultWriter::write_cell`] of the next value of `r`; a string cell that is already
    /// decoded (text, BIGINT digits, …: most cells) is copied without an owned `Value`.
    pub fn write_cell_from(
        &mut self,
        at: (usize, usize),
        r: &mut Reader<'_>,
        out: &mut String,
    ) -> Result<(), JsonError> {
        if r.peek()? != Kind::String {
            let cell = r.value()?;
            self.write_cell(at, cell, out);
            return Ok(());
        }
        let s = r.str()?;
        match self.fields.get(at.1) {
            Some(f) if !is_decoded_str(&f.data_type, &s) => {
                self.write_cell(at, Value::String(s.into_owned()), out)
            }
            _ => write_str(out, &s),
        }
        Ok(())
    }

    /// The malformed cells seen, in order.
    pub fn into_invalid(self) -> Vec<InvalidCell> {
        self.invalid
    }
}

/// A malformed cell in a live row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    pub column: String,
    pub reason: String,
}

/// `{"column","reason"}`.
impl ToJson for InvalidField {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("column", &self.column)
            .field("reason", &self.reason);
        w.finish();
    }
}

/// A decoded `{column: value}` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRow {
    pub values: Map,
    pub invalid: Vec<InvalidField>,
}

/// `{"values":{…},"invalid"?}` (`invalid` omitted when empty).
impl ToJson for DecodedRow {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("values", &self.values)
            .nonempty_field("invalid", &self.invalid);
        w.finish();
    }
}

/// Decodes `{column: value}` row objects (WebSocket rows, `old_values`) against a
/// subscription schema. Build once per schema, reuse per row. System columns missing from
/// the schema are decoded by their [`SYSTEM_COLUMNS`] type (§2, §9.2); any other unknown
/// column is passed through.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    /// Column → type, sorted by name for a binary search: a `HashMap<String, DataType>` was
    /// its own copy of hashbrown's code in each .wasm (issue 15); a schema is built once,
    /// looked up per cell.
    types: Vec<(String, DataType)>,
    file_table: Option<(String, String)>,
}

impl RowDecoder {
    pub fn new(schema: &[SchemaField], file_table: Option<(String, String)>) -> RowDecoder {
        let mut types: Vec<(String, DataType)> = Vec::with_capacity(schema.len());
        // A repeated name keeps its last type, a system column only fills a gap (as the
        // map's collect and `or_insert` did).
        for f in schema {
            match types.iter_mut().find(|(n, _)| *n == f.name) {
                Some(entry) => entry.1 = f.data_type.clone(),
                None => types.push((f.name.clone(), f.data_type.clone())),
            }
        }
        for (name, ty) in SYSTEM_COLUMNS {
            if !types.iter().any(|(n, _)| n == name) {
                types.push((name.to_string(), ty));
            }
        }
        let types = sorted(types, &|a, b| a.0.cmp(&b.0));
        RowDecoder { types, file_table }
    }

    /// The type used for `column` (None: passed through).
    pub fn column_type(&self, column: &str) -> Option<&DataType> {
        let at = self
            .types
            .binary_search_by(|(n, _)| n.as_str().cmp(column))
            .ok()?;
        Some(&self.types[at].1)
    }

    /// Decodes one cell of `column`; unknown columns pass through.
    fn decode_value(&self, column: &str, value: Value) -> Result<Value, (Value, String)> {
        match self.column_type(column) {
            Some(ty) => decode_cell(
                ty,
                value,
                self.file_table
                    .as_ref()
                    .map(|(n, t)| (n.as_str(), t.as_str())),
            ),
            None => Ok(value),
        }
    }

    /// Decodes a whole row object (keys kept, values normalised, malformed cells kept raw
    /// and listed).
    pub fn decode_object(&self, row: Map) -> DecodedRow {
        let mut invalid = Vec::new();
        let values = row
            .into_iter()
            .map(|(k, v)| {
                let v = match self.decode_value(&k, v) {
                    Ok(v) => v,
                    Err((raw, reason)) => {
                        invalid.push(InvalidField {
                            column: k.clone(),
                            reason,
                        });
                        raw
                    }
                };
                (k, v)
            })
            .collect();
        DecodedRow { values, invalid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn schema(v: Value) -> Vec<SchemaField> {
        SchemaField::list_from_value(v).unwrap()
    }

    fn dec(ty: DataType, v: Value) -> Result<Value, (Value, String)> {
        decode_cell(&ty, v, None)
    }

    #[test]
    fn borrowed_decoding_agrees_with_owned_decoding() {
        use DataType::*;
        let types = [
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
            Embedding(2),
            Decimal {
                precision: 10,
                scale: 2,
            },
            Other("Interval".into()),
        ];
        let values = [
            json!(null),
            json!(true),
            json!("true"),
            json!(7),
            json!(-7),
            json!(1.5),
            json!(18446744073709551615u64),
            json!("7530642462960779264"),
            json!("-12.50"),
            json!("x"),
            json!(""),
            json!(1795445075821899886i64),
            json!(-1795445075821899886i64),
            json!(99_999_999_999_999_999i64),
            json!(i64::MIN),
            json!(86_400_000_001i64),
            json!(20_000_000),
            json!("{\"a\":1}"),
            json!([1, 2]),
            json!({"a": 1}),
        ];
        for ty in &types {
            for v in &values {
                let owned = decode_cell(ty, v.clone(), None);
                let borrowed = decode_cell_ref(ty, v, None).map(Cow::into_owned);
                assert_eq!(borrowed, owned, "{ty:?} {v}");
            }
        }
    }

    #[test]
    fn decodes_each_type() {
        use DataType::*;
        assert_eq!(
            dec(BigInt, json!("7530642462960779264")).unwrap(),
            json!("7530642462960779264")
        );
        assert_eq!(
            dec(BigInt, json!(9007199254740993u64)).unwrap(),
            json!("9007199254740993")
        );
        assert_eq!(
            dec(BigInt, json!(18446744073709551615u64)).unwrap(),
            json!("18446744073709551615")
        );
        assert_eq!(dec(BigInt, json!(-5)).unwrap(), json!("-5"));
        let dec2 = Decimal {
            precision: 10,
            scale: 2,
        };
        assert_eq!(dec(dec2.clone(), json!("12.50")).unwrap(), json!("12.50"));
        assert_eq!(dec(dec2.clone(), json!("-0.5")).unwrap(), json!("-0.5"));
        assert_eq!(dec(dec2.clone(), json!(12.5)).unwrap(), json!("12.5"));
        assert_eq!(dec(Int, json!(7)).unwrap(), json!(7));
        assert_eq!(dec(SmallInt, json!("-3")).unwrap(), json!(-3));
        assert_eq!(dec(Double, json!(1.5)).unwrap(), json!(1.5));
        assert_eq!(dec(Float, json!("2.25")).unwrap(), json!(2.25));
        assert_eq!(dec(Boolean, json!(true)).unwrap(), json!(true));
        assert_eq!(dec(Boolean, json!("false")).unwrap(), json!(false));
        assert_eq!(
            dec(Timestamp, json!(1795445075739277i64)).unwrap(),
            json!(1795445075739277i64)
        );
        assert_eq!(
            dec(Timestamp, json!("1795445075739277")).unwrap(),
            json!(1795445075739277i64)
        );
        // NOW() in 20-sql.json: nanoseconds under the Timestamp type.
        assert_eq!(
            dec(Timestamp, json!(1795445075821899886i64)).unwrap(),
            json!(1795445075821899i64)
        );
        assert_eq!(dec(DateTime, json!(-1)).unwrap(), json!(-1));
        assert_eq!(dec(Date, json!(20455)).unwrap(), json!(20455));
        assert_eq!(dec(Date, json!(1767312000000i64)).unwrap(), json!(20455));
        assert_eq!(
            dec(Time, json!(36672000000i64)).unwrap(),
            json!(36672000000i64)
        );
        assert_eq!(
            dec(Time, json!(36672000000000i64)).unwrap(),
            json!(36672000000i64)
        );
        assert_eq!(
            dec(Json, json!("{\"a\":1,\"b\":[1,2]}")).unwrap(),
            json!({"a":1,"b":[1,2]})
        );
        assert_eq!(dec(Json, json!("\"s\"")).unwrap(), json!("s"));
        assert_eq!(
            dec(Json, json!({"already": true})).unwrap(),
            json!({"already": true})
        );
        assert_eq!(dec(Bytes, json!([104, 105])).unwrap(), json!([104, 105]));
        assert_eq!(
            dec(Embedding(2), json!([0.1, 0.2])).unwrap(),
            json!([0.1, 0.2])
        );
        assert_eq!(dec(Text, json!("x")).unwrap(), json!("x"));
        assert_eq!(
            dec(Text, json!(18446744073709551615u64)).unwrap(),
            json!("18446744073709551615")
        );
        assert_eq!(
            dec(Uuid, json!("0190f1a2-1111-7222-8333-444455556666")).unwrap(),
            json!("0190f1a2-1111-7222-8333-444455556666")
        );
        assert_eq!(
            dec(Other("Geometry".into()), json!({"x": 1})).unwrap(),
            json!({"x": 1})
        );
        for ty in [BigInt, Int, Json, File, Bytes, Text, Other("X".into())] {
            assert_eq!(dec(ty, Value::Null).unwrap(), Value::Null);
        }
    }

    #[test]
    fn keeps_malformed_cells_raw() {
        use DataType::*;
        let cases = [
            (BigInt, json!("12x")),
            (BigInt, json!(1.5)),
            (BigInt, json!(true)),
            (
                Decimal {
                    precision: 4,
                    scale: 1,
                },
                json!("1.2.3"),
            ),
            (
                Decimal {
                    precision: 4,
                    scale: 1,
                },
                json!("1."),
            ),
            (Int, json!("seven")),
            (Int, json!(1.5)),
            (Double, json!("NaN")),
            (Double, json!([1])),
            (Boolean, json!(1)),
            (Timestamp, json!("2026-01-01T00:00:00Z")),
            (Date, json!(1.5)),
            (Json, json!("{broken")),
            (File, json!("{\"id\":")),
            (Bytes, json!([256])),
            (Bytes, json!("aGk=")),
            (Embedding(2), json!(["a"])),
            (Text, json!(true)),
            (Uuid, json!(5)),
        ];
        for (ty, raw) in cases {
            let (kept, reason) = dec(ty.clone(), raw.clone()).expect_err(&format!("{ty:?} {raw}"));
            assert_eq!(kept, raw);
            assert!(!reason.is_empty());
        }
    }

    #[test]
    fn decodes_a_result_with_invalid_cells_listed() {
        let schema = schema(json!([
            {"name": "id", "data_type": "BigInt", "index": 0, "flags": ["pk", "nn", "uq"]},
            {"name": "meta", "data_type": "Json", "index": 1},
            {"name": "n", "data_type": "Int", "index": 2}
        ]));
        let rows = vec![
            vec![json!("1"), json!("{\"a\":1}"), json!(3)],
            vec![json!("2"), json!("{oops"), Value::Null, json!("extra")],
        ];
        let out = decode_result(&schema, rows, 2, None, Some("alice".into()), None);
        // Byte for byte what the serde derive wrote (field order, omitted fields).
        assert_eq!(
            out.to_json(),
            json!({
                "columns": [
                    {"name": "id", "type": "BigInt", "flags": ["pk", "nn", "uq"]},
                    {"name": "meta", "type": "Json", "flags": []},
                    {"name": "n", "type": "Int", "flags": []}
                ],
                "rows": [["1", {"a": 1}, 3], ["2", "{oops", null, "extra"]],
                "row_count": 2,
                "as_user": "alice",
                "invalid": [{"row": 1, "column": 1, "reason": "meta: expected JSON text, got \"{oops\""}]
            })
            .to_string()
        );
    }

    #[test]
    fn float_cells_sent_as_text_become_numbers() {
        use DataType::*;
        for (text, want) in [
            ("2.25", "2.25"),
            (" -1.50 ", "-1.50"),
            ("1e3", "1e3"),
            ("+1", "1"),
            (".5", "0.5"),
            ("-.5", "-0.5"),
            ("5.", "5.0"),
            ("7", "7"),
        ] {
            let out = dec(Double, json!(text)).unwrap();
            assert_eq!(out.to_string(), want, "{text}");
            assert!(out.is_number());
        }
        for bad in [
            "",
            " ",
            "NaN",
            "inf",
            "-infinity",
            "1e400",
            "1.2.3",
            "0x10",
            "1_0",
            ".",
        ] {
            assert!(dec(Float, json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_out_of_index_order_is_reordered() {
        let schema = schema(json!([
            {"name": "b", "data_type": "Int", "index": 1},
            {"name": "a", "data_type": "BigInt", "index": 0}
        ]));
        let out = decode_result(&schema, vec![vec![json!(5), json!(6)]], 1, None, None, None);
        assert_eq!(out.columns[0].name, "a");
        assert_eq!(out.rows[0], vec![json!("5"), json!(6)]);
    }

    #[test]
    fn decodes_live_row_objects() {
        let schema = schema(json!([
            {"name": "id", "data_type": "BigInt", "index": 0, "flags": ["pk", "nn", "uq"]},
            {"name": "doc", "data_type": "File", "index": 1},
            {"name": "at", "data_type": "Timestamp", "index": 2}
        ]));
        let decoder = RowDecoder::new(&schema, Some(("app".into(), "docs".into())));
        let row = json!({
            "id": 383266589782310912u64,
            "doc": "{\"id\":\"9\",\"sub\":\"f0001\",\"name\":\"A b.txt\",\"size\":3,\"mime\":\"text/plain\",\"sha256\":\"h\"}",
            "at": "bad",
            "_seq": "383266589784248320",
            "_deleted": false,
            "extra": [1]
        });
        let out = decoder.decode_object(row.as_object().unwrap().clone());
        assert_eq!(out.values["id"], json!("383266589782310912"));
        assert_eq!(out.values["doc"]["stored_name"], json!("9-a-b.txt"));
        assert_eq!(
            out.values["doc"]["download_path"],
            json!("/v1/files/app/docs/f0001/9-a-b.txt")
        );
        assert_eq!(out.values["at"], json!("bad"));
        assert_eq!(out.values["_seq"], json!("383266589784248320"));
        assert_eq!(out.values["extra"], json!([1]));
        assert_eq!(out.invalid.len(), 1);
        assert_eq!(out.invalid[0].column, "at");
        let text = out.to_json();
        assert!(text.starts_with(r#"{"values":{"id":"383266589782310912","doc":{"id":"9","#));
        assert!(text.ends_with(r#""extra":[1]},"invalid":[{"column":"at","reason":"expected microseconds since the epoch, got \"bad\""}]}"#));
        let clean = decoder.decode_object(json!({"id": 1}).as_object().unwrap().clone());
        assert_eq!(clean.to_json(), r#"{"values":{"id":"1"}}"#);
        assert_eq!(decoder.column_type("_commit_seq"), Some(&DataType::BigInt));
        assert_eq!(decoder.column_type("nope"), None);
    }
}
