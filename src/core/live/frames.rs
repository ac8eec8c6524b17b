//! WebSocket frame codecs (PROTOCOL.md §4.3–§4.5): server frames into typed
//! [`ServerMessage`]s, client messages into JSON text.
//!
//! Decoding never panics: malformed JSON, a missing required field, an unknown `type`, a
//! bad gzip member, a float where a SeqId belongs: all come back as a `KalamError` with code
//! `PROTOCOL` (the frame's beginning is in `details`).
//!
//! Encoding writes SeqId protocol fields (`from`, `last_seq_id`) as exact JSON integers and
//! always sends the full `protocol` object in `authenticate` (omitting it closes the socket
//! with 1011).

use super::gzip;
use super::row::read_rows;
use crate::core::error::KalamError;
use crate::core::json::{JsonError, ObjectWriter, Reader, ToJson, Value};
use crate::core::schema::SchemaField;
use crate::core::seq_id::SeqId;

/// One row as the server sends it: `{column: value}` (values per PROTOCOL.md §1.6; `_seq`
/// and BIGINTs are decimal strings).
pub use super::row::Row;

/// Default bound on the inflated size of one binary frame.
pub const DEFAULT_MAX_INFLATED_BYTES: usize = 64 * 1024 * 1024;

/// Every client frame must stay below the server's 64 KiB inbound frame limit.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024 - 1;

/// The negotiated serialization; we always ask for JSON + gzip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolOptions {
    pub serialization: String,
    pub compression: String,
}

impl Default for ProtocolOptions {
    fn default() -> ProtocolOptions {
        ProtocolOptions {
            serialization: "json".into(),
            compression: "gzip".into(),
        }
    }
}

/// `batch_control` of `subscription_ack` and `initial_data_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchControl {
    pub batch_num: u32,
    /// Authoritative: while true the client must send `next_batch`.
    pub has_more: bool,
    /// `"loading"`, `"loading_batch"` or `"ready"` (kept verbatim; absent: empty).
    pub status: String,
    /// Exclusive lower bound for the next `next_batch`; `null` for empty batches.
    pub last_seq_id: Option<SeqId>,
}

impl BatchControl {
    /// From its JSON object: `batch_num` (u32) and `has_more` required, `status` a string
    /// when present, `last_seq_id` a SeqId or null when present.
    fn from_json(v: &Value) -> Result<BatchControl, KalamError> {
        let bad = |field: &str| KalamError::protocol(format!("bad `batch_control.{field}`"));
        let batch_num = v
            .get("batch_num")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("batch_num"))?;
        let has_more = v
            .get("has_more")
            .and_then(Value::as_bool)
            .ok_or_else(|| bad("has_more"))?;
        let status = match v.get("status") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("status")),
        };
        let last_seq_id = match v.get("last_seq_id") {
            None | Some(Value::Null) => None,
            Some(seq) => Some(SeqId::from_json(seq)?),
        };
        Ok(BatchControl {
            batch_num,
            has_more,
            status,
            last_seq_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSuccess {
    pub user: String,
    pub role: String,
    pub protocol: Option<ProtocolOptions>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionAck {
    pub subscription_id: String,
    /// Always 0 on current servers (not a row count).
    pub total_rows: u64,
    pub batch_control: BatchControl,
    pub schema: Vec<SchemaField>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InitialDataBatch {
    pub subscription_id: String,
    pub rows: Vec<Row>,
    pub batch_control: BatchControl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Insert,
    Update,
    Delete,
}

impl ChangeType {
    /// The wire name (`change_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Insert => "insert",
            ChangeType::Update => "update",
            ChangeType::Delete => "delete",
        }
    }
}

/// A live change. `rows` is empty for deletes, `old_values` empty for inserts (§4.7):
/// - insert: `rows` = the new rows;
/// - update: `rows[i]` = key + new `_seq` + non-NULL columns; `old_values[i]` = key + old
///   `_seq` + the changed columns' old values (a column present here but absent from
///   `rows[i]` became NULL);
/// - delete: `old_values[i]` = the tombstone (`_deleted: true`, a new `_seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub subscription_id: String,
    pub change_type: ChangeType,
    pub rows: Vec<Row>,
    pub old_values: Vec<Row>,
}

/// `{"type":"error"}`. `subscription_id` is the real id, or a synthetic one:
/// `protocol`, `rate_limit`, `subscribe`, `invalid_subscription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub subscription_id: String,
    pub code: String,
    pub message: String,
}

