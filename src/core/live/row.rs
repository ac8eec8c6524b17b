//! [`Row`]: one row as the server sends it, `{column: value}` in wire order.
//!
//! A small vector of `(column, value)` pairs rather than a hash map: rows have a handful of
//! columns, so a linear lookup beats hashing, and there is one allocation per row instead
//! of a table plus an entry vector. Column names are shared `Rc<str>`s: each row of a
//! frame is decoded against the previous row's names, so a batch of N rows allocates its
//! names once, not N times (the hot path of a snapshot load).

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::core::json::{write_str, JsonError, Map, Reader, ToJson, Value};
use crate::core::live::materializer::FastHash;

/// The name index of a wide row, hashed like the materializer's `RowKey` (an `Rc<str>`)
/// index: the two compile to the same hash-map code, which wasm-opt folds into one copy,
/// and std's SipHash is left out of the client (issue 15).
type NameIndex = HashMap<ColumnName, usize, FastHash>;

/// A column name, shared between rows (not [`crate::core::cells::Column`], which describes
/// a result column: name, type, flags).
pub type ColumnName = Rc<str>;

/// One row: `(column, value)` pairs in the order the server sent them; names are unique.
#[derive(Clone, Default)]
pub struct Row {
    cells: Vec<(ColumnName, Value)>,
}

impl Row {
    pub fn new() -> Row {
        Row::default()
    }

    pub fn with_capacity(capacity: usize) -> Row {
        Row {
            cells: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn get(&self, column: &str) -> Option<&Value> {
        self.cells
            .iter()
            .find(|(c, _)| &**c == column)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, column: &str) -> bool {
        self.get(column).is_some()
    }

    /// Sets `column` (in place when present, else appended); returns the previous value.
    pub fn insert(&mut self, column: impl Into<ColumnName>, value: Value) -> Option<Value> {
        let column = column.into();
        match self.cells.iter_mut().find(|(c, _)| *c == column) {
            Some((_, held)) => Some(std::mem::replace(held, value)),
            None => {
                self.cells.push((column, value));
                None
            }
        }
    }

    pub fn remove(&mut self, column: &str) -> Option<Value> {
        let at = self.cells.iter().position(|(c, _)| &**c == column)?;
        Some(self.cells.remove(at).1)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&ColumnName, &Value)> {
        self.cells.iter().map(|(c, v)| (c, v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &ColumnName> {
        self.cells.iter().map(|(c, _)| c)
    }

    /// Whether the columns are exactly `columns`, in that order.
    pub fn has_columns(&self, columns: &[ColumnName]) -> bool {
        self.cells.len() == columns.len()
            && self
                .cells
                .iter()
                .zip(columns)
                .all(|((c, _), want)| Rc::ptr_eq(c, want) || c == want)
    }

    /// As a JSON object (same order).
    pub fn into_map(self) -> Map {
        self.cells
            .into_iter()
            .map(|(c, v)| (c.to_string(), v))
            .collect()
    }
}

/// `row["column"]`: the value, or `null` when the column is absent (like `Value`).
impl std::ops::Index<&str> for Row {
    type Output = Value;
    fn index(&self, column: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(column).unwrap_or(&NULL)
    }
}

impl IntoIterator for Row {
    type Item = (ColumnName, Value);
    type IntoIter = std::vec::IntoIter<(ColumnName, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.cells.into_iter()
    }
}

impl From<Map> for Row {
    fn from(map: Map) -> Row {
        Row {
            cells: map
                .into_iter()
                .map(|(c, v)| (ColumnName::from(c), v))
                .collect(),
        }
    }
}

/// As a JSON object (same order).
impl From<Row> for Value {
    fn from(row: Row) -> Value {
        Value::Object(row.into_map())
    }
}

/// Equal when both hold the same columns with equal values, in any order (like a map).
impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.len() == other.len() && self.iter().all(|(c, v)| other.get(c) == Some(v))
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl ToJson for Row {
    fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, (c, v)) in self.cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, c);
            out.push(':');
            v.write_json(out);
        }
        out.push('}');
    }
}

/// Rows wider than this check a new name for a repeat through a hash index rather than a
/// scan (a hostile frame cannot make a row's decode quadratic).
const SCAN_WIDTH: usize = 32;

/// Reads one row object, reusing the names of `like` (the previous row) where they match,
/// in any order: a batch of N rows allocates its names once, whatever order the server
/// wrote each row's columns in. A repeated name: the last value wins, at the first one's
/// position (like a JSON object).
pub(crate) fn read_row(r: &mut Reader<'_>, like: &[(ColumnName, Value)]) -> Result<Row, JsonError> {
    r.begin_object()?;
    let mut row = Row::with_capacity(like.len().max(4));
    // A name that cannot repeat one already in the row is appended without a check: while
    // `like` is narrow it is searched whole, a bit per position marks the names taken, and
    // the first name new to `like` is unique too; a wide `like` is only matched position
    // by position, and only while the row has followed it exactly.
    let searched = like.len() <= 64;
    let mut taken = 0u64;
    let mut fresh = false;
    let mut as_like = true;
    let mut index: Option<NameIndex> = None;
    while let Some(name) = r.next_key()? {
        let value = r.value()?;
        let at = row.len();
        let hit = match like.get(at) {
            Some((c, _)) if **c == *name => Some(at),
            _ if searched => like.iter().position(|(c, _)| **c == *name),
            _ => None,
        };
        let column = match hit {
            Some(j) if searched && taken & (1 << j) == 0 => {
                taken |= 1 << j;
                row.push_new(like[j].0.clone(), value, &mut index);
                continue;
            }
            Some(j) if !searched && as_like => {
                row.push_new(like[j].0.clone(), value, &mut index);
                continue;
            }
            Some(j) => like[j].0.clone(),
            None if searched && !fresh => {
                fresh = true;
                row.push_new(ColumnName::from(&*name), value, &mut index);
                continue;
            }
            None => ColumnName::from(&*name),
        };
        as_like = false;
        row.insert_checked(column, value, &mut index);
    }
    Ok(row)
}

impl Row {
    /// Appends a name known not to be in the row yet.
    fn push_new(&mut self, column: ColumnName, value: Value, index: &mut Option<NameIndex>) {
        if let Some(index) = index {
            index.insert(column.clone(), self.cells.len());
        }
        self.cells.push((column, value));
    }

