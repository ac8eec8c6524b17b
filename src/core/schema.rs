//! Column schemas as the server sends them (PROTOCOL.md §1.5): `schema` in SQL results and
//! in `subscription_ack`. Shared by the HTTP decoder, the live materializer and topics.

use crate::core::json::{json, ObjectWriter, ToJson, Value};

/// A column type, as serde's external tagging of KalamDB's `KalamDataType` (PascalCase).
///
/// Unknown type names are kept as `Other` rather than rejected: a newer server must not make
/// an older client fail to read rows; such cells are passed through undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataType {
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
    Decimal { precision: u32, scale: u32 },
    Other(String),
}

impl DataType {
    /// The wire spelling of a plain (untagged) type name.
    fn from_name(name: &str) -> DataType {
        match name {
            "Boolean" => DataType::Boolean,
            "SmallInt" => DataType::SmallInt,
            "Int" => DataType::Int,
            "BigInt" => DataType::BigInt,
            "Float" => DataType::Float,
            "Double" => DataType::Double,
            "Text" => DataType::Text,
            "Timestamp" => DataType::Timestamp,
            "Date" => DataType::Date,
            "DateTime" => DataType::DateTime,
            "Time" => DataType::Time,
            "Json" => DataType::Json,
            "Bytes" => DataType::Bytes,
            "Uuid" => DataType::Uuid,
            "File" => DataType::File,
            other => DataType::Other(other.to_string()),
        }
    }

    /// Parses the wire form: a string, `{"Embedding": n}` or `{"Decimal": {precision, scale}}`.
    pub fn from_wire(value: &Value) -> Result<DataType, String> {
        match value {
            Value::String(name) => Ok(DataType::from_name(name)),
            Value::Object(map) if map.len() == 1 => {
                let (tag, inner) = map.iter().next().expect("len checked");
                match tag.as_str() {
                    "Embedding" => inner
                        .as_u64()
                        .and_then(|d| u32::try_from(d).ok())
                        .map(DataType::Embedding)
                        .ok_or_else(|| format!("bad Embedding dimension: {inner}")),
                    "Decimal" => {
                        let field = |k: &str| {
                            inner
                                .get(k)
                                .and_then(Value::as_u64)
                                .and_then(|v| u32::try_from(v).ok())
                        };
                        match (field("precision"), field("scale")) {
                            (Some(precision), Some(scale)) => {
                                Ok(DataType::Decimal { precision, scale })
                            }
                            _ => Err(format!("bad Decimal type: {inner}")),
                        }
                    }
                    other => Ok(DataType::Other(other.to_string())),
                }
            }
            other => Err(format!("bad data_type: {other}")),
        }
    }

    /// The wire form, the inverse of [`DataType::from_wire`].
    pub fn to_wire(&self) -> Value {
        match self {
            DataType::Embedding(dim) => json!({ "Embedding": *dim }),
            DataType::Decimal { precision, scale } => {
                json!({ "Decimal": { "precision": *precision, "scale": *scale } })
            }
            _ => Value::String(self.name().to_string()),
        }
    }

    /// The plain type name (`Embedding`/`Decimal` for the tagged forms).
    fn name(&self) -> &str {
        match self {
            DataType::Boolean => "Boolean",
            DataType::SmallInt => "SmallInt",
            DataType::Int => "Int",
            DataType::BigInt => "BigInt",
            DataType::Float => "Float",
            DataType::Double => "Double",
            DataType::Text => "Text",
            DataType::Timestamp => "Timestamp",
            DataType::Date => "Date",
            DataType::DateTime => "DateTime",
            DataType::Time => "Time",
            DataType::Json => "Json",
            DataType::Bytes => "Bytes",
            DataType::Uuid => "Uuid",
            DataType::File => "File",
            DataType::Embedding(_) => "Embedding",
            DataType::Decimal { .. } => "Decimal",
            DataType::Other(name) => name.as_str(),
        }
    }
}

/// The wire form ([`DataType::to_wire`]) without building a `Value`.
impl ToJson for DataType {
    fn write_json(&self, out: &mut String) {
        match self {
            DataType::Embedding(dim) => {
                let mut w = ObjectWriter::new(out);
                w.field("Embedding", dim);
                w.finish();
            }
            DataType::Decimal { precision, scale } => {
                let mut w = ObjectWriter::new(out);
                let mut inner = ObjectWriter::new(w.key("Decimal"));
                inner.field("precision", precision).field("scale", scale);
                inner.finish();
                w.finish();
            }
            _ => self.name().write_json(out),
        }
    }
}

/// One column of a result or subscription schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaField {
    pub name: String,
    pub data_type: DataType,
    pub index: u32,
    /// `"pk"`, `"nn"`, `"uq"` in that order; omitted on the wire when empty.
    pub flags: Vec<String>,
}

/// `{"name","data_type","index","flags"?}` (`flags` omitted when empty).
impl ToJson for SchemaField {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("name", &self.name)
            .field("data_type", &self.data_type)
            .field("index", &self.index)
            .nonempty_field("flags", &self.flags);
        w.finish();
    }
}

