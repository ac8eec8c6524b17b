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

use crate::core::cells::{decode_cell_ref, FileTable, RowDecoder};
use crate::core::error::KalamError;
use crate::core::json::{json, write_str, ObjectWriter, ToJson, Value};
use crate::core::live::frames::{BatchControl, ChangeType, Row};
use crate::core::live::materializer::{KeyedRow, RowsDelta};
use crate::core::live::row::ColumnName;
use crate::core::live::{ConnectionState, LiveEvent, RowKey, SubscriptionInfo};
use crate::core::schema::{DataType, SchemaField};
use crate::core::seq_id::SeqId;

/// The JSON array handed to JS, written directly (no intermediate `Value` trees for rows).
#[derive(Default)]
pub(crate) struct Items {
    buf: String,
    count: usize,
}

impl Items {
    fn begin(&mut self) {
        self.buf.push(if self.count == 0 { '[' } else { ',' });
        self.count += 1;
    }

    fn string(&mut self, s: &str) {
        write_str(&mut self.buf, s);
    }

    /// `{t:"checkpoint", id, seq}`.
    pub(crate) fn checkpoint(&mut self, id: &str, seq: SeqId) {
        self.begin();
        let mut o = ObjectWriter::new(&mut self.buf);
        o.field("t", "checkpoint")
            .field("id", id)
            .field("seq", &seq.to_string());
        o.finish();
    }

    /// `{t:"sub_error", id, error, fatal}`.
    pub(crate) fn sub_error(&mut self, id: &str, error: &KalamError, fatal: bool) {
        self.begin();
        let mut o = ObjectWriter::new(&mut self.buf);
        o.field("t", "sub_error")
            .field("id", id)
            .field("error", error)
            .field("fatal", &fatal);
        o.finish();
    }

