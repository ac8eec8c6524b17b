//! Topic consumption over HTTP (PROTOCOL.md §7.2–§7.4): consume/ack request bodies,
//! response parsing with exact u64 offsets and decoded payloads, topic error shapes, and
//! an [`AckTracker`] that turns out-of-order "processed" marks into batched acks.
//!
//! Errors use `http::envelope::parse_error_body`: topic errors put the message in `error`
//! and the code in `code` (`403 FORBIDDEN` for a role without topic access, `404
//! NOT_FOUND` for an unknown topic, `500 INTERNAL_ERROR`); auth failures come as SQL-style
//! envelopes (`TOKEN_EXPIRED`, …); a malformed body gets a text/plain 400 (`HTTP_ERROR`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::core::base64;
use crate::core::error::{KalamError, Result};
use crate::core::http::envelope::parse_error_body;

/// The official consumer's default `batch_size`.
pub const DEFAULT_BATCH_SIZE: u64 = 10;

/// Where a group with no committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    Offset(u64),
}

fn offset_of(value: &Value) -> Result<u64> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(u)
            } else if n.as_i64().is_some() {
                Ok(0) // negative: clamped like the official consumer
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.is_finite() {
                    Ok(f.max(0.0).floor() as u64)
                } else {
                    Err(KalamError::invalid_argument(
                        "the start offset is not finite",
                    ))
                }
            }
        }
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| KalamError::invalid_argument(format!("offset {s} is out of range"))),
        Value::Object(map) if map.len() == 1 && map.contains_key("$bigint") => {
            offset_of(&map["$bigint"])
        }
        other => Err(KalamError::invalid_argument(format!(
            "{other} is not an offset"
        ))),
    }
}

impl StartPosition {
    /// Accepts the official consumer's spellings: `"earliest"` / `"latest"` (any case;
    /// empty = latest), a number or digit string (an offset), `{"offset": n}` /
    /// `{"Offset": n}`, `{"$bigint": "n"}`; `null` = latest. Negative offsets clamp to 0.
    pub fn from_json(value: &Value) -> Result<StartPosition> {
        match value {
            Value::Null => Ok(StartPosition::Latest),
            Value::String(s) => {
                let t = s.trim();
                if t.is_empty() || t.eq_ignore_ascii_case("latest") {
                    Ok(StartPosition::Latest)
                } else if t.eq_ignore_ascii_case("earliest") {
                    Ok(StartPosition::Earliest)
                } else if t.bytes().all(|b| b.is_ascii_digit()) {
                    offset_of(&Value::String(t.to_string())).map(StartPosition::Offset)
                } else {
                    Err(KalamError::invalid_argument(format!(
                        "invalid consume start {s:?} (use 'earliest', 'latest' or an offset)"
                    )))
                }
            }
            Value::Object(map) => match map.get("offset").or_else(|| map.get("Offset")) {
                Some(v) => offset_of(v).map(StartPosition::Offset),
                None => offset_of(value).map(StartPosition::Offset),
            },
            Value::Number(_) => offset_of(value).map(StartPosition::Offset),
            other => Err(KalamError::invalid_argument(format!(
                "invalid consume start {other}"
            ))),
        }
    }

    /// The wire form: `"Earliest"`, `"Latest"`, `{"Offset": n}` (exact integer).
    pub fn to_wire(self) -> Value {
        match self {
            StartPosition::Earliest => Value::String("Earliest".into()),
            StartPosition::Latest => Value::String("Latest".into()),
            StartPosition::Offset(n) => serde_json::json!({ "Offset": n }),
        }
    }
}

/// A `POST /v1/api/topics/consume` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeRequest {
    pub topic_id: String,
    pub group_id: String,
    pub start: StartPosition,
    pub limit: u64,
    pub partition_id: u32,
    /// Accepted and ignored by the server (no long-poll).
    pub timeout_seconds: Option<u64>,
}

fn pick<'a>(map: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| map.get(*n))
        .filter(|v| !v.is_null())
}

fn u64_option(map: &Map<String, Value>, names: &[&str]) -> Result<Option<u64>> {
    match pick(map, names) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| {
                KalamError::invalid_argument(format!("{} must be a non-negative number", names[0]))
            }),
    }
}

