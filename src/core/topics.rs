//! Topic consumption over HTTP (PROTOCOL.md §7.2–§7.4): consume/ack request bodies,
//! response parsing with exact u64 offsets and decoded payloads, topic error shapes, and
//! an [`AckTracker`] that turns out-of-order "processed" marks into batched acks.
//!
//! Errors use `http::envelope::parse_error_body`: topic errors put the message in `error`
//! and the code in `code` (`403 FORBIDDEN` for a role without topic access, `404
//! NOT_FOUND` for an unknown topic, `500 INTERNAL_ERROR`); auth failures come as SQL-style
//! envelopes (`TOKEN_EXPIRED`, …); a malformed body gets a text/plain 400 (`HTTP_ERROR`).

use crate::core::json::{json, parse, Map, ObjectWriter, ToJson, Value};

use crate::core::error::{KalamError, Result};
use crate::core::http::envelope::parse_error_body;
use crate::core::id_map::IdMap;
use crate::core::{backoff, base64};

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
            } else if n.is_finite_f64() {
                // A fraction or a huge integer: floored, clamped to 0..=u64::MAX (exact
                // digits, no float parse).
                Ok(u64::try_from(n.trunc_scaled(0).max(0)).unwrap_or(u64::MAX))
            } else {
                Err(KalamError::invalid_argument(
                    "the start offset is not finite",
                ))
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
                        "invalid consume start \"{s}\" (use 'earliest', 'latest' or an offset)"
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
            StartPosition::Offset(n) => json!({ "Offset": n }),
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

fn pick<'a>(map: &'a Map, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| map.get(n))
        .filter(|v| !v.is_null())
}

