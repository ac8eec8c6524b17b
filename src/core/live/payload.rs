//! The JS payload of the live shell: everything one drained burst produced, handed to JS in
//! ONE call as a JSON array of items (written directly, no `Value` trees for rows). This is
//! the one place its format is defined; `bindings/client/src/live.ts` (`Item`) reads it.
//!
//! Items, in the order the core produced them:
//! - `{t:"rows", id, initial, loading?, reset?, resync, removed:[key], cols:[name],
//!   updated:[[key, v1, v2, …]], inserted:[[key, …]], order?:[key], invalid?}`: a
//!   materialized delta. Entries are positional over `cols`; an entry whose row lacks some
//!   of `cols` is `{k: key, r: {column: value}}` instead. `loading` parts precede a first
//!   snapshot's `initial` delta (`reset`: clear the mirror first); `order` is the live
//!   ORDER BY window's keys in order, sent when it changed. One per subscription per flush
//!   (bursts are coalesced, [`super::LiveConfig::coalesce_ms`]).
//! - `{t:"event", id, event}`: a raw event of a `liveEvents` subscription in its protocol
//!   shape (`subscription_ack` / `initial_data_batch` / `change`), rows decoded, one item
//!   per event.
//! - `{t:"checkpoint", id, seq}`, `{t:"sub_error", id, error, fatal}`,
//!   `{t:"state", state, attempt?, delay_ms?}`,
//!   `{t:"error", error, closeCode?, closeReason?}` (`closeCode`/`closeReason`: the socket
//!   close that caused this connection error, ours or the server's).
//!
//! Row values are decoded by column type like HTTP rows ([`RowDecoder`]); malformed cells
//! are kept raw and listed in `invalid` (`{key, column, reason}`). Keys are opaque strings;
//! `seq`, `last_seq_id` and `_seq` values are exact decimal strings.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::core::cells::{decode_cell_ref, FileTable, RowDecoder};
use crate::core::live::frames::{BatchControl, ChangeType, Row};
use crate::core::live::materializer::{KeyedRow, RowsDelta};
use crate::core::live::row::ColumnName;
use crate::core::live::{LiveEvent, RowKey};
use crate::core::schema::DataType;
use crate::core::seq_id::SeqId;

/// The JSON array handed to JS, written directly (no intermediate `Value` trees for rows).
#[derive(Default)]
pub(crate) struct Items {
    buf: Vec<u8>,
    count: usize,
}

impl Items {
    fn begin(&mut self) {
        self.buf.push(if self.count == 0 { b'[' } else { b',' });
        self.count += 1;
    }

    pub(crate) fn value(&mut self, item: &Value) {
        self.begin();
        let _ = serde_json::to_writer(&mut self.buf, item);
    }

    fn string(&mut self, s: &str) {
        let _ = serde_json::to_writer(&mut self.buf, s);
    }