impl ConsumeRequest {
    /// From the JS options object (JSON text): `topic` | `topic_id` | `topicId`,
    /// `group_id` | `groupId` | `group`, `start`, `batch_size` | `batchSize` | `limit`
    /// (default 10), `partition_id` | `partitionId` (default 0), `timeout_seconds` |
    /// `timeoutSeconds`. Unknown keys (e.g. `auto_ack`) are ignored.
    pub fn from_options_json(text: &str) -> Result<ConsumeRequest> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            KalamError::invalid_argument(format!("consume options are not JSON: {e}"))
        })?;
        let map = v
            .as_object()
            .ok_or_else(|| KalamError::invalid_argument("consume options must be an object"))?;
        let text_of = |names: &[&str], what: &str| -> Result<String> {
            match pick(map, names).and_then(Value::as_str) {
                Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
                _ => Err(KalamError::invalid_argument(format!(
                    "consume needs a {what}"
                ))),
            }
        };
        let partition = u64_option(map, &["partition_id", "partitionId"])?.unwrap_or(0);
        let limit =
            u64_option(map, &["batch_size", "batchSize", "limit"])?.unwrap_or(DEFAULT_BATCH_SIZE);
        if limit == 0 {
            return Err(KalamError::invalid_argument(
                "batch_size must be at least 1",
            ));
        }
        Ok(ConsumeRequest {
            topic_id: text_of(&["topic", "topic_id", "topicId"], "topic")?,
            group_id: text_of(&["group_id", "groupId", "group"], "group_id")?,
            start: StartPosition::from_json(pick(map, &["start"]).unwrap_or(&Value::Null))?,
            limit,
            partition_id: u32::try_from(partition)
                .map_err(|_| KalamError::invalid_argument("partition_id is out of range"))?,
            timeout_seconds: u64_option(map, &["timeout_seconds", "timeoutSeconds"])?,
        })
    }

    pub fn body_json(&self) -> String {
        let mut body = serde_json::json!({
            "topic_id": self.topic_id,
            "group_id": self.group_id,
            "start": self.start.to_wire(),
            "limit": self.limit,
            "partition_id": self.partition_id,
        });
        if let Some(t) = self.timeout_seconds {
            body["timeout_seconds"] = Value::from(t);
        }
        body.to_string()
    }
}

/// The body of `POST /v1/api/topics/ack` (`upto_offset` inclusive, exact integer).
pub fn ack_body(topic_id: &str, group_id: &str, partition_id: u32, upto_offset: u64) -> String {
    serde_json::json!({
        "topic_id": topic_id, "group_id": group_id,
        "partition_id": partition_id, "upto_offset": upto_offset
    })
    .to_string()
}

/// One consumed message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicMessage {
    /// The topic id (`topic` in the official consumer's message shape).
    #[serde(rename = "topic")]
    pub topic_id: String,
    pub group_id: String,
    pub partition_id: u32,
    pub offset: u64,
    /// The decoded payload: the row object (fallbacks: the decoded text, then the raw
    /// base64 string).
    pub payload: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A consume answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumeResponse {
    pub messages: Vec<TopicMessage>,
    pub next_offset: u64,
    pub has_more: bool,
}

impl ConsumeResponse {
    /// JSON for JS (official `ConsumeResponse` shape, minus the deprecated `value` alias
    /// which the bindings can add as `value = payload`).
    /// Offsets are also given as exact decimal strings (`offset_exact`,
    /// `next_offset_exact`): JS numbers are exact only below 2^53.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("plain values serialize");
        if let Some(messages) = value["messages"].as_array_mut() {
            for (json, message) in messages.iter_mut().zip(&self.messages) {
                json["offset_exact"] = Value::String(message.offset.to_string());
            }
        }
        value["next_offset_exact"] = Value::String(self.next_offset.to_string());
        value.to_string()
    }
}