fn u64_option(map: &Map, names: &[&str]) -> Result<Option<u64>> {
    match pick(map, names) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                // A fraction: its integer part (saturating, like a float cast).
                v.as_number()
                    .filter(|n| n.is_finite_f64() && !n.is_negative())
                    .map(|n| u64::try_from(n.trunc_scaled(0)).unwrap_or(u64::MAX))
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
    /// `timeoutSeconds`, `probe` (true: `limit: 0`). Unknown keys (e.g. `auto_ack`) are
    /// ignored.
    pub fn from_options_json(text: &str) -> Result<ConsumeRequest> {
        let v = parse(text).map_err(|e| {
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
        // A probe (`probe: true`) claims nothing: `limit: 0` (see the ledger below).
        let probe = pick(map, &["probe"]).and_then(Value::as_bool) == Some(true);
        let limit = if probe {
            0
        } else {
            u64_option(map, &["batch_size", "batchSize", "limit"])?.unwrap_or(DEFAULT_BATCH_SIZE)
        };
        if limit == 0 && !probe {
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
        let mut body = json!({
            "topic_id": &self.topic_id,
            "group_id": &self.group_id,
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
    json!({
        "topic_id": topic_id, "group_id": group_id,
        "partition_id": partition_id, "upto_offset": upto_offset
    })
    .to_string()
}

/// One consumed message.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMessage {
    /// The topic id (`topic` in the official consumer's message shape).
    pub topic_id: String,
    pub group_id: String,
    pub partition_id: u32,
    pub offset: u64,
    /// The decoded payload: the row object (fallbacks: the decoded text, then the raw
    /// base64 string).
    pub payload: Value,
    pub key: Option<String>,
    pub op: Option<String>,
    pub timestamp_ms: Option<i64>,
    pub user: Option<String>,
}

/// `{"topic","group_id","partition_id","offset","payload","key"?,"op"?,"timestamp_ms"?,
/// "user"?,"offset_exact"}`: the offset also as an exact decimal string (JS numbers are
/// exact only below 2^53).
impl ToJson for TopicMessage {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("topic", &self.topic_id)
            .field("group_id", &self.group_id)
            .field("partition_id", &self.partition_id)
            .field("offset", &self.offset)
            .field("payload", &self.payload)
            .opt_field("key", &self.key)
            .opt_field("op", &self.op)
            .opt_field("timestamp_ms", &self.timestamp_ms)
            .opt_field("user", &self.user)
            .field("offset_exact", &self.offset.to_string());
        w.finish();
    }
}

/// A consume answer.
#[derive(Debug, Clone, PartialEq)]
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
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        w.field("messages", &self.messages)
            .field("next_offset", &self.next_offset)
            .field("has_more", &self.has_more)
            .field("next_offset_exact", &self.next_offset.to_string());
        w.finish();
        out
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
    parse(&text).unwrap_or(Value::String(text))
}

fn protocol(what: &str) -> KalamError {
    KalamError::protocol(format!("unexpected topic response: {what}"))
}

fn exact_u64(v: Option<&Value>, what: &str) -> Result<u64> {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| protocol(&format!("{what} is {n}"))),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| protocol(&format!("{what} is \"{s}\""))),
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
    let v = parse(body).map_err(|e| protocol(&e.to_string()).with_status(status))?;
    if v.get("error").is_some() {
        return Err(parse_error_body(status, body));
    }
    Ok(v)
}

/// Parses a consume answer; `group_id` is copied into each message (the official shape
/// carries it).
pub fn parse_consume_response(status: u16, body: &str, group_id: &str) -> Result<ConsumeResponse> {
    let v = success_json(status, body)?;
    let items = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol("no messages array"))?;
    // A loop, not `collect::<Result<..>>` (its adapter is a monomorph of its own).
    let mut messages = Vec::with_capacity(items.len());
    for m in items {
        messages.push(parse_message(m, group_id)?);
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
// The consumer's ledger: which offsets may be committed
// ------------------------------------------------------------------------------------------
//
// An ack of `x` commits `x` and removes every pending claim it fully covers, whoever holds it
// (PROTOCOL.md §12.4), so a consumer may only ack `x` when every offset up to `x` is either
// committed already or was processed by itself. It proves "committed" with a probe: a consume
// with `limit: 0` claims nothing and answers `next_offset` = committed + 1 (§7.2: the
// computed start offset when there are no messages). Offsets it cannot prove hold its acks
// until they are committed by whoever holds them, or redelivered to it (a claim expires after
// the server's visibility timeout and the next consume rewinds to it). A server that does
// not answer probes that way falls back to time: a gap counts as settled once a poll was sent
// `visibility_timeout` after the gap was seen (its claims expired and were redelivered).

/// Milliseconds on the caller's clock (sans-IO: the shell passes `Date.now()`).
pub type Millis = u64;

/// At most one probe per partition this often while acks are held.
pub const PROBE_INTERVAL_MS: Millis = 100;
/// Slack on top of the visibility timeout for the time fallback (timer and clock coarseness).
pub const VISIBILITY_MARGIN_MS: Millis = 500;
/// The server default (`[topics] visibility_timeout_secs`).
pub const DEFAULT_VISIBILITY_TIMEOUT_MS: Millis = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// Handed to the application, not finished.
    Delivered,
    /// The handler succeeded (or it was given up on with `ackOnFailed`).
    Processed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Untried,
    Works,
    /// The server does not report committed offsets: gaps settle by time.
    Unsupported,
}

/// What the loop should do next for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send an ack up to this offset (inclusive).
    Ack(u64),
    /// Send a probe (consume with `limit: 0`) and report its `next_offset`.
    Probe,
    /// Acks are held for offsets this consumer cannot prove; nothing to send now.
    Hold,
    Idle,
}