impl ServerError {
    /// As a `KalamError` carrying the server's code verbatim.
    pub fn to_error(&self) -> KalamError {
        let retryable = self.code == "RATE_LIMIT_EXCEEDED";
        KalamError::new(self.code.clone(), self.message.clone()).retryable(retryable)
    }
}

/// A decoded server → client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    AuthSuccess(AuthSuccess),
    AuthError { message: String },
    SubscriptionAck(SubscriptionAck),
    InitialDataBatch(InitialDataBatch),
    Change(ChangeEvent),
    Error(ServerError),
}

impl ServerMessage {
    /// The subscription this message belongs to, if any (synthetic error ids included).
    pub fn subscription_id(&self) -> Option<&str> {
        match self {
            ServerMessage::SubscriptionAck(m) => Some(&m.subscription_id),
            ServerMessage::InitialDataBatch(m) => Some(&m.subscription_id),
            ServerMessage::Change(m) => Some(&m.subscription_id),
            ServerMessage::Error(m) => Some(&m.subscription_id),
            ServerMessage::AuthSuccess(_) | ServerMessage::AuthError { .. } => None,
        }
    }
}

/// The top-level keys of a server message that are read; others are skipped.
const FIELDS: [&str; 13] = [
    "type",
    "subscription_id",
    "user",
    "role",
    "protocol",
    "message",
    "code",
    "total_rows",
    "batch_control",
    "change_type",
    "schema",
    "rows",
    "old_values",
];
/// Fields up to here are kept as `Value`s and checked in [`validate`].
const SCALAR_FIELDS: usize = 10;

/// Single-pass flat view of any server message; validated into [`ServerMessage`]. The small
/// fields are read as `Value`s and type-checked in [`validate`]; rows are streamed straight
/// from the frame into [`Row`]s (no `Value` tree), the schema read from its `Value`.
#[derive(Default)]
struct RawServerMessage {
    /// `FIELDS[..SCALAR_FIELDS]`, `None` when absent.
    values: [Option<Value>; SCALAR_FIELDS],
    schema: Option<Vec<SchemaField>>,
    rows: Option<Vec<Row>>,
    old_values: Option<Vec<Row>>,
}

/// Why a frame did not read: bad JSON, or a well-formed frame breaking a reading rule.
enum ReadError {
    Json(JsonError),
    Field(String),
}

impl From<JsonError> for ReadError {
    fn from(e: JsonError) -> ReadError {
        ReadError::Json(e)
    }
}

impl RawServerMessage {
    /// Reads one server message object (and nothing after it but whitespace).
    fn read(bytes: &[u8]) -> Result<RawServerMessage, ReadError> {
        let mut r = Reader::new(bytes);
        r.begin_object()?;
        let mut raw = RawServerMessage::default();
        let mut seen = 0u16;
        while let Some(key) = r.next_key()? {
            let Some(i) = FIELDS.iter().position(|f| *f == key) else {
                r.skip()?;
                continue;
            };
            // A repeated key is an error, as it was for the derived reader.
            if seen & (1 << i) != 0 {
                return Err(ReadError::Field(format!("duplicate field `{}`", FIELDS[i])));
            }
            seen |= 1 << i;
            match i {
                10 => {
                    raw.schema = match r.value()? {
                        Value::Null => None,
                        v => Some(
                            SchemaField::list_from_value(v)
                                .map_err(|e| ReadError::Field(format!("bad `schema`: {e}")))?,
                        ),
                    }
                }
                11 => raw.rows = read_rows(&mut r)?,
                12 => raw.old_values = read_rows(&mut r)?,
                _ => raw.values[i] = Some(r.value()?),
            }
        }
        r.end()?;
        Ok(raw)
    }