    /// [`Row::insert`] for a name that may repeat one in the row, by a hash index once the
    /// row is wide.
    fn insert_checked(&mut self, column: ColumnName, value: Value, index: &mut Option<NameIndex>) {
        if index.is_none() && self.cells.len() >= SCAN_WIDTH {
            let built = self
                .cells
                .iter()
                .enumerate()
                .map(|(i, (c, _))| (c.clone(), i))
                .collect();
            *index = Some(built);
        }
        match index {
            None => {
                self.insert(column, value);
            }
            Some(index) => match index.get(&column) {
                Some(&at) => self.cells[at].1 = value,
                None => {
                    index.insert(column.clone(), self.cells.len());
                    self.cells.push((column, value));
                }
            },
        }
    }
}

/// `rows` of a frame: an array of row objects (or `null`: `None`), names shared across rows.
pub(crate) fn read_rows(r: &mut Reader<'_>) -> Result<Option<Vec<Row>>, JsonError> {
    if r.null_or()? {
        return Ok(None);
    }
    r.begin_array()?;
    let mut rows: Vec<Row> = Vec::new();
    while r.next_element()? {
        let like = rows.last().map_or(&[][..], |row| &row.cells[..]);
        let row = read_row(r, like)?;
        rows.push(row);
    }
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn rows(text: &str) -> Option<Vec<Row>> {
        let mut r = Reader::new(text.as_bytes());
        let rows = read_rows(&mut r).unwrap();
        r.end().unwrap();
        rows
    }

    fn one(text: &str) -> Result<Row, JsonError> {
        let mut r = Reader::new(text.as_bytes());
        read_row(&mut r, &[])
    }

    #[test]
    fn rows_of_a_batch_share_their_column_names() {
        let text = r#"[{"id":"1","t":"a"},{"id":"2","t":"b"},{"t":"c","id":"3"},{"id":"4","t":"d","x":1},{"id":"5","t":"e","id":"6"},{"x":2,"y":3,"x":4,"y":5,"z":6}]"#;
        let rows = rows(text).unwrap();
        let names = |r: &Row| r.keys().cloned().collect::<Vec<_>>();
        let (a, b, c, d) = (
            names(&rows[0]),
            names(&rows[1]),
            names(&rows[2]),
            names(&rows[3]),
        );
        assert!(Rc::ptr_eq(&a[0], &b[0]) && Rc::ptr_eq(&a[1], &b[1]));
        // Another order: the same names, shared, in the row's own order.
        assert_eq!(c, [ColumnName::from("t"), ColumnName::from("id")]);
        assert!(Rc::ptr_eq(&c[0], &b[1]) && Rc::ptr_eq(&c[1], &b[0]));
        assert_eq!(d.len(), 3);
        assert!(Rc::ptr_eq(&d[0], &c[1]) && Rc::ptr_eq(&d[1], &c[0]));
        assert_eq!(rows[2].get("id"), Some(&json!("3")));
        assert!(rows[0].has_columns(&a) && !rows[2].has_columns(&a));
        // A name repeated after a prefix shared with the previous row: the last one wins.
        assert_eq!((rows[4].len(), rows[4].get("id")), (2, Some(&json!("6"))));
        // Names new to the previous row repeated: the last value, at the first position.
        assert_eq!(names(&rows[5]), ["x", "y", "z"].map(ColumnName::from));
        assert_eq!(
            rows[5],
            Row::from(json!({"x":4,"y":5,"z":6}).as_object().unwrap().clone())
        );
        assert_eq!(self::rows("null"), None);
        assert_eq!(self::rows(" [ ] "), Some(vec![]));
    }

    #[test]
    fn wide_rows_keep_names_unique_without_quadratic_scans() {
        let wide = |names: &mut dyn Iterator<Item = usize>| {
            let cells: Vec<String> = names.map(|i| format!(r#""c{i}":{i}"#)).collect();
            format!("{{{}}}", cells.join(","))
        };
        // 300 columns, then the same in reverse, then with repeats: past the narrow search
        // (64) and the scan width (32).
        let text = format!(
            "[{},{},{}]",
            wide(&mut (0..300)),
            wide(&mut (0..300).rev()),
            wide(&mut (0..300).chain(0..300).chain(7..9))
        );
        let rows = rows(&text).unwrap();
        assert_eq!(rows[0].len(), 300);
        assert_eq!(rows[1].len(), 300);
        assert_eq!(rows[0], rows[1]);
        assert_eq!(rows[2].len(), 300);
        assert_eq!(rows[2], rows[0]);
        assert_eq!(rows[2].keys().nth(8).map(|c| &**c), Some("c8"));
        // The same position in a wide previous row, after the row departed from it.
        let text = format!("[{},{}]", wide(&mut (0..100)), r#"{"c1":1,"c1":2,"c2":3}"#);
        let rows = self::rows(&text).unwrap();
        assert_eq!(
            rows[1],
            Row::from(json!({"c1":2,"c2":3}).as_object().unwrap().clone())
        );
    }

    #[test]
    fn bad_rows_are_errors() {
        for bad in [
            "[1]",
            "[[]]",
            r#"[{"a":1},"x"]"#,
            "{}",
            r#"[{"a":}]"#,
            r#"[{"a":1,}]"#,
            "7",
        ] {
            let mut r = Reader::new(bad.as_bytes());
            assert!(read_rows(&mut r).is_err(), "{bad}");
        }
    }

    #[test]
    fn behaves_like_a_json_object() {
        let mut row = Row::from(json!({"id":"1","v":1}).as_object().unwrap().clone());
        assert_eq!(row.insert("v", json!(2)), Some(json!(1)));
        assert_eq!(row.insert("w", Value::Null), None);
        assert_eq!(row.to_json(), r#"{"id":"1","v":2,"w":null}"#);
        let reordered = one(r#"{"w":null,"v":2,"id":"1"}"#).unwrap();
        assert_eq!(row, reordered);
        assert_eq!(row.remove("w"), Some(Value::Null));
        assert_ne!(row, reordered);
        let dup = one(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!((dup.len(), dup.get("a")), (1, Some(&json!(2))));
        assert_eq!(
            row.into_map(),
            *json!({"id":"1","v":2}).as_object().unwrap()
        );
        assert_eq!(
            Row::from(json!({"a\"b":"\u{1}"}).as_object().unwrap().clone()).to_json(),
            r#"{"a\"b":"\u0001"}"#
        );
    }
}