/// One partition of one (topic, group) as seen by one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLedger {
    /// Every offset below `base` is committed (our acks, a probe) or below the group's start.
    base: u64,
    /// Our offsets at or above `base`, ascending. An `IdMap` (a sorted Vec), not a BTreeMap
    /// (whose code was ~11 KB of the consumer .wasm): it holds the few offsets in flight,
    /// and new ones come in order, so they are appended.
    own: IdMap<Own>,
    /// `start: latest` resolved at the first poll, so later polls cannot jump ahead.
    pinned: Option<u64>,
    probe: Probe,
    last_probe: Option<Millis>,
    /// Our highest confirmed ack (a probe below it means the server does not report commits).
    acked: Option<u64>,
    /// Time fallback: the gap at the frontier (its first offset) and when it was first seen.
    gap_seen: Option<(u64, Millis)>,
    /// When the latest successful poll was sent, and the latest failed one (a failed poll may
    /// have claimed a range whose answer never arrived).
    ok_poll_sent: Option<Millis>,
    failed_poll_sent: Option<Millis>,
}

impl Default for PartitionLedger {
    fn default() -> PartitionLedger {
        PartitionLedger {
            base: 0,
            own: IdMap::new(),
            pinned: None,
            probe: Probe::Untried,
            last_probe: None,
            acked: None,
            gap_seen: None,
            ok_poll_sent: None,
            failed_poll_sent: None,
        }
    }
}

impl PartitionLedger {
    pub fn new() -> PartitionLedger {
        PartitionLedger::default()
    }

    /// The start to send with the next poll or probe of this partition.
    pub fn poll_start(&self, configured: StartPosition) -> StartPosition {
        match (configured, self.pinned) {
            (StartPosition::Latest, Some(n)) => StartPosition::Offset(n),
            (other, _) => other,
        }
    }

    /// A poll sent at `sent` answered with `offsets` (in order) and `next_offset`. Returns,
    /// per offset, whether to hand it to the handler: committed offsets and offsets this
    /// ledger already saw processed (a redelivery after its claim expired) are skipped.
    pub fn delivered(&mut self, offsets: &[u64], next_offset: u64, sent: Millis) -> Vec<bool> {
        if self.pinned.is_none() {
            self.pinned = Some(offsets.first().copied().unwrap_or(next_offset));
        }
        self.ok_poll_sent = Some(self.ok_poll_sent.map_or(sent, |t| t.max(sent)));
        offsets
            .iter()
            .map(|&o| {
                if o < self.base {
                    return false;
                }
                match self.own.get(&o) {
                    Some(Own::Processed) => false,
                    _ => {
                        self.own.insert(o, Own::Delivered);
                        true
                    }
                }
            })
            .collect()
    }

    /// A poll sent at `sent` failed: it may have claimed a range nobody will see.
    pub fn poll_failed(&mut self, sent: Millis) {
        self.failed_poll_sent = Some(self.failed_poll_sent.map_or(sent, |t| t.max(sent)));
    }

    /// The handler finished `offset` (or it was given up on with `ackOnFailed`).
    pub fn processed(&mut self, offset: u64) {
        if offset >= self.base {
            self.own.insert(offset, Own::Processed);
        }
    }

    /// `offset` will not be processed by this consumer (stopped before it, or failed with
    /// `ackOnFailed: false`): it is left for redelivery and holds the acks past it.
    pub fn abandon(&mut self, offset: u64) {
        if self.own.get(&offset) == Some(&Own::Delivered) {
            self.own.remove(&offset);
        }
    }

    /// Abandons every delivered, unfinished offset (the loop stopped).
    pub fn abandon_unfinished(&mut self) {
        self.own.retain(|&s| s == Own::Processed);
    }

    /// Where the acks stand: the highest offset that may be committed, the first offset
    /// that cannot be proven yet (a gap), and whether something processed lies past it.
    fn frontier(&self) -> (Option<u64>, Option<u64>, bool) {
        let mut expected = self.base;
        let mut best = None;
        for &(o, s) in self.own.starting_at(self.base) {
            if o != expected {
                break;
            }
            if s != Own::Processed {
                // Our own unfinished offset: nothing past it may be acked, and no probe helps.
                return (best, None, false);
            }
            best = Some(o);
            expected = o + 1;
        }
        let waiting = self
            .own
            .starting_at(expected)
            .iter()
            .any(|&(_, s)| s == Own::Processed);
        (best, waiting.then_some(expected), waiting)
    }