    /// Takes field `i` (< [`SCALAR_FIELDS`]); JSON `null` counts as absent.
    fn take(&mut self, i: usize) -> Option<Value> {
        self.values[i].take().filter(|v| !v.is_null())
    }

    fn string(&mut self, i: usize) -> Result<Option<String>, KalamError> {
        match self.take(i) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(KalamError::protocol(format!(
                "server message field `{}` is not a string",
                FIELDS[i]
            ))),
        }
    }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    text.into_owned()
}

fn missing(kind: &str, field: &str) -> KalamError {
    KalamError::protocol(format!("server message `{kind}` lacks `{field}`"))
}

/// Decodes a text frame (always plain JSON).
pub fn decode_text(text: &str) -> Result<ServerMessage, KalamError> {
    decode_json(text.as_bytes())
}

/// Decodes a binary frame (see [`binary_json`]).
pub fn decode_binary(bytes: &[u8], max_inflated: usize) -> Result<ServerMessage, KalamError> {
    decode_json(&binary_json(bytes, max_inflated)?)
}

/// The JSON in a binary frame: gzip (magic `1F 8B`) inflated to at most `max_inflated`
/// bytes, or a raw frame starting with `{` as it is; anything else (e.g. msgpack, never
/// negotiated by us) is a `PROTOCOL` error.
pub fn binary_json(
    bytes: &[u8],
    max_inflated: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, KalamError> {
    if gzip::is_gzip(bytes) {
        Ok(std::borrow::Cow::Owned(gzip::gunzip(bytes, max_inflated)?))
    } else if bytes.first() == Some(&b'{') {
        Ok(std::borrow::Cow::Borrowed(bytes))
    } else {
        Err(KalamError::protocol(
            "binary frame is neither gzip nor JSON (msgpack is not negotiated)",
        ))
    }
}

/// The envelope of an `initial_data_batch`: enough to request the next page before the
/// rows are decoded (they are skipped, not allocated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPeek {
    pub subscription_id: String,
    pub batch_control: BatchControl,
}

