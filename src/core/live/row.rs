//! [`Row`]: one row as the server sends it, `{column: value}` in wire order.
//!
//! A small vector of `(column, value)` pairs rather than a hash map: rows have a handful of
//! columns, so a linear lookup beats hashing, and there is one allocation per row instead
//! of a table plus an entry vector. Column names are shared `Rc<str>`s: each row of a
//! frame is decoded against the previous row's names, so a batch of N rows allocates its
//! names once, not N times (the hot path of a snapshot load).

use std::fmt;
use std::rc::Rc;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

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
    pub fn into_map(self) -> Map<String, Value> {
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

impl From<Map<String, Value>> for Row {
    fn from(map: Map<String, Value>) -> Row {
        Row {
            cells: map
                .into_iter()
                .map(|(c, v)| (ColumnName::from(c), v))
                .collect(),
        }
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

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (c, v) in self.iter() {
            map.serialize_entry(&**c, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Row, D::Error> {
        de.deserialize_map(RowSeed { like: &[] })
    }
}

/// Decodes a row, reusing the names of `like` (the previous row) where they match.
struct RowSeed<'a> {
    like: &'a [(ColumnName, Value)],
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Row;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Row, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Row;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let mut row = Row::with_capacity(self.like.len().max(4));
        // While the names are exactly `like`'s so far (unique names), none can repeat: the
        // duplicate scan (quadratic in the width) is only needed once the row departs.
        let mut as_like = true;
        loop {
            let expected = self.like.get(row.len()).map(|(c, _)| c);
            let Some(column) = map.next_key_seed(ColumnSeed { expected })? else {
                break;
            };
            let value: Value = map.next_value()?;
            as_like = as_like && expected.is_some_and(|e| Rc::ptr_eq(e, &column));
            if as_like {
                row.cells.push((column, value));
                continue;
            }
            row.insert(column, value); // a repeated name: the last one wins
        }
        Ok(row)
    }
}

/// A column name: the expected shared name when the text matches, else a new one.
struct ColumnSeed<'a> {
    expected: Option<&'a ColumnName>,
}

impl<'de> DeserializeSeed<'de> for ColumnSeed<'_> {
    type Value = ColumnName;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<ColumnName, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ColumnSeed<'_> {
    type Value = ColumnName;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }
    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<ColumnName, E> {
        Ok(match self.expected {
            Some(expected) if &**expected == name => expected.clone(),
            _ => ColumnName::from(name),
        })
    }
}

/// `rows` of a frame: an array of row objects (or `null`), names shared across rows.
pub fn deserialize_rows<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Vec<Row>>, D::Error> {
    struct RowsVisitor;
    impl<'de> Visitor<'de> for RowsVisitor {
        type Value = Option<Vec<Row>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of row objects")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut rows: Vec<Row> = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            loop {
                let like = rows.last().map_or(&[][..], |r| &r.cells[..]);
                match seq.next_element_seed(RowSeed { like })? {
                    Some(row) => rows.push(row),
                    None => break,
                }
            }
            Ok(Some(rows))
        }
    }
    de.deserialize_any(RowsVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Frame {
        #[serde(deserialize_with = "deserialize_rows")]
        rows: Option<Vec<Row>>,
    }

    #[test]
    fn rows_of_a_batch_share_their_column_names() {
        let text = r#"{"rows":[{"id":"1","t":"a"},{"id":"2","t":"b"},{"t":"c","id":"3"},{"id":"4","t":"d","x":1},{"id":"5","t":"e","id":"6"}]}"#;
        let rows = serde_json::from_str::<Frame>(text).unwrap().rows.unwrap();
        let names = |r: &Row| r.keys().cloned().collect::<Vec<_>>();
        let (a, b, c, d) = (
            names(&rows[0]),
            names(&rows[1]),
            names(&rows[2]),
            names(&rows[3]),
        );
        assert!(Rc::ptr_eq(&a[0], &b[0]) && Rc::ptr_eq(&a[1], &b[1]));
        assert_eq!(c, [ColumnName::from("t"), ColumnName::from("id")]); // other order: new names
        assert!(!Rc::ptr_eq(&c[0], &b[1]) && !Rc::ptr_eq(&c[1], &b[0]));
        assert_eq!(d.len(), 3);
        assert_eq!(rows[2].get("id"), Some(&json!("3")));
        assert!(rows[0].has_columns(&a) && !rows[2].has_columns(&a));
        // A name repeated after a prefix shared with the previous row: the last one wins.
        assert_eq!((rows[4].len(), rows[4].get("id")), (2, Some(&json!("6"))));
    }

    #[test]
    fn behaves_like_a_json_object() {
        let mut row = Row::from(json!({"id":"1","v":1}).as_object().unwrap().clone());
        assert_eq!(row.insert("v", json!(2)), Some(json!(1)));
        assert_eq!(row.insert("w", Value::Null), None);
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"id":"1","v":2,"w":null}"#
        );
        let reordered: Row = serde_json::from_str(r#"{"w":null,"v":2,"id":"1"}"#).unwrap();
        assert_eq!(row, reordered);
        assert_eq!(row.remove("w"), Some(Value::Null));
        assert_ne!(row, reordered);
        let dup: Row = serde_json::from_str(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!((dup.len(), dup.get("a")), (1, Some(&json!(2))));
        assert_eq!(
            row.into_map(),
            *json!({"id":"1","v":2}).as_object().unwrap()
        );
    }
}