    /// What to do now (`visibility` only matters when probes do not work).
    pub fn step(&mut self, now: Millis, visibility: Millis) -> Step {
        loop {
            let (best, gap, waiting) = self.frontier();
            if let Some(x) = best {
                return Step::Ack(x);
            }
            let Some(gap) = gap.filter(|_| waiting) else {
                self.gap_seen = None;
                return Step::Idle;
            };
            if self.probe != Probe::Unsupported {
                let due = self
                    .last_probe
                    .is_none_or(|t| now.saturating_sub(t) >= PROBE_INTERVAL_MS);
                return if due { Step::Probe } else { Step::Hold };
            }
            // Time fallback: the gap settles once a poll sent a visibility timeout after it
            // was seen (and after any failed poll) succeeded.
            let seen = match self.gap_seen {
                Some((g, t)) if g == gap => t,
                _ => {
                    self.gap_seen = Some((gap, now));
                    now
                }
            };
            let since = seen.max(self.failed_poll_sent.unwrap_or(0));
            let settled = self
                .ok_poll_sent
                .is_some_and(|t| t >= since + visibility + VISIBILITY_MARGIN_MS);
            if !settled {
                return Step::Hold;
            }
            let next_own = self.own.starting_at(gap).first().map(|&(o, _)| o);
            match next_own {
                Some(o) => {
                    self.base = o;
                    self.gap_seen = None;
                }
                None => return Step::Idle,
            }
        }
    }

    /// A probe was sent at `now`; `next_offset` is its answer when it carried no messages
    /// (`None`: the probe failed or the server returned messages).
    pub fn probed(&mut self, now: Millis, next_offset: Option<u64>) {
        self.last_probe = Some(now);
        match next_offset {
            // A commit below our own confirmed ack means the answer is not "committed + 1".
            Some(n) if self.acked.is_none_or(|a| n > a) => {
                self.probe = Probe::Works;
                self.raise_base(n);
            }
            Some(_) => self.probe = Probe::Unsupported,
            None if self.probe == Probe::Untried => self.probe = Probe::Unsupported,
            None => {}
        }
    }

    /// The probe failed for a transport reason: try again later, keep the mode.
    pub fn probe_retry_later(&mut self, now: Millis) {
        self.last_probe = Some(now);
    }

    /// The server confirmed an ack up to `upto` (inclusive).
    pub fn acked(&mut self, upto: u64) {
        self.acked = Some(self.acked.map_or(upto, |a| a.max(upto)));
        self.raise_base(upto.saturating_add(1));
    }

    fn raise_base(&mut self, base: u64) {
        if base > self.base {
            self.base = base;
            self.own.remove_below(base);
        }
    }

    /// Offsets delivered and not yet committed by us (processed or not).
    pub fn outstanding(&self) -> usize {
        self.own.len()
    }

    pub fn last_acked(&self) -> Option<u64> {
        self.acked
    }

    pub fn probes_work(&self) -> Option<bool> {
        match self.probe {
            Probe::Untried => None,
            Probe::Works => Some(true),
            Probe::Unsupported => Some(false),
        }
    }
}

/// The ledgers of every partition of one (topic, group) for one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLedger {
    pub start: StartPosition,
    pub visibility_ms: Millis,
    /// By partition number, ascending (a sorted Vec: a topic has few partitions).
    partitions: Vec<(u32, PartitionLedger)>,
}

impl TopicLedger {
    pub fn new(start: StartPosition, visibility_ms: Millis) -> TopicLedger {
        TopicLedger {
            start,
            visibility_ms,
            partitions: Vec::new(),
        }
    }