    /// `{state, attempt?, delay_ms?, t:"state"}` (`t` last, where it always was).
    pub(crate) fn state(&mut self, state: &ConnectionState) {
        self.begin();
        self.buf.push_str(&state_json(state));
        self.buf.pop();
        self.buf.push_str(r#","t":"state"}"#);
    }

    /// `{t:"error", error, closeCode?, closeReason?}`.
    pub(crate) fn error(&mut self, error: &KalamError, close: Option<(u16, String)>) {
        self.begin();
        let mut o = ObjectWriter::new(&mut self.buf);
        o.field("t", "error").field("error", error);
        if let Some((code, reason)) = close {
            o.field("closeCode", &code).field("closeReason", &reason);
        }
        o.finish();
    }

    /// `{t:"event", id, event}`: a raw event in its protocol shape (rows decoded, SeqIds
    /// as strings, malformed cells listed in `event.invalid`).
    pub(crate) fn event(
        &mut self,
        id: &str,
        event: LiveEvent,
        decoder: Option<&RowDecoder>,
        table: FileTable<'_>,
    ) {
        self.begin();
        self.buf.push_str(r#"{"t":"event","id":"#);
        self.string(id);
        self.buf.push_str(r#","event":"#);
        self.event_body(event, decoder, table);
        self.buf.push('}');
    }

    fn event_body(&mut self, event: LiveEvent, decoder: Option<&RowDecoder>, table: FileTable<'_>) {
        let mut invalid = Vec::new();
        match event {
            LiveEvent::Ack(ack) => {
                self.buf
                    .push_str(r#"{"type":"subscription_ack","subscription_id":"#);
                self.string(&ack.subscription_id);
                self.buf.push_str(r#","total_rows":"#);
                ack.total_rows.write_json(&mut self.buf);
                self.buf.push_str(r#","batch_control":"#);
                self.batch_control(&ack.batch_control);
                self.buf.push_str(r#","schema":"#);
                ack.schema.write_json(&mut self.buf);
            }
            LiveEvent::Batch(batch) => {
                self.buf
                    .push_str(r#"{"type":"initial_data_batch","subscription_id":"#);
                self.string(&batch.subscription_id);
                self.buf.push_str(r#","rows":"#);
                self.plain_rows(&batch.rows, decoder, table, &mut invalid);
                self.buf.push_str(r#","batch_control":"#);
                self.batch_control(&batch.batch_control);
            }
            LiveEvent::Change(change) => {
                self.buf.push_str(r#"{"type":"change","subscription_id":"#);
                self.string(&change.subscription_id);
                self.buf.push_str(r#","change_type":"#);
                self.string(change.change_type.as_str());
                if change.change_type != ChangeType::Delete {
                    self.buf.push_str(r#","rows":"#);
                    self.plain_rows(&change.rows, decoder, table, &mut invalid);
                }
                if change.change_type != ChangeType::Insert {
                    self.buf.push_str(r#","old_values":"#);
                    self.plain_rows(&change.old_values, decoder, table, &mut invalid);
                }
            }
        }
        if !invalid.is_empty() {
            self.buf.push_str(r#","invalid":"#);
            invalid.write_json(&mut self.buf);
        }
        self.buf.push('}');
    }

    /// `{batch_num, has_more, status, last_seq_id}` (`last_seq_id` a string or null).
    fn batch_control(&mut self, c: &BatchControl) {
        let mut o = ObjectWriter::new(&mut self.buf);
        o.field("batch_num", &c.batch_num)
            .field("has_more", &c.has_more)
            .field("status", &c.status)
            .field("last_seq_id", &c.last_seq_id.map(|s| s.to_string()));
        o.finish();
    }

    /// Rows as `[{column: value}]`, values decoded as they are written.
    fn plain_rows(
        &mut self,
        rows: &[Row],
        decoder: Option<&RowDecoder>,
        table: FileTable<'_>,
        invalid: &mut Vec<Value>,
    ) {
        self.buf.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            self.row_object(None, row, decoder, table, invalid);
        }
        self.buf.push(']');
    }

    /// `{column: value}` with values decoded by column type.
    fn row_object(
        &mut self,
        key: Option<&RowKey>,
        row: &Row,
        decoder: Option<&RowDecoder>,
        table: FileTable<'_>,
        invalid: &mut Vec<Value>,
    ) {
        self.buf.push('{');
        for (j, (column, value)) in row.iter().enumerate() {
            if j > 0 {
                self.buf.push(',');
            }
            self.string(column);
            self.buf.push(':');
            let ty = decoder.and_then(|d| d.column_type(column));
            self.cell(key, column, value, ty, table, invalid);
        }
        self.buf.push('}');
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
        self.buf.push_str(r#"{"t":"rows","id":"#);
        self.string(id);
        self.buf.push_str(if delta.initial {
            r#","initial":true"#
        } else {
            r#","initial":false"#
        });
        if delta.loading {
            self.buf.push_str(r#","loading":true"#);
        }
        if delta.reset {
            self.buf.push_str(r#","reset":true"#);
        }
        self.buf.push_str(if delta.resync {
            r#","resync":true,"removed":["#
        } else {
            r#","resync":false,"removed":["#
        });
        for (i, key) in delta.removed.iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
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
        self.buf.push_str(r#"],"cols":["#);
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            self.string(c);
        }
        self.buf.push_str(r#"],"updated":"#);
        self.keyed_rows(delta.updated, (&cols, &types), decoder, table, &mut invalid);
        self.buf.push_str(r#","inserted":"#);
        self.keyed_rows(
            delta.inserted,
            (&cols, &types),
            decoder,
            table,
            &mut invalid,
        );
        if let Some(order) = &delta.order {
            self.buf.push_str(r#","order":["#);
            for (i, key) in order.iter().enumerate() {
                if i > 0 {
                    self.buf.push(',');
                }
                self.string(key.as_str());
            }
            self.buf.push(']');
        }
        if !invalid.is_empty() {
            self.buf.push_str(r#","invalid":"#);
            invalid.write_json(&mut self.buf);
        }
        self.buf.push('}');
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
        self.buf.push('[');
        for (i, KeyedRow { key, row }) in rows.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            if row.has_columns(cols) {
                self.buf.push('[');
                self.string(key.as_str());
                for ((column, value), ty) in row.iter().zip(types) {
                    self.buf.push(',');
                    self.cell(Some(&key), column, value, *ty, table, invalid);
                }
                self.buf.push(']');
            } else {
                self.buf.push_str(r#"{"k":"#);
                self.string(key.as_str());
                self.buf.push_str(r#","r":"#);
                self.row_object(Some(&key), &row, decoder, table, invalid);
                self.buf.push('}');
            }
        }
        self.buf.push(']');
    }

    /// One decoded value (a malformed cell is written raw and listed in `invalid` as
    /// `{key, column, reason}`).
    fn cell(
        &mut self,
        key: Option<&RowKey>,
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
            Ok(v) => v.write_json(&mut self.buf),
            Err((raw, reason)) => {
                raw.write_json(&mut self.buf);
                invalid.push(json!({
                    "key": key.map(|k| k.as_str()), "column": column, "reason": reason,
                }));
            }
        }
    }

    pub(crate) fn finish(mut self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        self.buf.push(']');
        Some(self.buf)
    }
}

/// The connection state: `{"state":"connecting"}`, `{"state":"reconnecting","attempt":1,
/// "delay_ms":812}`, ...
pub(crate) fn state_json(state: &ConnectionState) -> String {
    let mut out = String::new();
    let mut o = ObjectWriter::new(&mut out);
    match state {
        ConnectionState::Disconnected => o.field("state", "disconnected"),
        ConnectionState::Connecting => o.field("state", "connecting"),
        ConnectionState::Connected => o.field("state", "connected"),
        ConnectionState::Reconnecting { attempt, delay_ms } => o
            .field("state", "reconnecting")
            .field("attempt", attempt)
            .field("delay_ms", delay_ms),
        ConnectionState::NeedsAuth => o.field("state", "needs_auth"),
    };
    o.finish();
    out
}

/// `getSubscriptions()`: `[{id, sql, mode, last_seq_id (string|null), live}]`.
pub(crate) fn subscriptions_json(list: &[SubscriptionInfo]) -> String {
    let mut out = String::new();
    out.push('[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut o = ObjectWriter::new(&mut out);
        o.field("id", &s.id)
            .field("sql", &s.sql)
            .field("mode", s.mode.as_str())
            .field("last_seq_id", &s.last_seq_id.map(|s| s.to_string()))
            .field("live", &s.live);
        o.finish();
    }
    out.push(']');
    out
}

/// A subscription's schema (`null` when unknown).
pub(crate) fn schema_json(schema: Option<&[SchemaField]>) -> String {
    schema.to_json()
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::core::live::frames::{decode_json, ServerMessage};
    use crate::core::live::materializer::RowsDelta;
    use crate::core::live::SubscriptionMode;

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
        items.checkpoint("sub-1", SeqId::new(12));
        let out: Value = crate::core::json::parse(&items.finish().unwrap()).unwrap();
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
        let mut items = Items::default();
        items.event("sub-2", LiveEvent::Change(change), None, None);
        assert_eq!(
            items.finish().unwrap(),
            r#"[{"t":"event","id":"sub-2","event":{"type":"change","subscription_id":"sub-2","change_type":"update","rows":[{"id":"1","_seq":"20"}],"old_values":[{"id":"1","_seq":"19"}]}}]"#
        );
        // Ack and batch, rows decoded by the ack's schema (a bad cell listed), SeqIds as
        // strings: byte-for-byte the JSON live.ts has always read.
        let ServerMessage::SubscriptionAck(ack) = decode_json(
            br#"{"type":"subscription_ack","subscription_id":"s","total_rows":0,
            "batch_control":{"batch_num":0,"has_more":true,"status":"loading","last_seq_id":9007199254740993},
            "schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]},{"name":"n","data_type":"Int","index":1}]}"#,
        )
        .unwrap() else {
            panic!("not an ack");
        };
        let decoder = RowDecoder::new(&ack.schema, None);
        let ServerMessage::InitialDataBatch(batch) = decode_json(
            br#"{"type":"initial_data_batch","subscription_id":"s","rows":[{"id":7,"n":"x\u0007","_seq":"5"}],
            "batch_control":{"batch_num":1,"has_more":false,"status":"ready","last_seq_id":null}}"#,
        )
        .unwrap() else {
            panic!("not a batch");
        };
        let mut items = Items::default();
        items.event("s", LiveEvent::Ack(ack), Some(&decoder), None);
        items.event("s", LiveEvent::Batch(batch), Some(&decoder), None);
        assert_eq!(
            items.finish().unwrap(),
            concat!(
                r#"[{"t":"event","id":"s","event":{"type":"subscription_ack","subscription_id":"s","total_rows":0,"#,
                r#""batch_control":{"batch_num":0,"has_more":true,"status":"loading","last_seq_id":"9007199254740993"},"#,
                r#""schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]},{"name":"n","data_type":"Int","index":1}]}},"#,
                r#"{"t":"event","id":"s","event":{"type":"initial_data_batch","subscription_id":"s","rows":[{"id":"7","n":"x\u0007","_seq":"5"}],"#,
                r#""batch_control":{"batch_num":1,"has_more":false,"status":"ready","last_seq_id":null},"#,
                r#""invalid":[{"key":null,"column":"n","reason":"#,
            )
            .to_string()
                + &json!(invalid_reason(&decoder)).to_string()
                + "}]}}]"
        );
    }

    /// The reason the decoder gives for the bad `n` cell above.
    fn invalid_reason(decoder: &RowDecoder) -> String {
        let ty = decoder.column_type("n").unwrap();
        decode_cell_ref(ty, &json!("x\u{7}"), None).unwrap_err().1
    }

    #[test]
    fn plain_items_are_byte_for_byte_what_js_reads() {
        let error = KalamError::new("NETWORK", "socket \"closed\"").retryable(true);
        let mut items = Items::default();
        items.state(&ConnectionState::Connecting);
        items.state(&ConnectionState::Reconnecting {
            attempt: 2,
            delay_ms: 812,
        });
        items.sub_error("s", &error.clone().with_status(503), true);
        items.error(&error, Some((1006, "gone".into())));
        items.error(&KalamError::new("X", "y").with_details("d"), None);
        items.checkpoint("s", SeqId::new(-1));
        assert_eq!(
            items.finish().unwrap(),
            concat!(
                r#"[{"state":"connecting","t":"state"},"#,
                r#"{"state":"reconnecting","attempt":2,"delay_ms":812,"t":"state"},"#,
                r#"{"t":"sub_error","id":"s","error":{"code":"NETWORK","message":"socket \"closed\"","status":503,"retryable":true},"fatal":true},"#,
                r#"{"t":"error","error":{"code":"NETWORK","message":"socket \"closed\"","retryable":true},"closeCode":1006,"closeReason":"gone"},"#,
                r#"{"t":"error","error":{"code":"X","message":"y","retryable":false,"details":"d"}},"#,
                r#"{"t":"checkpoint","id":"s","seq":"-1"}]"#,
            )
        );
        for (state, json) in [
            (ConnectionState::Disconnected, r#"{"state":"disconnected"}"#),
            (ConnectionState::Connected, r#"{"state":"connected"}"#),
            (ConnectionState::NeedsAuth, r#"{"state":"needs_auth"}"#),
        ] {
            assert_eq!(state_json(&state), json);
        }
        let list = [
            SubscriptionInfo {
                id: "a".into(),
                sql: "SELECT 1".into(),
                mode: SubscriptionMode::Materialized,
                last_seq_id: Some(SeqId::new(i64::MAX)),
                live: true,
            },
            SubscriptionInfo {
                id: "b".into(),
                sql: "q".into(),
                mode: SubscriptionMode::Events,
                last_seq_id: None,
                live: false,
            },
        ];
        assert_eq!(
            subscriptions_json(&list),
            r#"[{"id":"a","sql":"SELECT 1","mode":"materialized","last_seq_id":"9223372036854775807","live":true},{"id":"b","sql":"q","mode":"events","last_seq_id":null,"live":false}]"#
        );
        assert_eq!(subscriptions_json(&[]), "[]");
        assert_eq!(schema_json(None), "null");
        assert_eq!(schema_json(Some(&[])), "[]");
    }
}