/// base64 (standard, padded) → UTF-8 → JSON. Not JSON: the decoded text; not base64 or
/// not UTF-8: the input string unchanged.
pub fn decode_payload(b64: &str) -> Value {
    let Ok(bytes) = base64::decode(b64.trim()) else {
        return Value::String(b64.to_string());
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Value::String(b64.to_string());
    };
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn protocol(what: &str) -> KalamError {
    KalamError::protocol(format!("unexpected topic response: {what}"))
}

fn exact_u64(v: Option<&Value>, what: &str) -> Result<u64> {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| protocol(&format!("{what} is {n}"))),
        Some(Value::String(s)) => s.parse().map_err(|_| protocol(&format!("{what} is {s:?}"))),
        _ => Err(protocol(&format!("{what} missing"))),
    }
}

fn parse_message(v: &Value, group_id: &str) -> Result<TopicMessage> {
    let m = v
        .as_object()
        .ok_or_else(|| protocol("message is not an object"))?;
    let opt_str = |k: &str| match m.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    Ok(TopicMessage {
        topic_id: opt_str("topic_id").unwrap_or_default(),
        group_id: group_id.to_string(),
        partition_id: u32::try_from(exact_u64(m.get("partition_id"), "partition_id").unwrap_or(0))
            .map_err(|_| protocol("partition_id out of range"))?,
        offset: exact_u64(m.get("offset"), "offset")?,
        payload: match m.get("payload") {
            Some(Value::String(s)) => decode_payload(s),
            Some(other) => other.clone(),
            None => Value::Null,
        },
        key: opt_str("key"),
        op: opt_str("op"),
        timestamp_ms: m.get("timestamp_ms").and_then(|t| {
            t.as_i64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        }),
        user: opt_str("user"),
    })
}

/// The JSON of a 2xx topic answer; any other answer (or a 2xx carrying `error`) is the
/// error it describes.
fn success_json(status: u16, body: &str) -> Result<Value> {
    if !(200..300).contains(&status) {
        return Err(parse_error_body(status, body));
    }
    let v: Value =
        serde_json::from_str(body).map_err(|e| protocol(&e.to_string()).with_status(status))?;
    if v.get("error").is_some() {
        return Err(parse_error_body(status, body));
    }
    Ok(v)
}

/// Parses a consume answer; `group_id` is copied into each message (the official shape
/// carries it).
pub fn parse_consume_response(status: u16, body: &str, group_id: &str) -> Result<ConsumeResponse> {
    let v = success_json(status, body)?;
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol("no messages array"))?
        .iter()
        .map(|m| parse_message(m, group_id))
        .collect::<Result<Vec<_>>>()?;
    let next_offset = match v.get("next_offset") {
        Some(n) => exact_u64(Some(n), "next_offset")?,
        None => messages.last().map_or(0, |m| m.offset + 1),
    };
    Ok(ConsumeResponse {
        messages,
        next_offset,
        has_more: v.get("has_more").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// An ack answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AckResponse {
    pub success: bool,
    pub acknowledged_offset: u64,
}

pub fn parse_ack_response(status: u16, body: &str) -> Result<AckResponse> {
    let v = success_json(status, body)?;
    Ok(AckResponse {
        success: v.get("success").and_then(Value::as_bool).unwrap_or(false),
        acknowledged_offset: exact_u64(v.get("acknowledged_offset"), "acknowledged_offset")?,
    })
}

// ------------------------------------------------------------------------------------------
// Ack tracking
// ------------------------------------------------------------------------------------------

/// Offsets of one partition: what was handed to the app and what it finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionAcks {
    /// offset → processed?
    pending: BTreeMap<u64, bool>,
    acked: Option<u64>,
}

impl PartitionAcks {
    pub fn new() -> PartitionAcks {
        PartitionAcks::default()
    }

    /// An offset was delivered to the app. Offsets at or below the last ack (redelivery
    /// of committed messages) are ignored.
    pub fn delivered(&mut self, offset: u64) {
        if self.acked.is_some_and(|a| offset <= a) {
            return;
        }
        self.pending.entry(offset).or_insert(false);
    }

    /// The app finished `offset` (any order). Unknown offsets are registered as
    /// delivered-and-processed.
    pub fn processed(&mut self, offset: u64) {
        if self.acked.is_some_and(|a| offset <= a) {
            return;
        }
        self.pending.insert(offset, true);
    }