    pub fn partition(&mut self, p: u32) -> &mut PartitionLedger {
        let i = match self.partitions.binary_search_by_key(&p, |(q, _)| *q) {
            Ok(i) => i,
            Err(i) => {
                self.partitions.insert(i, (p, PartitionLedger::default()));
                i
            }
        };
        &mut self.partitions[i].1
    }

    pub fn get(&self, p: u32) -> Option<&PartitionLedger> {
        let i = self.partitions.binary_search_by_key(&p, |(q, _)| *q).ok()?;
        Some(&self.partitions[i].1)
    }

    pub fn poll_start(&self, p: u32) -> StartPosition {
        self.get(p).map_or(self.start, |l| l.poll_start(self.start))
    }

    /// The step of every partition that has something to do (`Ack` or `Probe`).
    pub fn steps(&mut self, now: Millis) -> Vec<(u32, Step)> {
        let visibility = self.visibility_ms;
        self.partitions
            .iter_mut()
            .map(|(p, l)| (*p, l.step(now, visibility)))
            .filter(|(_, s)| matches!(s, Step::Ack(_) | Step::Probe))
            .collect()
    }

    /// True when some partition holds processed offsets it may not ack yet.
    pub fn holding(&mut self, now: Millis) -> bool {
        let visibility = self.visibility_ms;
        self.partitions
            .iter()
            .any(|(_, l)| l.clone().step(now, visibility) != Step::Idle)
    }

    pub fn abandon_unfinished(&mut self) {
        for (_, l) in &mut self.partitions {
            l.abandon_unfinished();
        }
    }
}