/// [`BatchPeek`] of a JSON frame when it is an `initial_data_batch`, else `None`. Reads
/// only the `subscription_id` near the start and the `batch_control` after the rows,
/// without scanning the rows; a wrong guess is harmless (the full decode that follows is
/// authoritative and requests the next page itself when the peek did not).
pub fn peek_batch(bytes: &[u8]) -> Option<BatchPeek> {
    let head = &bytes[..bytes.len().min(256)];
    find(head, b"\"initial_data_batch\"")?;
    let id_at = find(head, b"\"subscription_id\"")?;
    // Read from the head only: a Reader checks its whole input's UTF-8 first, and the id is
    // short (one cut off at 256 bytes is just no peek).
    let subscription_id = value_after_key(head, id_at + 17)?.str().ok()?.into_owned();
    let control_at = bytes.windows(15).rposition(|w| w == b"\"batch_control\"")?;
    let control = value_after_key(bytes, control_at + 15)?.value().ok()?;
    let batch_control = BatchControl::from_json(&control).ok()?;
    Some(BatchPeek {
        subscription_id,
        batch_control,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A reader at the JSON value after `: ` at `at` (just past a key); nothing after that
/// value is looked at.
fn value_after_key(bytes: &[u8], at: usize) -> Option<Reader<'_>> {
    let rest = &bytes[at..];
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest[colon] != b':' {
        return None;
    }
    Some(Reader::new(&rest[colon + 1..]))
}

/// Decodes one JSON server message from UTF-8 bytes.
pub fn decode_json(bytes: &[u8]) -> Result<ServerMessage, KalamError> {
    let raw = RawServerMessage::read(bytes).map_err(|e| {
        let why = match e {
            ReadError::Json(e) => e.to_string(),
            ReadError::Field(why) => why,
        };
        KalamError::protocol(format!("malformed server frame: {why}")).with_details(snippet(bytes))
    })?;
    validate(raw).map_err(|e| e.with_details(snippet(bytes)))
}

fn validate(mut raw: RawServerMessage) -> Result<ServerMessage, KalamError> {
    // Every field is type-checked whatever the kind, as the derived reader did.
    let kind = raw.string(0)?.ok_or_else(|| missing("?", "type"))?;
    let kind = kind.as_str();
    let subscription_id = raw.string(1)?;
    let user = raw.string(2)?;
    let role = raw.string(3)?;
    let protocol = match raw.take(4) {
        None => None,
        Some(v) => {
            let field = |name: &str| match v.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(KalamError::protocol(format!("bad `protocol.{name}`"))),
            };
            Some(ProtocolOptions {
                serialization: field("serialization")?,
                compression: field("compression")?,
            })
        }
    };
    let message = raw.string(5)?;
    let code = raw.string(6)?;
    let total_rows = match raw.take(7) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| KalamError::protocol("bad `total_rows`"))?,
        ),
    };
    let batch_control = raw
        .take(8)
        .map(|v| BatchControl::from_json(&v))
        .transpose()?;
    let change_type = raw.string(9)?;
    let sub_id = |id: Option<String>| id.ok_or_else(|| missing(kind, "subscription_id"));
    Ok(match kind {
        "auth_success" => ServerMessage::AuthSuccess(AuthSuccess {
            user: user.unwrap_or_default(),
            role: role.unwrap_or_default(),
            protocol,
        }),
        "auth_error" => ServerMessage::AuthError {
            message: message.unwrap_or_default(),
        },
        "subscription_ack" => ServerMessage::SubscriptionAck(SubscriptionAck {
            subscription_id: sub_id(subscription_id)?,
            total_rows: total_rows.unwrap_or(0),
            batch_control: batch_control.ok_or_else(|| missing(kind, "batch_control"))?,
            schema: raw.schema.unwrap_or_default(),
        }),
        "initial_data_batch" => ServerMessage::InitialDataBatch(InitialDataBatch {
            subscription_id: sub_id(subscription_id)?,
            rows: raw.rows.unwrap_or_default(),
            batch_control: batch_control.ok_or_else(|| missing(kind, "batch_control"))?,
        }),
        "change" => {
            let subscription_id = sub_id(subscription_id)?;
            let change_type = match change_type.as_deref() {
                Some("insert") => ChangeType::Insert,
                Some("update") => ChangeType::Update,
                Some("delete") => ChangeType::Delete,
                Some(other) => {
                    return Err(KalamError::protocol(format!(
                        "unknown change_type `{other}`"
                    )))
                }
                None => return Err(missing(kind, "change_type")),
            };
            let (rows, old_values) = (raw.rows, raw.old_values);
            match change_type {
                ChangeType::Insert | ChangeType::Update if rows.is_none() => {
                    return Err(missing("change", "rows"))
                }
                ChangeType::Delete if old_values.is_none() => {
                    return Err(missing("change", "old_values"))
                }
                _ => {}
            }
            ServerMessage::Change(ChangeEvent {
                subscription_id,
                change_type,
                rows: rows.unwrap_or_default(),
                old_values: old_values.unwrap_or_default(),
            })
        }
        "error" => ServerMessage::Error(ServerError {
            subscription_id: subscription_id.unwrap_or_default(),
            code: code.ok_or_else(|| missing(kind, "code"))?,
            message: message.unwrap_or_default(),
        }),
        other => {
            return Err(KalamError::protocol(format!(
                "unknown server message type `{other}`"
            )))
        }
    })
}

/// `subscribe.subscription.options` as sent. Absent fields are omitted; `from` is a JSON
/// integer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireSubscribeOptions {
    pub batch_size: Option<u32>,
    pub last_rows: Option<u32>,
    pub from: Option<SeqId>,
}