impl SchemaField {
    /// `name`, `data_type` and `index` required, `flags` an array of strings or absent;
    /// other keys ignored.
    pub fn from_value(value: Value) -> Result<SchemaField, String> {
        let Value::Object(mut map) = value else {
            return Err("a schema field is not a JSON object".into());
        };
        let name = match map.remove("name") {
            Some(Value::String(s)) => s,
            _ => return Err("`name` is missing or not a string".into()),
        };
        let data_type = DataType::from_wire(map.get("data_type").unwrap_or(&Value::Null))?;
        let index = map
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| format!("`index` of `{name}` is missing or not a u32"))?;
        let flags = match map.remove("flags") {
            None => Vec::new(),
            // Loops, not `collect::<Result<..>>` (its adapter is a monomorph of its own).
            Some(Value::Array(items)) => {
                let mut flags = Vec::with_capacity(items.len());
                for f in items {
                    match f {
                        Value::String(s) => flags.push(s),
                        _ => return Err(format!("`flags` of `{name}` holds a non-string")),
                    }
                }
                flags
            }
            Some(_) => return Err(format!("`flags` of `{name}` is not an array")),
        };
        Ok(SchemaField {
            name,
            data_type,
            index,
            flags,
        })
    }

    /// A schema array (`null` is not one).
    pub fn list_from_value(value: Value) -> Result<Vec<SchemaField>, String> {
        match value {
            Value::Array(items) => {
                let mut fields = Vec::with_capacity(items.len());
                for item in items {
                    fields.push(SchemaField::from_value(item)?);
                }
                Ok(fields)
            }
            _ => Err("not an array".into()),
        }
    }

    pub fn is_primary_key(&self) -> bool {
        self.flags.iter().any(|f| f == "pk")
    }
}

/// The columns KalamDB adds to every table, with the type their cells are decoded by when a
/// schema does not list them (§2, §9.2): `_seq` (the row version, a SeqId), `_commit_seq`
/// (internal commit order) and `_deleted` (soft-delete tombstones).
pub const SYSTEM_COLUMNS: [(&str, DataType); 3] = [
    ("_seq", DataType::BigInt),
    ("_commit_seq", DataType::BigInt),
    ("_deleted", DataType::Boolean),
];

/// Names of the primary-key columns in schema order (empty when the schema has none).
pub fn primary_key_columns(schema: &[SchemaField]) -> Vec<String> {
    let fields: Vec<&SchemaField> = schema.iter().filter(|f| f.is_primary_key()).collect();
    let order = crate::core::sort::sorted_indices(fields.len(), &|a, b| {
        fields[a].index.cmp(&fields[b].index)
    });
    order.into_iter().map(|i| fields[i].name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::parse;

    fn field(text: &str) -> Result<SchemaField, String> {
        SchemaField::from_value(parse(text).map_err(|e| e.to_string())?)
    }

    #[test]
    fn parses_every_recorded_type_form() {
        let schema = SchemaField::list_from_value(
            parse(
                r#"[{"name":"id","data_type":"BigInt","index":0,"flags":["pk","nn","uq"]},
                {"name":"vec","data_type":{"Embedding":384},"index":1,"flags":["nn"]},
                {"name":"price","data_type":{"Decimal":{"precision":10,"scale":2}},"index":2},
                {"name":"future","data_type":"Geometry","index":3}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(schema[0].data_type, DataType::BigInt);
        assert!(schema[0].is_primary_key());
        assert_eq!(schema[1].data_type, DataType::Embedding(384));
        assert_eq!(
            schema[2].data_type,
            DataType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(schema[3].data_type, DataType::Other("Geometry".into()));
        assert_eq!(primary_key_columns(&schema), vec!["id".to_string()]);
        // A composite key in index order, whatever order the fields come in.
        let composite = SchemaField::list_from_value(
            parse(
                r#"[{"name":"c","data_type":"Int","index":5,"flags":["pk"]},
                {"name":"x","data_type":"Int","index":0},
                {"name":"a","data_type":"Int","index":1,"flags":["pk"]},
                {"name":"b","data_type":"Int","index":3,"flags":["pk"]}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(primary_key_columns(&composite), ["a", "b", "c"]);
        let back = parse(&schema[2].to_json()).unwrap();
        assert_eq!(
            back["data_type"],
            json!({"Decimal":{"precision":10,"scale":2}})
        );
        assert!(back.get("flags").is_none());
        // Written form = the wire form, byte for byte (the TypeScript side parses it).
        assert_eq!(
            schema[0].to_json(),
            r#"{"name":"id","data_type":"BigInt","index":0,"flags":["pk","nn","uq"]}"#
        );
        assert_eq!(
            schema[1].to_json(),
            r#"{"name":"vec","data_type":{"Embedding":384},"index":1,"flags":["nn"]}"#
        );
        for f in &schema {
            assert_eq!(f.data_type.to_json(), f.data_type.to_wire().to_string());
            assert_eq!(
                DataType::from_wire(&f.data_type.to_wire()).unwrap(),
                f.data_type
            );
        }
        assert!(SchemaField::list_from_value(Value::Null).is_err());
    }

    #[test]
    fn rejects_malformed_types_with_a_message() {
        let err = field(r#"{"name":"x","data_type":{"Embedding":"big"},"index":0}"#).unwrap_err();
        assert!(err.contains("Embedding"));
        for (bad, names) in [
            (r#"{"name":"x","data_type":"Int","index":-1}"#, "index"),
            (r#"{"name":"x","data_type":"Int","index":1.5}"#, "index"),
            (
                r#"{"name":"x","data_type":"Int","index":0,"flags":[1]}"#,
                "flags",
            ),
            (
                r#"{"name":"x","data_type":"Int","index":0,"flags":null}"#,
                "flags",
            ),
            (r#"{"data_type":"Int","index":0}"#, "name"),
        ] {
            let err = field(bad).unwrap_err();
            assert!(err.contains(names), "{bad}: {err}");
        }
    }
}