    /// The highest offset that can be acked now: every offset from the start of the
    /// pending range (or from the last ack + 1) up to it was delivered here and processed,
    /// with no gap. `None` when nothing new can be acked.
    pub fn ack_candidate(&self) -> Option<u64> {
        let mut expected = match self.acked {
            Some(a) => a + 1,
            None => *self.pending.keys().next()?,
        };
        let mut best = None;
        for (&offset, &done) in self.pending.range(expected..) {
            if offset != expected || !done {
                break;
            }
            best = Some(offset);
            expected = offset + 1;
        }
        best
    }

    /// The server confirmed an ack up to `upto` (inclusive).
    pub fn acked(&mut self, upto: u64) {
        if self.acked.is_some_and(|a| a >= upto) {
            return;
        }
        self.acked = Some(upto);
        self.pending = self.pending.split_off(&(upto + 1));
    }

    pub fn last_acked(&self) -> Option<u64> {
        self.acked
    }

    /// Delivered offsets not yet acked (processed or not).
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }
}

/// [`PartitionAcks`] for every partition of one (topic, group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckTracker {
    partitions: BTreeMap<u32, PartitionAcks>,
}

impl AckTracker {
    pub fn new() -> AckTracker {
        AckTracker::default()
    }

    pub fn delivered(&mut self, partition_id: u32, offset: u64) {
        self.partitions
            .entry(partition_id)
            .or_default()
            .delivered(offset);
    }

    /// Registers every message of a consume answer.
    pub fn delivered_batch(&mut self, response: &ConsumeResponse) {
        for m in &response.messages {
            self.delivered(m.partition_id, m.offset);
        }
    }

    pub fn processed(&mut self, partition_id: u32, offset: u64) {
        self.partitions
            .entry(partition_id)
            .or_default()
            .processed(offset);
    }

    /// `(partition_id, upto_offset)` pairs to send as acks now (one per partition).
    pub fn pending_acks(&self) -> Vec<(u32, u64)> {
        self.partitions
            .iter()
            .filter_map(|(&p, acks)| acks.ack_candidate().map(|o| (p, o)))
            .collect()
    }

    pub fn acked(&mut self, partition_id: u32, upto: u64) {
        self.partitions.entry(partition_id).or_default().acked(upto);
    }

