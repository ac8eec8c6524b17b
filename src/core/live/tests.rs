//! Shared fixtures of the live core tests: the recorded KalamDB WebSocket conversations
//! (shared/kalamdb-wire) and a harness around `LiveCore` on a fake clock. The tests are in
//! the submodules.

use crate::core::json::{json, Value};

use super::connection::{
    ConnectionState, LiveConfig, LiveCore, LiveEvent, Output, SubscribeOptions, SubscriptionMode,
    TimerId,
};
use super::frames::{self, Row, ServerMessage};
use super::gzip::gzip_for_tests;
use super::materializer::{KeyedRow, RowKey, RowsDelta};
use crate::core::seq_id::SeqId;

// ----- recordings ----------------------------------------------------------------------

fn wire(name: &str) -> Value {
    let path = format!(
        "{}/../shared/kalamdb-wire/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    crate::core::json::parse(&text).unwrap()
}

/// The WebSocket conversations of a recording, as event lists.
fn conversations(name: &str) -> Vec<Vec<Value>> {
    wire(name)["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ws")
        .map(|e| e["events"].as_array().unwrap().clone())
        .collect()
}

/// A recorded inbound frame with its subscription id renamed.
fn inbound(event: &Value, rename: (&str, &str)) -> (bool, String) {
    assert_eq!(event["dir"], "in", "{event}");
    let mut data = event["data"].clone();
    if data["subscription_id"] == rename.0 {
        data["subscription_id"] = Value::String(rename.1.into());
    }
    (event["frame"] == "binary-gzip", data.to_string())
}

/// A recorded outbound frame as a JSON value with its subscription id renamed.
fn outbound(event: &Value, rename: (&str, &str)) -> Value {
    assert_eq!(event["dir"], "out", "{event}");
    let data = match &event["data"] {
        Value::String(raw) => crate::core::json::parse(raw).unwrap(),
        other => other.clone(),
    };
    let text = data
        .to_string()
        .replace(&format!("\"{}\"", rename.0), &format!("\"{}\"", rename.1));
    crate::core::json::parse(&text).unwrap()
}

fn row(v: Value) -> Row {
    match v {
        Value::Object(m) => m.into(),
        other => panic!("not a row: {other}"),
    }
}

fn key(id: &str) -> RowKey {
    RowKey::of(&row(json!({ "id": id })), &["id".to_string()]).unwrap()
}

// ----- a harness around LiveCore on a fake clock -----------------------------------------

const PAGING_SQL: &str = "SELECT * FROM wire445072.inbox WHERE room = 'paging'";

struct Harness {
    core: LiveCore,
    now: u64,
    socket: u64,
    /// Per subscription, the rows of `loading` deltas so far (what the JS mirror holds
    /// before the app hears of the snapshot).
    loading: std::collections::HashMap<String, Vec<KeyedRow>>,
    /// Keep `loading` deltas in drained outputs instead of folding them.
    raw_deltas: bool,
}

/// Applies a delta to an ordered mirror the way the JS layer does.
fn apply_delta(mirror: &mut Vec<KeyedRow>, delta: &RowsDelta) {
    if delta.reset {
        mirror.clear();
    }
    mirror.retain(|r| !delta.removed.contains(&r.key));
    for u in &delta.updated {
        if let Some(held) = mirror.iter_mut().find(|r| r.key == u.key) {
            *held = u.clone();
        }
    }
    for i in &delta.inserted {
        mirror.retain(|r| r.key != i.key);
        mirror.push(i.clone());
    }
}

/// The row-cap check is off: it holds every one-batch snapshot for a count (its tests, in
/// `cap`, turn it on).
fn test_config() -> LiveConfig {
    LiveConfig {
        check_row_cap: false,
        ..LiveConfig::new("ws://127.0.0.1:8080/v1/ws")
    }
}

impl Harness {
    /// Fixed jitter: half the ceiling.
    fn new(config: LiveConfig) -> Harness {
        Harness {
            core: LiveCore::with_jitter(config, Box::new(|ceiling| ceiling / 2)),
            now: 1_000,
            socket: 0,
            loading: Default::default(),
            raw_deltas: false,
        }
    }

    /// Drains until quiet, as the shell does (a deferred snapshot batch takes two calls).
    /// `loading` parts of a first snapshot are folded into its final delta, which then
    /// lists the whole snapshot as `inserted` (what the app's first callback sees).
    fn drain(&mut self) -> Vec<Output> {
        let mut outs = Vec::new();
        loop {
            let more = self.core.drain_outputs();
            if more.is_empty() {
                break;
            }
            for out in more {
                match out {
                    Output::Rows {
                        subscription_id,
                        mut delta,
                    } if delta.initial && !self.raw_deltas => {
                        let mirror = self.loading.entry(subscription_id.clone()).or_default();
                        apply_delta(mirror, &delta);
                        if !delta.loading {
                            let all = self.loading.remove(&subscription_id).unwrap_or_default();
                            delta = RowsDelta {
                                initial: true,
                                inserted: all,
                                ..RowsDelta::default()
                            };
                            outs.push(Output::Rows {
                                subscription_id,
                                delta,
                            });
                        }
                    }
                    other => outs.push(other),
                }
            }
        }
        for o in &outs {
            if let Output::OpenSocket { socket, .. } = o {
                self.socket = *socket;
            }
        }
        outs
    }

    fn subscribe(
        &mut self,
        sql: &str,
        options: SubscribeOptions,
        mode: SubscriptionMode,
    ) -> String {
        self.core.subscribe(self.now, sql, options, mode).unwrap()
    }

    /// A materialized subscription with default options.
    fn live(&mut self, sql: &str) -> String {
        self.subscribe(
            sql,
            SubscribeOptions::default(),
            SubscriptionMode::Materialized,
        )
    }

    /// The recorded paging query, materialized, two rows per batch (as recorded).
    fn paging(&mut self) -> String {
        self.subscribe(
            PAGING_SQL,
            SubscribeOptions {
                batch_size: Some(2),
                ..Default::default()
            },
            SubscriptionMode::Materialized,
        )
    }

    /// Feeds the ack (schema: `id BIGINT` primary key) and an empty, final first batch.
    fn empty_snapshot(&mut self, id: &str) {
        self.text(
            &json!({"type":"subscription_ack","subscription_id":id,"total_rows":0,
            "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":null},
            "schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]}]})
            .to_string(),
        );
        self.text(
            &json!({"type":"initial_data_batch","subscription_id":id,"rows":[],
            "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":null}})
            .to_string(),
        );
    }

    /// Answers the token request, opens the socket and feeds `auth_success`.
    fn establish(&mut self) -> Vec<Output> {
        let mut outs = self.drain();
        assert!(outs.contains(&Output::RequestToken), "{outs:?}");
        assert!(outs.iter().any(|o| matches!(o, Output::OpenSocket { .. })));
        self.core.token_ready(self.now, "jwt-token".into());
        self.core.socket_opened(self.now, self.socket);
        outs.extend(self.drain());
        self.text(r#"{"type":"auth_success","user":"alice","role":"user","protocol":{"serialization":"json","compression":"gzip"}}"#);
        outs.extend(self.drain());
        outs
    }

    fn text(&mut self, text: &str) {
        self.core.socket_text(self.now, self.socket, text);
    }

    fn binary(&mut self, text: &str) {
        let bytes = gzip_for_tests(text.as_bytes());
        self.core.socket_binary(self.now, self.socket, &bytes);
    }

    fn feed(&mut self, event: &Value, rename: (&str, &str)) {
        let (binary, text) = inbound(event, rename);
        if binary {
            self.binary(&text);
        } else {
            self.text(&text);
        }
    }

    fn close(&mut self, code: u16, reason: &str) {
        self.core.socket_closed(self.now, self.socket, code, reason);
    }

    fn rows(&self, id: &str) -> Vec<Row> {
        self.core
            .rows(id)
            .unwrap()
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// The outputs that match a pattern, mapped by an expression of its bindings.
macro_rules! pick {
    ($outs:expr, $pat:pat => $value:expr) => {
        $outs
            .iter()
            .filter_map(|o| match o {
                $pat => Some($value),
                _ => None,
            })
            .collect()
    };
}

fn sent(outs: &[Output]) -> Vec<Value> {
    pick!(outs, Output::SendText { text, .. } => crate::core::json::parse(text).unwrap())
}

fn sent_raw(outs: &[Output]) -> Vec<String> {
    pick!(outs, Output::SendText { text, .. } => text.clone())
}

fn deltas(outs: &[Output]) -> Vec<RowsDelta> {
    pick!(outs, Output::Rows { delta, .. } => delta.clone())
}

fn checkpoints(outs: &[Output]) -> Vec<SeqId> {
    pick!(outs, Output::Checkpoint { last_seq_id, .. } => *last_seq_id)
}

fn states(outs: &[Output]) -> Vec<ConnectionState> {
    pick!(outs, Output::StateChanged(s) => s.clone())
}

fn connection_errors(outs: &[Output]) -> Vec<String> {
    pick!(outs, Output::ConnectionError(e) => e.code.clone())
}

fn seq(text: &str) -> SeqId {
    text.parse().unwrap()
}

/// Runs the recorded "pg" conversation (40-ws-live, first socket) through a materialized
/// subscription, checking our outbound frames against the recorded ones.
fn replay_paging(h: &mut Harness) -> String {
    let conv = &conversations("40-ws-live.json")[0];
    let id = h.paging();
    let rename = ("pg", id.as_str());
    let outs = h.establish();
    let out = sent(&outs);
    let mut recorded_auth = outbound(&conv[0], rename);
    recorded_auth["token"] = json!("jwt-token");
    assert_eq!(
        out[0], recorded_auth,
        "authenticate with the full protocol object"
    );
    assert_eq!(
        out[1],
        outbound(&conv[2], rename),
        "subscribe with batch_size 2"
    );

    // ack + batch 0 -> next_batch exactly as recorded (integer last_seq_id).
    h.feed(&conv[3], rename);
    h.feed(&conv[4], rename);
    let outs = h.drain();
    assert!(
        deltas(&outs).is_empty(),
        "no emission before the snapshot is complete"
    );
    let recorded_next = conv[5]["data"]
        .as_str()
        .unwrap()
        .replace("\"pg\"", &format!("\"{id}\""));
    assert_eq!(sent_raw(&outs), [recorded_next]);
    h.feed(&conv[6], rename);
    let outs = h.drain();
    let recorded_next = conv[7]["data"]
        .as_str()
        .unwrap()
        .replace("\"pg\"", &format!("\"{id}\""));
    assert_eq!(sent_raw(&outs), [recorded_next]);
    assert!(deltas(&outs).is_empty());
    h.feed(&conv[8], rename);
    let outs = h.drain();
    assert!(sent(&outs).is_empty(), "no next_batch after has_more=false");
    let d = deltas(&outs);
    assert_eq!(d.len(), 1);
    assert!(d[0].initial);
    let bodies: Vec<&str> = d[0]
        .inserted
        .iter()
        .map(|r| r.row["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(checkpoints(&outs), [seq("383266655647404032")]);

    // insert
    h.feed(&conv[11], rename);
    let outs = h.drain();
    let d = deltas(&outs);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].inserted.len(), 1);
    assert_eq!(d[0].inserted[0].row["n"], json!(10));
    assert_eq!(checkpoints(&outs), [seq("383266659942371328")]);

    // update: body edited, n set to NULL (absent from rows, present in old_values)
    h.feed(&conv[13], rename);
    let outs = h.drain();
    let d = deltas(&outs);
    assert_eq!(d.len(), 1);
    assert!(d[0].inserted.is_empty() && d[0].removed.is_empty());
    let merged = &d[0].updated[0].row;
    assert_eq!(merged["body"], "new-edited");
    assert_eq!(merged["n"], Value::Null);
    assert_eq!(merged["_seq"], "383266664157646848");
    assert_eq!(merged["_deleted"], json!(false), "kept from the stored row");
    assert_eq!(merged["room"], "paging");
    assert_eq!(merged["created_at"], json!(1795445092479000_i64));

    // delete (tombstone of p0)
    h.feed(&conv[15], rename);
    let outs = h.drain();
    let d = deltas(&outs);
    assert_eq!(d[0].removed, vec![key("7530642528823934977")]);
    assert_eq!(checkpoints(&outs), [seq("383266668372922368")]);

    let bodies: Vec<String> = h
        .rows(&id)
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["p1", "p2", "p3", "p4", "new-edited"]);
    id
}

impl Harness {
    /// Connects with no subscriptions.
    fn establish_lazily(&mut self) {
        self.core.connect(self.now);
        self.establish();
    }
}

mod bench;
mod cap;
mod coalesce;
mod connection;
mod recorded;
mod resilience;