impl ToJson for WireSubscribeOptions {
    fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.opt_field("batch_size", &self.batch_size)
            .opt_field("last_rows", &self.last_rows)
            .opt_field("from", &self.from.map(SeqId::as_i64));
        o.finish();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest<'a> {
    pub id: &'a str,
    pub sql: &'a str,
    /// Presence matters: `None` means no initial snapshot at all.
    pub options: Option<WireSubscribeOptions>,
}

/// A client → server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    Authenticate {
        method: &'a str,
        token: &'a str,
        protocol: ProtocolOptions,
    },
    Subscribe {
        subscription: SubscriptionRequest<'a>,
    },
    NextBatch {
        subscription_id: &'a str,
        last_seq_id: Option<SeqId>,
    },
    Unsubscribe {
        subscription_id: &'a str,
    },
    Ping,
}

impl<'a> ClientMessage<'a> {
    /// `{"type":"authenticate","method":"jwt","token":…,"protocol":{"serialization":"json","compression":"gzip"}}`
    pub fn authenticate(token: &'a str) -> ClientMessage<'a> {
        ClientMessage::Authenticate {
            method: "jwt",
            token,
            protocol: ProtocolOptions::default(),
        }
    }

    /// The JSON text frame: `{"type":…}` then the fields in declaration order, `None`
    /// fields omitted, SeqIds as JSON integers.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        let mut o = ObjectWriter::new(&mut out);
        match self {
            ClientMessage::Authenticate {
                method,
                token,
                protocol,
            } => {
                o.field("type", "authenticate")
                    .field("method", *method)
                    .field("token", *token);
                let p = o.key("protocol");
                let mut p = ObjectWriter::new(p);
                p.field("serialization", &protocol.serialization)
                    .field("compression", &protocol.compression);
                p.finish();
            }
            ClientMessage::Subscribe { subscription } => {
                o.field("type", "subscribe");
                let mut s = ObjectWriter::new(o.key("subscription"));
                s.field("id", subscription.id)
                    .field("sql", subscription.sql)
                    .opt_field("options", &subscription.options);
                s.finish();
            }
            ClientMessage::NextBatch {
                subscription_id,
                last_seq_id,
            } => {
                o.field("type", "next_batch")
                    .field("subscription_id", *subscription_id)
                    .opt_field("last_seq_id", &last_seq_id.map(SeqId::as_i64));
            }
            ClientMessage::Unsubscribe { subscription_id } => {
                o.field("type", "unsubscribe")
                    .field("subscription_id", *subscription_id);
            }
            ClientMessage::Ping => {
                o.field("type", "ping");
            }
        }
        o.finish();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    #[test]
    fn peek_batch_reads_the_envelope_without_the_rows() {
        let frame = br#"{"type":"initial_data_batch","subscription_id":"sub-3","rows":[{"id":"1","batch_control":"x"},{"id":"2"}],"batch_control":{"batch_num":0,"has_more":true,"status":"loading","last_seq_id":9007199254740993}}"#;
        let peek = peek_batch(frame).unwrap();
        assert_eq!(peek.subscription_id, "sub-3");
        assert!(peek.batch_control.has_more);
        assert_eq!(
            peek.batch_control.last_seq_id,
            Some(SeqId::new(9_007_199_254_740_993))
        );
        let spaced = br#"{ "type" : "initial_data_batch", "subscription_id" : "s", "rows" : [], "batch_control" : { "batch_num" : 1, "has_more" : false, "status" : "ready", "last_seq_id" : null } }"#;
        let peek = peek_batch(spaced).unwrap();
        assert!(!peek.batch_control.has_more);
        assert_eq!(peek.batch_control.last_seq_id, None);
        assert_eq!(
            peek_batch(
                br#"{"type":"change","subscription_id":"s","change_type":"insert","rows":[]}"#
            ),
            None
        );
        assert_eq!(
            peek_batch(br#"{"type":"initial_data_batch","subscription_id":"s","rows":["#),
            None
        );
        // The id is read from the first 256 bytes only: a longer one is no peek (the full
        // decode still reads it).
        let long = format!(
            r#"{{"type":"initial_data_batch","subscription_id":"{}","rows":[],"batch_control":{{"batch_num":0,"has_more":true}}}}"#,
            "s".repeat(300)
        );
        assert_eq!(peek_batch(long.as_bytes()), None);
        assert!(matches!(
            decode_json(long.as_bytes()),
            Ok(ServerMessage::InitialDataBatch(b)) if b.subscription_id.len() == 300
        ));
    }

    #[test]
    fn encodes_client_messages_with_integer_seq_ids() {
        assert_eq!(
            ClientMessage::authenticate("tok").to_json(),
            r#"{"type":"authenticate","method":"jwt","token":"tok","protocol":{"serialization":"json","compression":"gzip"}}"#
        );
        let sub = ClientMessage::Subscribe {
            subscription: SubscriptionRequest {
                id: "pg2",
                sql: "SELECT * FROM wire445072.inbox WHERE room = 'paging'",
                options: Some(WireSubscribeOptions {
                    from: Some(SeqId::new(383_266_668_372_922_368)),
                    ..Default::default()
                }),
            },
        };
        // Byte-for-byte what the recorder sent.
        assert_eq!(
            sub.to_json(),
            "{\"type\":\"subscribe\",\"subscription\":{\"id\":\"pg2\",\"sql\":\"SELECT * FROM wire445072.inbox WHERE room = 'paging'\",\"options\":{\"from\":383266668372922368}}}"
        );
        let next = ClientMessage::NextBatch {
            subscription_id: "pg",
            last_seq_id: Some(SeqId::new(383_266_655_613_849_600)),
        };
        assert_eq!(
            next.to_json(),
            "{\"type\":\"next_batch\",\"subscription_id\":\"pg\",\"last_seq_id\":383266655613849600}"
        );
        assert_eq!(
            ClientMessage::Unsubscribe {
                subscription_id: "noopts"
            }
            .to_json(),
            r#"{"type":"unsubscribe","subscription_id":"noopts"}"#
        );
        assert_eq!(ClientMessage::Ping.to_json(), r#"{"type":"ping"}"#);
        let empty = ClientMessage::Subscribe {
            subscription: SubscriptionRequest {
                id: "a",
                sql: "q",
                options: Some(WireSubscribeOptions::default()),
            },
        };
        assert!(empty.to_json().ends_with(r#""options":{}}}"#));
    }

    #[test]
    fn decodes_every_server_message_kind() {
        let ack = decode_text(
            r#"{"type":"subscription_ack","subscription_id":"s","total_rows":0,
               "batch_control":{"batch_num":0,"has_more":true,"status":"loading","last_seq_id":383266655613849600},
               "schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk","nn","uq"]}]}"#,
        )
        .unwrap();
        match ack {
            ServerMessage::SubscriptionAck(a) => {
                assert_eq!(
                    a.batch_control.last_seq_id,
                    Some(SeqId::new(383_266_655_613_849_600))
                );
                assert_eq!(a.schema[0].name, "id");
            }
            other => panic!("{other:?}"),
        }
        let empty = decode_text(
            r#"{"type":"initial_data_batch","subscription_id":"s","rows":[],
               "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":null}}"#,
        )
        .unwrap();
        match empty {
            ServerMessage::InitialDataBatch(b) => {
                assert!(b.rows.is_empty());
                assert_eq!(b.batch_control.last_seq_id, None);
            }
            other => panic!("{other:?}"),
        }
        let err = decode_text(
            r#"{"type":"error","subscription_id":"bad1","code":"INVALID_SQL","message":"Invalid SQL: x"}"#,
        )
        .unwrap();
        assert_eq!(
            err,
            ServerMessage::Error(ServerError {
                subscription_id: "bad1".into(),
                code: "INVALID_SQL".into(),
                message: "Invalid SQL: x".into()
            })
        );
        assert!(matches!(
            decode_text(r#"{"type":"auth_error","message":"Invalid credentials"}"#).unwrap(),
            ServerMessage::AuthError { .. }
        ));
    }