/// A capped exponential backoff with jitter: `initial * multiplier^(attempt-1)`, at most
/// `max`, scaled by a factor in `[1 - jitter, 1 + jitter]` from `random` (0..1) and capped
/// again. `attempt` counts from 1. The formula is the crate's one
/// ([`backoff::scaled_backoff_ms`], which counts retries from 0).
pub fn backoff_ms(
    attempt: u32,
    initial: f64,
    max: f64,
    multiplier: f64,
    jitter: f64,
    random: f64,
) -> f64 {
    backoff::scaled_backoff_ms(
        attempt.saturating_sub(1),
        initial,
        max,
        multiplier,
        jitter,
        random,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::codes;
    use crate::core::http::envelope::tests::http_exchanges;
    use crate::core::json::json;

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
        let body = parse(&req.body_json()).unwrap();
        assert_eq!(
            body,
            json!({"topic_id": "wire445072.inbox_events", "group_id": "g1", "start": "Earliest", "limit": 2, "partition_id": 0})
        );
        let req = ConsumeRequest::from_options_json(r#"{"topicId":"t","groupId":"g","start":{"offset":2},"partitionId":1,"timeoutSeconds":5}"#).unwrap();
        let body = parse(&req.body_json()).unwrap();
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
        let probe = ConsumeRequest::from_options_json(
            r#"{"topic":"t","group_id":"g","start":{"offset":"7"},"batch_size":50,"probe":true}"#,
        )
        .unwrap();
        assert_eq!((probe.limit, probe.start), (0, StartPosition::Offset(7)));
        let ack = parse(&ack_body("wire445072.inbox_events", "g1", 0, 1)).unwrap();
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
        let js = parse(&resp.to_json()).unwrap();
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

    fn batch(l: &mut PartitionLedger, range: std::ops::Range<u64>, sent: Millis) -> Vec<bool> {
        let offsets: Vec<u64> = range.clone().collect();
        l.delivered(&offsets, range.end, sent)
    }

    fn process(l: &mut PartitionLedger, range: std::ops::Range<u64>) {
        for o in range {
            l.processed(o);
        }
    }

    const V: Millis = 10_000;

    #[test]
    fn a_fresh_group_acks_its_contiguous_prefix() {
        let mut l = PartitionLedger::new();
        assert_eq!(l.step(0, V), Step::Idle);
        assert!(batch(&mut l, 0..10, 0).iter().all(|h| *h));
        assert_eq!(l.step(1, V), Step::Idle, "nothing processed yet");
        process(&mut l, 0..3);
        assert_eq!(l.step(2, V), Step::Ack(2));
        l.processed(5);
        assert_eq!(l.step(3, V), Step::Ack(2), "4 is still running");
        l.acked(2);
        assert_eq!(l.step(4, V), Step::Idle);
        process(&mut l, 3..10);
        assert_eq!(l.step(5, V), Step::Ack(9));
        l.acked(9);
        assert_eq!((l.outstanding(), l.last_acked()), (0, Some(9)));
        // Committed offsets delivered again are not handed out.
        assert_eq!(batch(&mut l, 8..12, 6), vec![false, false, true, true]);
    }

    #[test]
    fn a_new_consumer_holds_acks_over_a_dead_consumers_claim() {
        // Worker A claimed 0-9, processed and acked 0-2, died. B (new client) claims 10-19.
        let mut b = PartitionLedger::new();
        batch(&mut b, 10..20, 0);
        process(&mut b, 10..20);
        assert_eq!(
            b.step(1, V),
            Step::Probe,
            "0-9 are not B's: ask what is committed"
        );
        b.probed(1, Some(3));
        assert_eq!(
            b.step(2, V),
            Step::Hold,
            "3-9 are neither committed nor B's"
        );
        assert_eq!(b.step(1 + PROBE_INTERVAL_MS, V), Step::Probe);
        b.probed(1 + PROBE_INTERVAL_MS, Some(3));
        // A's claim expired; B's poll rewinds to 3: 3-9 are new to B, 10-12 already done.
        let hand = batch(&mut b, 3..13, 12_000);
        assert_eq!(hand, [vec![true; 7], vec![false; 3]].concat());
        assert_eq!(b.step(12_001, V), Step::Idle, "3-9 running");
        process(&mut b, 3..10);
        assert_eq!(b.step(12_002, V), Step::Ack(19));
    }

    #[test]
    fn a_probe_that_shows_the_gap_committed_releases_the_acks() {
        // Two live workers alternate: A has 0-9, B 10-19; A acks 9, so B may ack 19.
        let mut b = PartitionLedger::new();
        batch(&mut b, 10..20, 0);
        process(&mut b, 10..20);
        assert_eq!(b.step(1, V), Step::Probe);
        b.probed(1, Some(10));
        assert_eq!(b.step(2, V), Step::Ack(19));
        b.acked(19);
        assert_eq!(b.probes_work(), Some(true));
        // A's later range 20-29 and B's 30-39: B holds again until A's ack shows.
        batch(&mut b, 30..40, 3);
        process(&mut b, 30..40);
        assert_eq!(b.step(300, V), Step::Probe);
        b.probed(300, Some(20));
        assert_eq!(b.step(301, V), Step::Hold);
        b.probed(600, Some(30));
        assert_eq!(b.step(601, V), Step::Ack(39));
    }

    #[test]
    fn unfinished_and_abandoned_offsets_hold_the_acks() {
        let mut l = PartitionLedger::new();
        batch(&mut l, 0..10, 0);
        process(&mut l, 0..3);
        process(&mut l, 4..10);
        assert_eq!(l.step(1, V), Step::Ack(2), "3 is running: nothing past it");
        l.acked(2);
        assert_eq!(
            l.step(2, V),
            Step::Idle,
            "no probe while our own handler runs"
        );
        // Stopped (or failed with ackOnFailed: false) before 3 succeeded.
        l.abandon(3);
        assert_eq!(l.step(3, V), Step::Probe);
        l.probed(3, Some(3));
        assert_eq!(l.step(4, V), Step::Hold);
        // A stop abandons every unfinished offset, processed ones stay for the next run.
        let mut m = PartitionLedger::new();
        batch(&mut m, 0..4, 0);
        m.processed(1);
        m.abandon_unfinished();
        assert_eq!(m.outstanding(), 1);
        assert_eq!(m.step(1, V), Step::Probe);
        assert_eq!(batch(&mut m, 0..4, 2), vec![true, false, true, true]);
    }

    #[test]
    fn without_probes_a_gap_settles_a_visibility_timeout_after_it_was_seen() {
        let mut l = PartitionLedger::new();
        batch(&mut l, 10..20, 0);
        process(&mut l, 10..20);
        assert_eq!(l.step(100, V), Step::Probe);
        l.probed(100, None);
        assert_eq!(l.probes_work(), Some(false));
        assert_eq!(l.step(200, V), Step::Hold);
        // A poll sent too early settles nothing.
        batch(&mut l, 20..21, 200 + V);
        l.processed(20);
        assert_eq!(l.step(200 + V + 1, V), Step::Hold);
        // A failed poll (its claim may be lost) restarts the wait.
        l.poll_failed(5_000);
        batch(&mut l, 21..22, 200 + V + VISIBILITY_MARGIN_MS);
        l.processed(21);
        assert_eq!(l.step(200 + V + VISIBILITY_MARGIN_MS + 1, V), Step::Hold);
        batch(&mut l, 22..23, 5_000 + V + VISIBILITY_MARGIN_MS);
        l.processed(22);
        assert_eq!(
            l.step(5_000 + V + VISIBILITY_MARGIN_MS + 1, V),
            Step::Ack(22)
        );
    }

    #[test]
    fn probes_that_contradict_our_own_ack_are_not_trusted() {
        let mut l = PartitionLedger::new();
        batch(&mut l, 0..5, 0);
        process(&mut l, 0..5);
        l.acked(4);
        batch(&mut l, 10..12, 1);
        process(&mut l, 10..12);
        assert_eq!(l.step(2, V), Step::Probe);
        l.probed(2, Some(3)); // says committed = 2 after we committed 4
        assert_eq!(l.probes_work(), Some(false));
        assert_eq!(l.step(3, V), Step::Hold);
        // A transport failure of a probe changes nothing but its timer.
        let mut m = PartitionLedger::new();
        batch(&mut m, 5..6, 0);
        m.processed(5);
        m.probe_retry_later(10);
        assert_eq!(m.step(11, V), Step::Hold);
        assert_eq!(m.step(10 + PROBE_INTERVAL_MS, V), Step::Probe);
        assert_eq!(m.probes_work(), None);
    }

    #[test]
    fn latest_is_pinned_at_the_first_poll() {
        let mut t = TopicLedger::new(StartPosition::Latest, V);
        assert_eq!(t.poll_start(0), StartPosition::Latest);
        t.partition(0).delivered(&[], 42, 0);
        assert_eq!(t.poll_start(0), StartPosition::Offset(42));
        assert_eq!(t.poll_start(1), StartPosition::Latest);
        t.partition(1).delivered(&[7, 8], 9, 0);
        assert_eq!(t.poll_start(1), StartPosition::Offset(7));
        let mut e = TopicLedger::new(StartPosition::Earliest, V);
        e.partition(0).delivered(&[3], 4, 0);
        assert_eq!(e.poll_start(0), StartPosition::Earliest);
        // Steps of every partition at once; holding() looks without changing anything.
        t.partition(1).processed(7);
        t.partition(1).processed(8);
        assert!(t.holding(1));
        assert_eq!(t.steps(1), vec![(1, Step::Probe)]);
        t.partition(1).probed(1, Some(7));
        assert_eq!(t.steps(2), vec![(1, Step::Ack(8))]);
        t.partition(1).acked(8);
        assert!(!t.holding(3));
        t.abandon_unfinished();
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        assert_eq!(backoff_ms(1, 300.0, 5_000.0, 2.0, 0.0, 0.9), 300.0);
        assert_eq!(backoff_ms(3, 300.0, 5_000.0, 2.0, 0.0, 0.1), 1_200.0);
        assert_eq!(backoff_ms(30, 300.0, 5_000.0, 2.0, 0.0, 0.5), 5_000.0);
        assert_eq!(backoff_ms(1, 1_000.0, 5_000.0, 2.0, 0.2, 0.0), 800.0);
        assert_eq!(backoff_ms(1, 1_000.0, 5_000.0, 2.0, 0.2, 1.0), 1_200.0);
        assert_eq!(
            backoff_ms(10, 1_000.0, 5_000.0, 2.0, 0.5, 1.0),
            5_000.0,
            "cap after jitter"
        );
        assert_eq!(backoff_ms(u32::MAX, 1.0, 10.0, 1e9, 0.0, 0.5), 10.0);
        assert_eq!(
            backoff_ms(2, f64::NAN, -1.0, f64::NAN, f64::NAN, f64::NAN),
            0.0
        );
    }

    /// The sorted-Vec ledger against the BTreeMap it replaced: random deliveries (in order,
    /// redeliveries, out of order), finishes, abandons, acks, probes and steps; the held
    /// offsets and every answer match what the map-based code did.
    #[test]
    fn own_offsets_match_a_btreemap_model() {
        use std::collections::BTreeMap;
        let mut rng = crate::core::test_rng::Rng(0x7091_c5ee);
        let mut next = |n: u64| rng.below(n);
        for round in 0..40 {
            let mut l = PartitionLedger::new();
            let mut model: BTreeMap<u64, Own> = BTreeMap::new();
            let (mut head, mut now) = (0u64, 0u64);
            for step in 0..400 {
                now += next(3);
                let (base, acked) = (l.base, l.acked);
                let raise = |model: &mut BTreeMap<u64, Own>, to: u64| {
                    if to > base {
                        *model = model.split_off(&to);
                    }
                };
                match next(10) {
                    0..=2 => {
                        // A batch: mostly new offsets at the head, some older ones again.
                        let from = if next(4) == 0 {
                            base.saturating_sub(3) + next(head.saturating_sub(base) + 4)
                        } else {
                            head
                        };
                        let offsets: Vec<u64> = (from..from + next(6)).collect();
                        head = head.max(from + offsets.len() as u64);
                        let want: Vec<bool> = offsets
                            .iter()
                            .map(|&o| {
                                if o < base || model.get(&o) == Some(&Own::Processed) {
                                    return false;
                                }
                                model.insert(o, Own::Delivered);
                                true
                            })
                            .collect();
                        assert_eq!(l.delivered(&offsets, head, now), want);
                    }
                    3..=4 => {
                        let o = base.saturating_sub(2) + next(head.saturating_sub(base) + 3);
                        l.processed(o);
                        if o >= base {
                            model.insert(o, Own::Processed);
                        }
                    }
                    5 => {
                        let o = base + next(head.saturating_sub(base) + 1);
                        l.abandon(o);
                        if model.get(&o) == Some(&Own::Delivered) {
                            model.remove(&o);
                        }
                    }
                    6 if next(8) == 0 => {
                        l.abandon_unfinished();
                        model.retain(|_, s| *s == Own::Processed);
                    }
                    7 => {
                        let upto = base + next(head.saturating_sub(base) + 1);
                        l.acked(upto);
                        raise(&mut model, upto + 1);
                    }
                    8 => {
                        let n = base + next(head.saturating_sub(base) + 2);
                        l.probed(now, Some(n));
                        if acked.is_none_or(|a| n > a) {
                            raise(&mut model, n);
                        }
                    }
                    _ => {
                        l.step(now, 5);
                    }
                }
                let want: Vec<(u64, Own)> = model.iter().map(|(&o, &s)| (o, s)).collect();
                assert_eq!(l.own.0, want, "round {round} step {step}");
            }
        }
    }
}