    /// `{t:"rows", id, initial, loading?, reset?, resync, removed, cols, updated, inserted,
    /// order?, invalid?}` (`order`: live ORDER BY, the window's keys in order).
    pub(crate) fn rows(
        &mut self,
        id: &str,
        delta: RowsDelta,
        decoder: Option<&RowDecoder>,
        table: FileTable<'_>,
    ) {
        self.begin();
        self.buf.extend_from_slice(br#"{"t":"rows","id":"#);
        self.string(id);
        self.buf.extend_from_slice(if delta.initial {
            br#","initial":true"#.as_slice()
        } else {
            br#","initial":false"#.as_slice()
        });
        if delta.loading {
            self.buf.extend_from_slice(br#","loading":true"#);
        }
        if delta.reset {
            self.buf.extend_from_slice(br#","reset":true"#);
        }
        self.buf.extend_from_slice(if delta.resync {
            br#","resync":true,"removed":["#.as_slice()
        } else {
            br#","resync":false,"removed":["#.as_slice()
        });
        for (i, key) in delta.removed.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.string(key.as_str());
        }
        let mut invalid = Vec::new();
        // Rows whose columns are `cols` (in order) go positionally: `[key, v1, v2, …]`.
        // Column names are written once per delta, and JS parses arrays faster than objects.
        let cols: Vec<ColumnName> = delta
            .updated
            .first()
            .or(delta.inserted.first())
            .map(|r| r.row.keys().cloned().collect())
            .unwrap_or_default();
        let types: Vec<Option<&DataType>> = cols
            .iter()
            .map(|c| decoder.and_then(|d| d.column_type(c)))
            .collect();
        self.buf.extend_from_slice(br#"],"cols":"#);
        let _ = serde_json::to_writer(
            &mut self.buf,
            &cols.iter().map(|c| &**c).collect::<Vec<_>>(),
        );
        self.buf.extend_from_slice(br#","updated":"#);
        self.keyed_rows(delta.updated, (&cols, &types), decoder, table, &mut invalid);
        self.buf.extend_from_slice(br#","inserted":"#);
        self.keyed_rows(
            delta.inserted,
            (&cols, &types),
            decoder,
            table,
            &mut invalid,
        );
        if let Some(order) = &delta.order {
            self.buf.extend_from_slice(br#","order":["#);
            for (i, key) in order.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                self.string(key.as_str());
            }
            self.buf.push(b']');
        }
        if !invalid.is_empty() {
            self.buf.extend_from_slice(br#","invalid":"#);
            let _ = serde_json::to_writer(&mut self.buf, &invalid);
        }
        self.buf.push(b'}');
    }

    /// Each row as `[key, v1, …]` when its columns are `cols`, else `{"k": key, "r": {…}}`;
    /// values decoded by column type as they are written.
    fn keyed_rows(
        &mut self,
        rows: Vec<KeyedRow>,
        (cols, types): (&[ColumnName], &[Option<&DataType>]),
        decoder: Option<&RowDecoder>,
        table: FileTable<'_>,
        invalid: &mut Vec<Value>,
    ) {
        self.buf.push(b'[');
        for (i, KeyedRow { key, row }) in rows.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            if row.has_columns(cols) {
                self.buf.push(b'[');
                self.string(key.as_str());
                for ((column, value), ty) in row.iter().zip(types) {
                    self.buf.push(b',');
                    self.cell(&key, column, value, *ty, table, invalid);
                }
                self.buf.push(b']');
            } else {
                self.buf.extend_from_slice(br#"{"k":"#);
                self.string(key.as_str());
                self.buf.extend_from_slice(br#","r":{"#);
                for (j, (column, value)) in row.iter().enumerate() {
                    if j > 0 {
                        self.buf.push(b',');
                    }
                    self.string(column);
                    self.buf.push(b':');
                    let ty = decoder.and_then(|d| d.column_type(column));
                    self.cell(&key, column, value, ty, table, invalid);
                }
                self.buf.extend_from_slice(b"}}");
            }
        }
        self.buf.push(b']');
    }

    /// One decoded value (a malformed cell is written raw and listed in `invalid`).
    fn cell(
        &mut self,
        key: &RowKey,
        column: &str,
        value: &Value,
        ty: Option<&DataType>,
        table: FileTable<'_>,
        invalid: &mut Vec<Value>,
    ) {
        let value = match ty {
            None => Ok(Cow::Borrowed(value)),
            Some(ty) => decode_cell_ref(ty, value, table),
        };
        match value {
            Ok(v) => {
                let _ = serde_json::to_writer(&mut self.buf, &*v);
            }
            Err((raw, reason)) => {
                let _ = serde_json::to_writer(&mut self.buf, &raw);
                invalid.push(json!({"key": key.as_str(), "column": column, "reason": reason}));
            }
        }
    }

    pub(crate) fn finish(mut self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        self.buf.push(b']');
        // Only serde_json output and UTF-8 strings were written.
        String::from_utf8(self.buf).ok()
    }
}

/// A row with its values decoded (malformed cells kept raw and listed in `invalid`).
pub(crate) fn decode_row(
    decoder: Option<&RowDecoder>,
    row: Row,
    invalid: &mut Vec<Value>,
    key: Option<&RowKey>,
) -> Value {
    let Some(decoder) = decoder else {
        return Value::Object(row.into_map());
    };
    let decoded = decoder.decode_object(row.into_map());
    for bad in decoded.invalid {
        invalid.push(json!({
            "key": key.map(|k| k.as_str()), "column": bad.column, "reason": bad.reason,
        }));
    }
    Value::Object(decoded.values)
}

fn rows_json(decoder: Option<&RowDecoder>, rows: Vec<Row>, invalid: &mut Vec<Value>) -> Value {
    Value::Array(
        rows.into_iter()
            .map(|r| decode_row(decoder, r, invalid, None))
            .collect(),
    )
}

pub(crate) fn seq_json(seq: Option<SeqId>) -> Value {
    seq.map_or(Value::Null, |s| Value::String(s.to_string()))
}

fn batch_control_json(c: &BatchControl) -> Value {
    json!({
        "batch_num": c.batch_num, "has_more": c.has_more, "status": c.status,
        "last_seq_id": seq_json(c.last_seq_id),
    })
}

/// A raw event in its protocol shape (rows decoded, SeqIds as strings).
pub(crate) fn event_json(decoder: Option<&RowDecoder>, event: LiveEvent) -> Value {
    let mut invalid = Vec::new();
    let mut value = match event {
        LiveEvent::Ack(ack) => json!({
            "type": "subscription_ack", "subscription_id": ack.subscription_id,
            "total_rows": ack.total_rows, "batch_control": batch_control_json(&ack.batch_control),
            "schema": ack.schema,
        }),
        LiveEvent::Batch(batch) => json!({
            "type": "initial_data_batch", "subscription_id": batch.subscription_id,
            "rows": rows_json(decoder, batch.rows, &mut invalid),
            "batch_control": batch_control_json(&batch.batch_control),
        }),
        LiveEvent::Change(change) => {
            let mut v = json!({
                "type": "change", "subscription_id": change.subscription_id,
                "change_type": change.change_type,
            });
            if change.change_type != ChangeType::Delete {
                v["rows"] = rows_json(decoder, change.rows, &mut invalid);
            }
            if change.change_type != ChangeType::Insert {
                v["old_values"] = rows_json(decoder, change.old_values, &mut invalid);
            }
            v
        }
    };
    if !invalid.is_empty() {
        value["invalid"] = Value::Array(invalid);
    }
    value
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::core::live::frames::{decode_json, ServerMessage};
    use crate::core::live::materializer::RowsDelta;

    fn row(v: Value) -> Row {
        v.as_object().unwrap().clone().into()
    }

    fn keyed(v: Value) -> KeyedRow {
        let row = row(v);
        KeyedRow {
            key: RowKey::of(&row, &["id".to_string()]).unwrap(),
            row: Rc::new(row),
        }
    }

    #[test]
    fn one_array_per_burst_with_positional_rows_and_plain_items() {
        assert_eq!(
            Items::default().finish(),
            None,
            "nothing to hand over: no call"
        );
        let mut items = Items::default();
        let delta = RowsDelta {
            initial: true,
            inserted: vec![
                keyed(json!({"id": "1", "body": "a", "_seq": "11"})),
                keyed(json!({"id": "2", "body": "b", "_seq": "12"})),
            ],
            ..RowsDelta::default()
        };
        items.rows("sub-1", delta, None, None);
        items.value(&json!({"t": "checkpoint", "id": "sub-1", "seq": "12"}));
        let out: Value = serde_json::from_str(&items.finish().unwrap()).unwrap();
        let list = out.as_array().unwrap();
        assert_eq!(list.len(), 2);
        let rows = &list[0];
        assert_eq!(rows["t"], "rows");
        assert_eq!(rows["id"], "sub-1");
        assert_eq!(rows["initial"], true);
        assert_eq!(rows["removed"], json!([]));
        let cols: Vec<&str> = rows["cols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let inserted = rows["inserted"].as_array().unwrap();
        assert_eq!(inserted.len(), 2);
        // Positional: [key, value per column of `cols`].
        let first = inserted[0].as_array().unwrap();
        assert_eq!(first.len(), cols.len() + 1);
        let body = cols.iter().position(|c| *c == "body").unwrap();
        assert_eq!(first[body + 1], "a");
        assert_eq!(
            list[1],
            json!({"t": "checkpoint", "id": "sub-1", "seq": "12"})
        );
    }

    #[test]
    fn events_keep_their_protocol_shape() {
        let frame = br#"{"type":"change","subscription_id":"sub-2","change_type":"update",
            "rows":[{"id":"1","_seq":"20"}],"old_values":[{"id":"1","_seq":"19"}]}"#;
        let ServerMessage::Change(change) = decode_json(frame).unwrap() else {
            panic!("not a change");
        };
        let v = event_json(None, LiveEvent::Change(change));
        assert_eq!(v["type"], "change");
        assert_eq!(v["subscription_id"], "sub-2");
        assert_eq!(v["change_type"], "update");
        assert_eq!(v["rows"][0]["_seq"], "20");
        assert_eq!(v["old_values"][0]["_seq"], "19");
        assert_eq!(seq_json(None), Value::Null);
        assert_eq!(seq_json(Some(SeqId::new(i64::MAX))), "9223372036854775807");
    }
}