    pub fn partition(&self, partition_id: u32) -> Option<&PartitionAcks> {
        self.partitions.get(&partition_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::codes;
    use crate::core::http::envelope::tests::http_exchanges;
    use serde_json::json;

    #[test]
    fn start_positions() {
        let cases = [
            (json!("earliest"), StartPosition::Earliest),
            (json!("EARLIEST"), StartPosition::Earliest),
            (json!("Latest"), StartPosition::Latest),
            (json!(""), StartPosition::Latest),
            (json!(null), StartPosition::Latest),
            (json!(42), StartPosition::Offset(42)),
            (json!(-3), StartPosition::Offset(0)),
            (json!(2.7), StartPosition::Offset(2)),
            (json!("17"), StartPosition::Offset(17)),
            (json!({"offset": 5}), StartPosition::Offset(5)),
            (json!({"Offset": 6}), StartPosition::Offset(6)),
            (
                json!({"$bigint": "18446744073709551615"}),
                StartPosition::Offset(u64::MAX),
            ),
        ];
        for (v, want) in cases {
            assert_eq!(StartPosition::from_json(&v).unwrap(), want, "{v}");
        }
        for bad in [
            json!("soon"),
            json!(true),
            json!({"offset": "x"}),
            json!({}),
            json!([1]),
        ] {
            assert_eq!(
                StartPosition::from_json(&bad).unwrap_err().code,
                codes::INVALID_ARGUMENT,
                "{bad}"
            );
        }
        assert_eq!(
            StartPosition::Offset(u64::MAX).to_wire(),
            json!({"Offset": 18446744073709551615u64})
        );
    }

    #[test]
    fn consume_bodies_match_the_recording() {
        let req = ConsumeRequest::from_options_json(
            r#"{"topic":"wire445072.inbox_events","group_id":"g1","start":"earliest","batch_size":2,"auto_ack":true}"#,
        )
        .unwrap();
        let body: Value = serde_json::from_str(&req.body_json()).unwrap();
        assert_eq!(
            body,
            json!({"topic_id": "wire445072.inbox_events", "group_id": "g1", "start": "Earliest", "limit": 2, "partition_id": 0})
        );
        let req = ConsumeRequest::from_options_json(r#"{"topicId":"t","groupId":"g","start":{"offset":2},"partitionId":1,"timeoutSeconds":5}"#).unwrap();
        let body: Value = serde_json::from_str(&req.body_json()).unwrap();
        assert_eq!(
            body,
            json!({"group_id":"g","limit":10,"partition_id":1,"start":{"Offset":2},"timeout_seconds":5,"topic_id":"t"})
        );
        for bad in [
            r#"{"group_id":"g"}"#,
            r#"{"topic":"t"}"#,
            r#"{"topic":"t","group_id":"g","batch_size":0}"#,
            r#"{"topic":"t","group_id":"g","partition_id":-1}"#,
            "[]",
            "x",
        ] {
            assert!(ConsumeRequest::from_options_json(bad).is_err(), "{bad}");
        }
        let ack: Value =
            serde_json::from_str(&ack_body("wire445072.inbox_events", "g1", 0, 1)).unwrap();
        assert_eq!(
            ack,
            json!({"group_id":"g1","partition_id":0,"topic_id":"wire445072.inbox_events","upto_offset":1})
        );
        assert!(ack_body("t", "g", 0, u64::MAX).contains("18446744073709551615"));
    }

    #[test]
    fn parses_recorded_consume_and_ack_answers() {
        let consumes = http_exchanges("50-topics.json", "/v1/api/topics/consume");
        if consumes.is_empty() {
            return;
        }
        let (req, status, body) = &consumes[0];
        let group = req["group_id"].as_str().unwrap();
        let resp = parse_consume_response(*status, body, group).unwrap();
        assert_eq!(
            (resp.messages.len(), resp.next_offset, resp.has_more),
            (2, 2, true)
        );
        let m = &resp.messages[0];
        assert_eq!(
            (m.offset, m.partition_id, m.op.as_deref()),
            (0, 0, Some("Insert"))
        );
        assert_eq!(m.key.as_deref(), Some("383266715338801152"));
        assert_eq!(m.user.as_deref(), Some("alice445072"));
        assert_eq!(m.timestamp_ms, Some(1795445105689));
        assert_eq!(m.payload["body"], "t1");
        assert_eq!(m.payload["_seq"], "383266715344932864");
        assert_eq!(m.payload["_table"], "wire445072:inbox");
        let js: Value = serde_json::from_str(&resp.to_json()).unwrap();
        assert_eq!(js["messages"][0]["topic"], "wire445072.inbox_events");
        assert_eq!(js["messages"][0]["group_id"], "g1");
        assert_eq!(consumes[1].1, 200);
        let second = parse_consume_response(200, &consumes[1].2, "g1").unwrap();
        assert_eq!(second.messages[1].op.as_deref(), Some("Update"));
        assert_eq!(second.messages[1].payload["body"], "t1-edited");
        // Latest with nothing new.
        let latest = consumes
            .iter()
            .find(|(r, _, _)| r["group_id"] == "g3")
            .unwrap();
        let empty = parse_consume_response(latest.1, &latest.2, "g3").unwrap();
        assert_eq!(
            (empty.messages.len(), empty.next_offset, empty.has_more),
            (0, 4, false)
        );
        // Errors.
        let errors: Vec<KalamError> = consumes
            .iter()
            .filter(|(_, s, _)| *s != 200)
            .map(|(_, s, b)| parse_consume_response(*s, b, "g").unwrap_err())
            .collect();
        let summary: Vec<(&str, Option<u16>)> =
            errors.iter().map(|e| (e.code.as_str(), e.status)).collect();
        assert_eq!(
            summary,
            vec![
                ("FORBIDDEN", Some(403)),
                ("NOT_FOUND", Some(404)),
                (codes::HTTP_ERROR, Some(400))
            ]
        );
        assert_eq!(errors[1].message, "Topic 'wire445072.nope' does not exist");

        for (_, status, body) in http_exchanges("50-topics.json", "/v1/api/topics/ack") {
            assert_eq!(
                parse_ack_response(status, &body).unwrap(),
                AckResponse {
                    success: true,
                    acknowledged_offset: 1
                }
            );
        }
    }

    #[test]
    fn payloads_and_big_offsets() {
        assert_eq!(decode_payload("eyJhIjoxfQ=="), json!({"a": 1}));
        assert_eq!(decode_payload("aGVsbG8="), json!("hello"));
        assert_eq!(decode_payload("not base64!"), json!("not base64!"));
        assert_eq!(decode_payload("//8="), json!("//8="));
        let body = r#"{"messages":[{"topic_id":"t","partition_id":3,"offset":18446744073709551615,"payload":"eyJhIjoxfQ==","key":null,"timestamp_ms":1,"op":"Delete"}],"next_offset":18446744073709551615,"has_more":false}"#;
        let r = parse_consume_response(200, body, "g").unwrap();
        assert_eq!(r.messages[0].offset, u64::MAX);
        assert_eq!(r.messages[0].user, None);
        assert_eq!(r.messages[0].key, None);
        assert!(r.to_json().contains("\"offset\":18446744073709551615"));
        assert!(r
            .to_json()
            .contains("\"offset_exact\":\"18446744073709551615\""));
        assert!(r
            .to_json()
            .contains("\"next_offset_exact\":\"18446744073709551615\""));
        assert!(!r.to_json().contains("\"user\""));
        assert_eq!(
            parse_consume_response(200, "{}", "g").unwrap_err().code,
            codes::PROTOCOL
        );
        assert_eq!(
            parse_consume_response(200, "{", "g").unwrap_err().code,
            codes::PROTOCOL
        );
        let e = parse_consume_response(401, r#"{"error":{"code":"TOKEN_EXPIRED","message":"Invalid credentials"},"results":[],"status":"error","took":0.1}"#, "g").unwrap_err();
        assert_eq!(e.code, "TOKEN_EXPIRED");
        assert_eq!(
            parse_ack_response(500, r#"{"error":"boom","code":"INTERNAL_ERROR"}"#)
                .unwrap_err()
                .code,
            "INTERNAL_ERROR"
        );
    }

    #[test]
    fn ack_tracker_acks_the_contiguous_prefix() {
        let mut t = AckTracker::new();
        for o in 10..15 {
            t.delivered(0, o);
        }
        t.delivered(1, 0);
        assert_eq!(t.pending_acks(), vec![]);
        t.processed(0, 12);
        t.processed(0, 11);
        assert_eq!(t.pending_acks(), vec![]);
        t.processed(0, 10);
        t.processed(1, 0);
        assert_eq!(t.pending_acks(), vec![(0, 12), (1, 0)]);
        t.acked(0, 12);
        t.acked(1, 0);
        assert_eq!(t.pending_acks(), vec![]);
        t.processed(0, 14);
        assert_eq!(t.pending_acks(), vec![]);
        t.processed(0, 13);
        assert_eq!(t.pending_acks(), vec![(0, 14)]);
        t.acked(0, 14);
        // Redelivered committed offsets are ignored; a gap (offsets claimed elsewhere)
        // stops the prefix.
        t.delivered(0, 14);
        t.delivered(0, 20);
        t.processed(0, 20);
        assert_eq!(t.pending_acks(), vec![]);
        let p = t.partition(0).unwrap();
        assert_eq!((p.last_acked(), p.outstanding()), (Some(14), 1));
        // Acks never regress.
        t.acked(0, 3);
        assert_eq!(t.partition(0).unwrap().last_acked(), Some(14));
        // A batch registers everything.
        let mut t = AckTracker::new();
        let body = r#"{"messages":[{"topic_id":"t","partition_id":0,"offset":0,"payload":""},{"topic_id":"t","partition_id":0,"offset":1,"payload":""}],"next_offset":2,"has_more":false}"#;
        t.delivered_batch(&parse_consume_response(200, body, "g").unwrap());
        t.processed(0, 1);
        assert_eq!(t.pending_acks(), vec![]);
        t.processed(0, 0);
        assert_eq!(t.pending_acks(), vec![(0, 1)]);
    }
}