    #[test]
    fn bad_input_is_a_protocol_error_never_a_panic() {
        let cases = [
            "",
            "{not json",
            "[]",
            "null",
            r#"{"no":"type"}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"initial_data"}"#,
            r#"{"type":"change","subscription_id":"s","change_type":"upsert","rows":[]}"#,
            r#"{"type":"change","subscription_id":"s","change_type":"insert"}"#,
            r#"{"type":"change","subscription_id":"s","change_type":"delete"}"#,
            r#"{"type":"subscription_ack","subscription_id":"s"}"#,
            r#"{"type":"initial_data_batch","subscription_id":"s","rows":[],"batch_control":{"batch_num":0,"has_more":false,"last_seq_id":1.5}}"#,
            r#"{"type":"initial_data_batch","subscription_id":"s","rows":[1],"batch_control":{"batch_num":0,"has_more":false,"last_seq_id":null}}"#,
            r#"{"type":"error","subscription_id":"s"}"#,
            r#"{"type":7}"#,
            // The hand-written reader keeps the derived one's strictness.
            r#"{"type":"error","type":"error","subscription_id":"s","code":"X"}"#,
            r#"{"type":"error","subscription_id":5,"code":"X"}"#,
            r#"{"type":"subscription_ack","subscription_id":"s","total_rows":"5","batch_control":{"batch_num":0,"has_more":false}}"#,
            r#"{"type":"subscription_ack","subscription_id":"s","batch_control":{"batch_num":0,"has_more":false,"status":null}}"#,
            r#"{"type":"subscription_ack","subscription_id":"s","batch_control":{"batch_num":4294967296,"has_more":false}}"#,
            r#"{"type":"subscription_ack","subscription_id":"s","batch_control":{"batch_num":0}}"#,
            r#"{"type":"auth_success","user":"u","role":"r","protocol":{"serialization":"json"}}"#,
            r#"{"type":"auth_error","message":"m","rows":{}}"#,
        ];
        for case in cases {
            let err = decode_text(case).unwrap_err();
            assert_eq!(err.code, "PROTOCOL", "{case}");
        }
        for bytes in [&b""[..], b"\x00\x01", b"\x1f\x8b\x08", b"\x92\xa4ping"] {
            assert_eq!(decode_binary(bytes, 1 << 20).unwrap_err().code, "PROTOCOL");
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_nulls_count_as_absent() {
        let msg = decode_text(
            r#"{"extra":{"deep":[1,{"x":null}]},"type":"subscription_ack","subscription_id":"s",
               "total_rows":null,"user":null,"batch_control":{"batch_num":2,"has_more":true,"x":1},
               "schema":null,"more":"x"}"#,
        )
        .unwrap();
        let ServerMessage::SubscriptionAck(ack) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!((ack.total_rows, ack.schema.len()), (0, 0));
        assert_eq!(
            ack.batch_control,
            BatchControl {
                batch_num: 2,
                has_more: true,
                status: String::new(),
                last_seq_id: None
            }
        );
        let auth = decode_text(
            r#"{"type":"auth_success","user":"u","role":"r","protocol":{"serialization":"json","compression":"none"}}"#,
        )
        .unwrap();
        assert_eq!(
            auth,
            ServerMessage::AuthSuccess(AuthSuccess {
                user: "u".into(),
                role: "r".into(),
                protocol: Some(ProtocolOptions {
                    serialization: "json".into(),
                    compression: "none".into()
                })
            })
        );
    }

    #[test]
    fn decodes_gzip_frames_and_bounds_them() {
        let msg = json!({"type":"change","subscription_id":"s","change_type":"insert",
                         "rows":[{"id":"1","_seq":"383266659942371328","body":"x".repeat(600)}]});
        let bytes = gzip::gzip_for_tests(msg.to_string().as_bytes());
        match decode_binary(&bytes, 1 << 20).unwrap() {
            ServerMessage::Change(c) => assert_eq!(c.rows[0]["id"], "1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(decode_binary(&bytes, 100).unwrap_err().code, "PROTOCOL");
    }
}
