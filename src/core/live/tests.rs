//! Replays of the recorded KalamDB WebSocket conversations (shared/kalamdb-wire) through
//! the codecs, the materializer and `LiveCore`, plus state-machine tests on a fake clock.

use serde_json::{json, Value};

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
    serde_json::from_str(&text).unwrap()
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
        Value::String(raw) => serde_json::from_str(raw).unwrap(),
        other => other.clone(),
    };
    let text = data
        .to_string()
        .replace(&format!("\"{}\"", rename.0), &format!("\"{}\"", rename.1));
    serde_json::from_str(&text).unwrap()
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

fn test_config() -> LiveConfig {
    LiveConfig::new("ws://127.0.0.1:8080/v1/ws")
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
    pick!(outs, Output::SendText { text, .. } => serde_json::from_str(text).unwrap())
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

#[test]
fn every_recorded_frame_decodes() {
    let mut count = 0;
    for file in ["30-ws-auth.json", "40-ws-live.json", "70-limits.json"] {
        for conv in conversations(file) {
            for event in conv
                .iter()
                .filter(|e| e["dir"] == "in" && e["frame"] != "none")
            {
                let text = event["data"].to_string();
                let plain = frames::decode_text(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
                let gz = frames::decode_binary(&gzip_for_tests(text.as_bytes()), 1 << 24).unwrap();
                assert_eq!(plain, gz);
                count += 1;
            }
        }
    }
    assert!(count > 30, "{count}");
}

#[test]
fn recorded_paging_updates_and_tombstones_materialize() {
    let mut h = Harness::new(test_config());
    replay_paging(&mut h);
}

#[test]
fn reconnect_resyncs_in_staging_and_drops_rows_deleted_while_away() {
    let mut h = Harness::new(test_config());
    let id = replay_paging(&mut h);
    let before = h.rows(&id);
    let conv1 = &conversations("40-ws-live.json")[1];
    let p4 = before.iter().find(|r| r["body"] == "p4").unwrap().clone();
    let new_edited = before
        .iter()
        .find(|r| r["body"] == "new-edited")
        .unwrap()
        .clone();
    // Recorded resume rows: "while away" (insert) and "p2-edited-away" (update).
    let resumed = conv1[5]["data"]["rows"].as_array().unwrap().clone();

    // The socket drops (server restart). While away: p1 moved out of the filter (no event
    // was ever sent), p3 deleted, p2 edited, "while away" inserted.
    h.now += 1_000;
    h.close(1006, "");
    let outs = h.drain();
    assert_eq!(
        states(&outs),
        [ConnectionState::Reconnecting {
            attempt: 1,
            delay_ms: 500
        }]
    );
    assert_eq!(connection_errors(&outs), ["NETWORK"]);
    assert!(outs.contains(&Output::SetTimer {
        id: TimerId::Reconnect,
        delay_ms: 500
    }));
    h.now += 500;
    h.core.timer_fired(h.now, TimerId::Reconnect);
    let outs = h.establish();
    let out = sent(&outs);
    // A materialized resync resubscribes with the original options (no `from`).
    assert_eq!(
        out[1],
        json!({"type":"subscribe","subscription":{"id":id,"sql":PAGING_SQL,"options":{"batch_size":2}}})
    );
    assert_eq!(
        states(&outs),
        [ConnectionState::Connecting, ConnectionState::Connected]
    );

    // The full snapshot the server now returns, in _seq order, paged by 2, gzip frames.
    let ack = conv1[4]["data"]
        .to_string()
        .replace("\"pg2\"", &format!("\"{id}\""));
    h.binary(&ack);
    let snapshot: Vec<Value> = vec![
        Value::Object(p4.clone().into_map()),
        Value::Object(new_edited.clone().into_map()),
        resumed[0].clone(),
        resumed[1].clone(),
    ];
    let batch = |rows: &[Value], num: u32, more: bool| {
        let last: i64 = rows.last().unwrap()["_seq"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        json!({"type":"initial_data_batch","subscription_id":id,"rows":rows,
               "batch_control":{"batch_num":num,"has_more":more,
                                "status":if more {"loading"} else {"ready"},"last_seq_id":last}})
        .to_string()
    };
    h.binary(&batch(&snapshot[..2], 0, true));
    let outs = h.drain();
    assert!(
        deltas(&outs).is_empty(),
        "old rows stay until the new snapshot is complete"
    );
    assert_eq!(h.rows(&id), before, "no empty flash, no partial swap");
    assert_eq!(
        sent(&outs),
        [json!({"type":"next_batch","subscription_id":id,"last_seq_id":383266664157646848_i64})]
    );
    h.binary(&batch(&snapshot[2..], 1, false));
    let outs = h.drain();
    let d = deltas(&outs);
    assert_eq!(d.len(), 1, "exactly one delta for the swap");
    let d = &d[0];
    assert!(d.resync && !d.initial);
    let mut removed: Vec<&str> = d.removed.iter().map(RowKey::as_str).collect();
    removed.sort();
    assert_eq!(
        removed,
        [
            "\"7530642528836517890\"", // p1: moved out of the filter while away
            "\"7530642528861683716\"", // p3: deleted while away
        ]
    );
    assert_eq!(d.updated.len(), 1, "only rows whose _seq changed");
    assert_eq!(d.updated[0].row["body"], "p2-edited-away");
    assert_eq!(d.inserted.len(), 1);
    assert_eq!(d.inserted[0].row["body"], "while away");
    let bodies: Vec<String> = h
        .rows(&id)
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["p2-edited-away", "p4", "new-edited", "while away"]);
    assert_eq!(checkpoints(&outs), [seq("383266693660381184")]);

    // Live changes continue on the swapped set; a replayed old version is ignored.
    h.text(
        &json!({"type":"change","subscription_id":id,"change_type":"insert","rows":[p4]})
            .to_string(),
    );
    let outs = h.drain();
    assert!(deltas(&outs).is_empty(), "replayed row is not duplicated");
    assert_eq!(h.rows(&id).len(), 4);
}

#[test]
fn events_mode_resumes_from_the_checkpoint_and_drops_replays() {
    let conv1 = &conversations("40-ws-live.json")[1];
    let mut h = Harness::new(test_config());
    let id = h.subscribe(
        PAGING_SQL,
        SubscribeOptions {
            from: Some(seq("383266668372922368")),
            ..Default::default()
        },
        SubscriptionMode::Events,
    );
    let rename = ("pg2", id.as_str());
    let outs = h.establish();
    let out = sent_raw(&outs);
    assert!(
        out[1].contains(r#""from":383266668372922368"#),
        "user from is a JSON integer: {}",
        out[1]
    );
    h.feed(&conv1[4], rename);
    h.feed(&conv1[5], rename);
    let outs = h.drain();
    let events: Vec<&LiveEvent> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Event { event, .. } => Some(event),
            _ => None,
        })
        .collect();
    assert!(matches!(events[0], LiveEvent::Ack(_)));
    match events[1] {
        LiveEvent::Batch(b) => assert_eq!(b.rows.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(checkpoints(&outs), [seq("383266693660381184")]);

    h.close(1001, "Server shutting down");
    h.drain();
    h.core.online(h.now);
    let outs = h.establish();
    let out = sent_raw(&outs);
    assert!(
        out[1].contains(r#""from":383266693660381184"#),
        "resume from the checkpoint: {}",
        out[1]
    );
    // The server replays one old row and one new one; an old insert is replayed too.
    let old = conv1[5]["data"]["rows"][1].clone();
    let fresh = json!({"id":"1","room":"paging","body":"after","_seq":"383266700000000000"});
    h.text(&json!({"type":"subscription_ack","subscription_id":id,"total_rows":0,
        "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":383266700000000000_i64},
        "schema":[]}).to_string());
    h.text(&json!({"type":"initial_data_batch","subscription_id":id,"rows":[old.clone(), fresh],
        "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":383266700000000000_i64}}).to_string());
    h.text(
        &json!({"type":"change","subscription_id":id,"change_type":"insert","rows":[old]})
            .to_string(),
    );
    let outs = h.drain();
    let batches: Vec<&LiveEvent> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Event { event, .. } if !matches!(event, LiveEvent::Ack(_)) => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(
        batches.len(),
        1,
        "the replayed insert is dropped: {batches:?}"
    );
    match batches[0] {
        LiveEvent::Batch(b) => {
            assert_eq!(b.rows.len(), 1);
            assert_eq!(b.rows[0]["body"], "after");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn recorded_projection_and_subscription_errors() {
    let conv = &conversations("40-ws-live.json")[0];
    let mut h = Harness::new(test_config());
    h.establish_lazily();
    // Projection with last_rows: the schema has no pk, so key by the projected column.
    let proj = h.subscribe(
        "SELECT body FROM wire445072.inbox WHERE room = 'paging'",
        SubscribeOptions {
            last_rows: Some(2),
            key_columns: vec!["body".into()],
            ..Default::default()
        },
        SubscriptionMode::Materialized,
    );
    let outs = h.drain();
    assert_eq!(
        sent(&outs),
        [
            json!({"type":"subscribe","subscription":{"id":proj,"sql":"SELECT body FROM wire445072.inbox WHERE room = 'paging'","options":{"batch_size":500,"last_rows":2}}})
        ]
    );
    h.feed(&conv[20], ("proj", &proj));
    h.feed(&conv[21], ("proj", &proj));
    let d = deltas(&h.drain());
    assert_eq!(d[0].inserted.len(), 2);
    assert_eq!(d[0].inserted[1].row["body"], "new-edited");

    // Without key columns the rows (no pk, no id) cannot be keyed: a clear, non-fatal error.
    let unkeyed = h.live("SELECT body FROM wire445072.inbox WHERE room = 'paging'");
    h.drain();
    h.feed(&conv[20], ("proj", &unkeyed));
    h.feed(&conv[21], ("proj", &unkeyed));
    let outs = h.drain();
    assert!(outs.iter().any(|o| matches!(o, Output::SubscriptionError { error, fatal: false, .. } if error.code == "INVALID_ARGUMENT")));

    // bad1, bad2 and bad4 are refused before anything is sent (bad1's plain `ORDER BY id` is
    // now applied locally, ordered.rs; an expression is still refused).
    for (sql, options) in [
        (
            "SELECT * FROM wire445072.inbox ORDER BY lower(id)",
            SubscribeOptions::default(),
        ),
        ("SELECT * FROM inbox", SubscribeOptions::default()),
        (
            "SELECT * FROM wire445072.inbox",
            SubscribeOptions {
                batch_size: Some(2),
                last_rows: Some(5),
                ..Default::default()
            },
        ),
    ] {
        let err = h
            .core
            .subscribe(h.now, sql, options, SubscriptionMode::Materialized)
            .unwrap_err();
        assert_eq!(err.code, "INVALID_ARGUMENT", "{sql}");
    }
    assert!(h.drain().is_empty());

    // bad3: the server's NOT_FOUND for a never-acknowledged subscription is fatal.
    let bad3 = h.live("SELECT * FROM wire445072.nothing");
    h.drain();
    h.feed(&conv[33], ("bad3", &bad3));
    let outs: Vec<Output> = h
        .drain()
        .into_iter()
        .filter(|o| !matches!(o, Output::SetTimer { .. } | Output::CancelTimer { .. }))
        .collect();
    match &outs[..] {
        [Output::SubscriptionError {
            subscription_id,
            error,
            fatal: true,
        }] => {
            assert_eq!(subscription_id, &bad3);
            assert_eq!(error.code, "NOT_FOUND");
            assert!(error.message.contains("Table not found"));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.core.subscriptions().iter().all(|s| s.id != bad3));
}

impl Harness {
    /// Connects with no subscriptions.
    fn establish_lazily(&mut self) {
        self.core.connect(self.now);
        self.establish();
    }
}

#[test]
fn recorded_limits_snapshot_pages_through_2500_rows_with_batch_size_999() {
    let conv = &conversations("70-limits.json")[1];
    let mut h = Harness::new(test_config());
    let err = h
        .core
        .subscribe(
            h.now,
            "SELECT id, k FROM wire445072.many",
            SubscribeOptions {
                batch_size: Some(1000),
                ..Default::default()
            },
            SubscriptionMode::Materialized,
        )
        .unwrap_err();
    assert_eq!(err.code, "INVALID_ARGUMENT");
    let id = h.subscribe(
        "SELECT id, k FROM wire445072.many",
        SubscribeOptions {
            batch_size: Some(999),
            ..Default::default()
        },
        SubscriptionMode::Materialized,
    );
    let rename = ("many999", id.as_str());
    let outs = h.establish();
    assert_eq!(sent(&outs)[1], outbound(&conv[3], rename));
    let mut synthetic = 0;
    let rest = &conv[4..];
    for (j, event) in rest.iter().enumerate() {
        if event["dir"] != "in" {
            continue;
        }
        // What the recorder sent in reply, up to the next inbound frame.
        let expected: Vec<String> = rest[j + 1..]
            .iter()
            .take_while(|e| e["dir"] != "in")
            .filter(|e| e["dir"] == "out")
            .map(|e| {
                e["data"]
                    .as_str()
                    .unwrap()
                    .replace("\"many999\"", &format!("\"{id}\""))
            })
            .collect();
        // The recording elides rows as {"<more>": n}; expand them into distinct rows.
        let mut data = event["data"].clone();
        if let Some(rows) = data.get_mut("rows").and_then(Value::as_array_mut) {
            let mut expanded = Vec::new();
            for r in rows.drain(..) {
                match r.get("<more>").and_then(Value::as_u64) {
                    Some(n) => {
                        for _ in 0..n {
                            synthetic += 1;
                            expanded.push(json!({"id": format!("x{synthetic}"), "k": -1,
                                "_seq": (383266720000000000_i64 + synthetic).to_string()}));
                        }
                    }
                    None => expanded.push(r),
                }
            }
            *rows = expanded;
        }
        h.feed(&json!({"dir":"in","frame":"text","data":data}), rename);
        let outs = h.drain();
        assert_eq!(sent_raw(&outs), expected);
    }
    assert_eq!(h.rows(&id).len(), 2500);
    assert_eq!(
        h.core.subscriptions()[0].last_seq_id,
        Some(seq("383266720654922227"))
    );
}

#[test]
fn recorded_auth_failure_goes_to_needs_auth_and_requests_a_token() {
    let convs = conversations("30-ws-auth.json");
    let mut h = Harness::new(test_config());
    h.live(PAGING_SQL);
    h.drain();
    h.core.token_ready(h.now, "<token>".into());
    h.core.socket_opened(h.now, h.socket);
    let outs = h.drain();
    assert_eq!(sent(&outs), [outbound(&convs[1][0], ("", ""))]);
    h.feed(&convs[1][1], ("", ""));
    h.close(1008, "Authentication failed");
    let outs = h.drain();
    assert_eq!(states(&outs), [ConnectionState::NeedsAuth]);
    assert_eq!(connection_errors(&outs), ["AUTH_FAILED"]);
    assert!(outs.contains(&Output::RequestToken));
    assert!(!outs.iter().any(|o| matches!(o, Output::OpenSocket { .. })));
    assert!(!outs.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            id: TimerId::Reconnect,
            ..
        }
    )));

    // A new token reconnects at once.
    h.core.token_ready(h.now, "still-bad".into());
    let outs = h.drain();
    assert!(outs.iter().any(|o| matches!(o, Output::OpenSocket { .. })));
    assert!(
        !outs.contains(&Output::RequestToken),
        "the provided token is used"
    );
    h.core.socket_opened(h.now, h.socket);
    h.feed(&convs[1][1], ("", ""));
    h.close(1008, "Authentication failed");
    let outs = h.drain();
    // Second consecutive failure: wait for the app instead of looping.
    assert_eq!(states(&outs), [ConnectionState::NeedsAuth]);
    assert!(!outs.contains(&Output::RequestToken));
    // connect() (e.g. after a login) tries again with a fresh token.
    h.core.connect(h.now);
    let outs = h.drain();
    assert!(outs.contains(&Output::RequestToken));
    h.core.token_ready(h.now, "good".into());
    h.core.socket_opened(h.now, h.socket);
    h.text(&convs[2][3]["data"].to_string());
    let outs = h.drain();
    assert!(h.core.is_connected());
    assert_eq!(sent(&outs)[1]["type"], "subscribe");
}

#[test]
fn heartbeat_timeout_and_other_closes_reconnect_instead_of_needing_auth() {
    let convs = conversations("30-ws-auth.json");
    let mut h = Harness::new(test_config());
    h.establish_lazily();
    let close = convs[3].last().unwrap();
    h.close(
        close["code"].as_u64().unwrap() as u16,
        close["reason"].as_str().unwrap(),
    );
    let outs = h.drain();
    assert_eq!(
        states(&outs),
        [ConnectionState::Reconnecting {
            attempt: 1,
            delay_ms: 500
        }]
    );
    // "Authentication timeout" (1008) is not a credential problem either.
    h.core.timer_fired(h.now, TimerId::Reconnect);
    h.drain();
    h.core.token_ready(h.now, "t".into());
    h.core.socket_opened(h.now, h.socket);
    h.text(r#"{"type":"auth_error","message":"Authentication timeout - no auth message received within 3 seconds"}"#);
    h.close(1008, "Authentication timeout");
    let outs = h.drain();
    assert!(matches!(
        states(&outs)[..],
        [ConnectionState::Reconnecting { attempt: 2, .. }]
    ));
    // A synthetic-id server error is a connection error with the server's code.
    let mut h = Harness::new(test_config());
    h.establish_lazily();
    h.feed(&convs[2][1], ("", ""));
    assert_eq!(connection_errors(&h.drain()), ["AUTH_REQUIRED"]);
}

#[test]
fn pings_only_when_idle_on_a_fake_clock() {
    let mut h = Harness::new(test_config());
    h.now = 0;
    h.core.connect(0);
    let outs = h.establish();
    assert!(outs.contains(&Output::SetTimer {
        id: TimerId::Ping,
        delay_ms: 5000
    }));
    h.now = 5_000;
    h.core.timer_fired(h.now, TimerId::Ping);
    let outs = h.drain();
    assert_eq!(sent(&outs), [json!({"type":"ping"})]);
    assert!(outs.contains(&Output::SetTimer {
        id: TimerId::Ping,
        delay_ms: 5000
    }));
    // Something else was sent at 7000: the 10 000 firing re-arms for the remainder.
    h.now = 7_000;
    h.subscribe(
        PAGING_SQL,
        SubscribeOptions::default(),
        SubscriptionMode::Events,
    );
    h.drain();
    h.now = 10_000;
    h.core.timer_fired(h.now, TimerId::Ping);
    let outs = h.drain();
    assert!(sent(&outs).is_empty());
    assert!(outs.contains(&Output::SetTimer {
        id: TimerId::Ping,
        delay_ms: 2000
    }));
    h.now = 12_000;
    h.core.timer_fired(h.now, TimerId::Ping);
    assert_eq!(sent(&h.drain()), [json!({"type":"ping"})]);
    // After disconnect the timer is cancelled and a stale firing does nothing.
    h.core.disconnect(h.now);
    let outs = h.drain();
    assert!(outs.contains(&Output::CancelTimer { id: TimerId::Ping }));
    h.core.timer_fired(h.now + 5000, TimerId::Ping);
    assert!(h.drain().is_empty());
}

#[test]
fn backoff_schedule_with_fixed_jitter_resets_after_success() {
    let mut h = Harness::new(test_config());
    h.establish_lazily();
    let first_socket = h.socket;
    let mut schedule = Vec::new();
    h.close(1006, "");
    for _ in 0..7 {
        let outs = h.drain();
        let (attempt, delay) = match states(&outs).last() {
            Some(ConnectionState::Reconnecting { attempt, delay_ms }) => (*attempt, *delay_ms),
            other => panic!("{other:?}"),
        };
        assert!(outs.contains(&Output::SetTimer {
            id: TimerId::Reconnect,
            delay_ms: delay
        }));
        schedule.push((attempt, delay));
        h.now += delay;
        h.core.timer_fired(h.now, TimerId::Reconnect);
        let outs = h.drain();
        assert!(
            outs.contains(&Output::RequestToken),
            "fresh token each attempt"
        );
        assert!(outs.iter().any(|o| matches!(o, Output::OpenSocket { .. })));
        h.close(1006, "");
    }
    assert_eq!(
        schedule,
        [
            (1, 500),
            (2, 1000),
            (3, 2000),
            (4, 4000),
            (5, 8000),
            (6, 15000),
            (7, 15000)
        ]
    );
    // Events from an old socket are ignored.
    h.core.socket_text(
        h.now,
        first_socket,
        r#"{"type":"auth_success","user":"a","role":"user"}"#,
    );
    assert!(!h.core.is_connected());
    // A page hint skips the wait; success resets the schedule.
    h.drain();
    h.core.visible(h.now);
    let outs = h.drain();
    assert!(outs.contains(&Output::CancelTimer {
        id: TimerId::Reconnect
    }));
    h.core.token_ready(h.now, "t".into());
    h.core.socket_opened(h.now, h.socket);
    h.text(r#"{"type":"auth_success","user":"a","role":"user"}"#);
    h.drain();
    assert!(h.core.is_connected());
    h.close(1006, "");
    assert_eq!(
        states(&h.drain()),
        [ConnectionState::Reconnecting {
            attempt: 1,
            delay_ms: 500
        }]
    );
}

#[test]
fn max_attempts_gives_up_and_online_restarts() {
    let mut config = test_config();
    config.reconnect.max_attempts = Some(1);
    let mut h = Harness::new(config);
    h.establish_lazily();
    h.close(1006, "");
    h.drain();
    h.core.timer_fired(h.now, TimerId::Reconnect);
    h.drain();
    h.close(1006, "");
    let outs = h.drain();
    assert_eq!(states(&outs).last(), Some(&ConnectionState::Disconnected));
    assert_eq!(connection_errors(&outs), ["NETWORK", "NETWORK"]);
    h.core.online(h.now);
    assert!(h
        .drain()
        .iter()
        .any(|o| matches!(o, Output::OpenSocket { .. })));
}

#[test]
fn connect_timeout_counts_as_a_failed_attempt() {
    let mut h = Harness::new(test_config());
    h.core.connect(h.now);
    let outs = h.drain();
    assert!(outs.contains(&Output::SetTimer {
        id: TimerId::ConnectTimeout,
        delay_ms: 10_000
    }));
    h.now += 10_000;
    h.core.timer_fired(h.now, TimerId::ConnectTimeout);
    let outs = h.drain();
    assert!(outs.iter().any(|o| matches!(o, Output::CloseSocket { .. })));
    assert_eq!(connection_errors(&outs), ["TIMEOUT"]);
    assert!(matches!(
        states(&outs)[..],
        [ConnectionState::Reconnecting { attempt: 1, .. }]
    ));
}

#[test]
fn identical_sql_gets_distinct_ids_and_unsubscribe_works_offline() {
    let mut h = Harness::new(test_config());
    let a = h.live(PAGING_SQL);
    let b = h.live(PAGING_SQL);
    let c = h.subscribe(
        PAGING_SQL,
        SubscribeOptions::default(),
        SubscriptionMode::Events,
    );
    assert_ne!(a, b);
    assert_ne!(b, c);
    // Offline (still connecting): unsubscribe succeeds locally and sends nothing.
    assert!(h.core.unsubscribe(h.now, &c));
    assert!(!h.core.unsubscribe(h.now, &c));
    let outs = h.establish();
    let ids: Vec<Value> = sent(&outs)
        .iter()
        .filter(|m| m["type"] == "subscribe")
        .map(|m| m["subscription"]["id"].clone())
        .collect();
    assert_eq!(ids, [json!(a), json!(b)]);
    // Connected: unsubscribe tells the server.
    assert!(h.core.unsubscribe(h.now, &a));
    assert_eq!(
        sent(&h.drain()),
        [json!({"type":"unsubscribe","subscription_id":a})]
    );
    // Disconnected: still succeeds, nothing sent; the rest is kept for connect().
    h.core.disconnect(h.now);
    let outs = h.drain();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::CloseSocket { code: 1000, .. })));
    assert_eq!(states(&outs), [ConnectionState::Disconnected]);
    assert!(h.core.unsubscribe(h.now, &b) && h.drain().is_empty());
    let d = h.live(PAGING_SQL);
    h.core.disconnect(h.now);
    h.drain();
    assert_eq!(h.core.subscriptions().len(), 1);
    h.core.connect(h.now);
    let outs = h.establish();
    assert_eq!(sent(&outs)[1]["subscription"]["id"], json!(d));
    // Frames for an unsubscribed id are ignored.
    h.text(&json!({"type":"change","subscription_id":a,"change_type":"insert","rows":[{"id":"1","_seq":"5"}]}).to_string());
    assert!(h.drain().is_empty());
    // shutdown forgets everything and refuses further use.
    h.core.shutdown(h.now);
    h.drain();
    assert!(h.core.subscriptions().is_empty());
    let err = h
        .core
        .subscribe(
            h.now,
            PAGING_SQL,
            SubscribeOptions::default(),
            SubscriptionMode::Events,
        )
        .unwrap_err();
    assert_eq!(err.code, "CLOSED");
}

#[test]
fn malformed_frames_are_reported_and_do_not_break_the_stream() {
    let mut h = Harness::new(test_config());
    let id = h.live(PAGING_SQL);
    h.establish();
    h.empty_snapshot(&id);
    let d = deltas(&h.drain());
    assert!(
        d[0].initial && d[0].inserted.is_empty(),
        "an empty snapshot is emitted once"
    );
    h.text("{not json");
    h.text(r#"{"type":"pong"}"#);
    h.core
        .socket_binary(h.now, h.socket, b"\x1f\x8b\x08\x00garbage");
    h.core.socket_binary(h.now, h.socket, b"\x82\xa4type");
    let outs = h.drain();
    assert_eq!(connection_errors(&outs), ["PROTOCOL"; 4]);
    assert!(h.core.is_connected());
    h.binary(
        &json!({"type":"change","subscription_id":id,"change_type":"insert",
        "rows":[{"id":"1","_seq":"383266659942371328"}]})
        .to_string(),
    );
    let d = deltas(&h.drain());
    assert_eq!(d[0].inserted.len(), 1);
    // An oversized gzip frame is refused, not inflated.
    let mut small = test_config();
    small.max_inflated_bytes = 64;
    let mut h2 = Harness::new(small);
    h2.establish_lazily();
    h2.binary(
        &json!({"type":"error","subscription_id":"protocol","code":"X","message":"y".repeat(100)})
            .to_string(),
    );
    assert_eq!(connection_errors(&h2.drain()), ["PROTOCOL"]);
}

#[test]
fn socket_frames_before_the_snapshot_completes_are_not_emitted() {
    let conv = &conversations("40-ws-live.json")[0];
    let mut h = Harness::new(test_config());
    let id = h.paging();
    h.establish();
    h.feed(&conv[3], ("pg", &id));
    h.feed(&conv[4], ("pg", &id));
    // The socket drops mid-snapshot: nothing was emitted, and the reload starts afresh.
    h.close(1006, "");
    let outs = h.drain();
    assert!(deltas(&outs).is_empty());
    h.core.online(h.now);
    let outs = h.establish();
    assert_eq!(
        sent(&outs)[1]["subscription"]["options"],
        json!({"batch_size":2})
    );
    h.feed(&conv[3], ("pg", &id));
    for i in [4, 6, 8] {
        h.feed(&conv[i], ("pg", &id));
    }
    let d = deltas(&h.drain());
    assert_eq!(d.len(), 1);
    assert!(d[0].initial);
    assert_eq!(
        d[0].inserted.len(),
        5,
        "no duplicates from the interrupted load"
    );
}

#[test]
fn snapshot_pages_are_requested_before_decoding_and_reach_the_shell_as_loading_parts() {
    let conv = &conversations("40-ws-live.json")[0];
    let mut h = Harness::new(test_config());
    h.raw_deltas = true;
    let id = h.paging();
    h.establish();
    h.feed(&conv[3], ("pg", &id));
    assert!(h.drain().iter().all(|o| !matches!(o, Output::Rows { .. })));

    let is_next_batch =
        |o: &Output| matches!(o, Output::SendText { text, .. } if text.contains("next_batch"));
    let mut parts = Vec::new();
    let mut next_batches = 0;
    for (n, i) in [4, 6, 8].into_iter().enumerate() {
        h.feed(&conv[i], ("pg", &id));
        // First drain: only the request for the next page (the rows are not decoded yet).
        let first = h.core.drain_outputs();
        let last_page = n == 2;
        if !last_page {
            assert!(first.iter().any(is_next_batch), "{first:?}");
            assert!(!first.iter().any(|o| matches!(o, Output::Rows { .. })));
        }
        let rest = h.drain();
        let outs: Vec<Output> = first.into_iter().chain(rest).collect();
        next_batches += outs.iter().filter(|o| is_next_batch(o)).count();
        let d = deltas(&outs);
        assert_eq!(d.len(), 1, "one delta per page: {outs:?}");
        assert!(d[0].initial);
        assert_eq!(d[0].loading, !last_page);
        assert_eq!(d[0].reset, n == 0, "only the first part resets the mirror");
        // No checkpoint before the app has the whole snapshot.
        assert_eq!(checkpoints(&outs).is_empty(), !last_page);
        parts.push(d[0].clone());
    }
    assert_eq!(next_batches, 2, "one next_batch per page with more to come");
    let mut mirror = Vec::new();
    for part in &parts {
        apply_delta(&mut mirror, part);
    }
    let core_rows: Vec<Row> = h.core.rows(&id).unwrap().map(|(_, r)| r.clone()).collect();
    assert_eq!(
        mirror
            .into_iter()
            .map(|k| (*k.row).clone())
            .collect::<Vec<_>>(),
        core_rows
    );
    assert_eq!(core_rows.len(), 5);

    // A load interrupted after a part was emitted starts again with a reset.
    let mut h = Harness::new(test_config());
    h.raw_deltas = true;
    let id = h.paging();
    h.establish();
    h.feed(&conv[3], ("pg", &id));
    h.feed(&conv[4], ("pg", &id));
    assert!(deltas(&h.drain())[0].reset);
    h.close(1006, "");
    h.drain();
    h.core.online(h.now);
    h.establish();
    h.feed(&conv[3], ("pg", &id));
    h.feed(&conv[4], ("pg", &id));
    let d = deltas(&h.drain());
    assert!(d[0].reset && d[0].loading, "{d:?}");
}

#[test]
fn disable_compression_and_server_message_helpers() {
    let mut config = test_config();
    config.disable_compression = true;
    assert_eq!(
        config.socket_url(),
        "ws://127.0.0.1:8080/v1/ws?compress=false"
    );
    config.ws_url = "ws://h/v1/ws?x=1".into();
    assert_eq!(config.socket_url(), "ws://h/v1/ws?x=1&compress=false");
    let msg = frames::decode_text(r#"{"type":"error","subscription_id":"rate_limit","code":"RATE_LIMIT_EXCEEDED","message":"slow down"}"#).unwrap();
    assert_eq!(msg.subscription_id(), Some("rate_limit"));
    if let ServerMessage::Error(e) = msg {
        assert!(e.to_error().retryable);
    }
    assert_eq!(
        TimerId::from_u32(TimerId::ConnectTimeout.as_u32()),
        Some(TimerId::ConnectTimeout)
    );
}

#[test]
fn one_socket_multiplexes_subscriptions_and_bursts_coalesce_into_one_delta() {
    let mut h = Harness::new(test_config());
    let a = h.live(PAGING_SQL);
    let b = h.live(PAGING_SQL);
    let outs = h.establish();
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Output::OpenSocket { .. }))
            .count(),
        1,
        "one socket for every subscription"
    );
    for id in [&a, &b] {
        h.empty_snapshot(id);
    }
    h.drain();
    // A burst of three inserts for `a` and one for `b`, drained once.
    for n in 1..=3 {
        h.text(
            &json!({"type":"change","subscription_id":a,"change_type":"insert",
            "rows":[{"id":n.to_string(),"_seq":(100 + n).to_string()}]})
            .to_string(),
        );
    }
    h.text(
        &json!({"type":"change","subscription_id":b,"change_type":"insert",
        "rows":[{"id":"9","_seq":"200"}]})
        .to_string(),
    );
    let outs = h.drain();
    let per_sub: Vec<(String, usize)> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Rows {
                subscription_id,
                delta,
            } => Some((subscription_id.clone(), delta.inserted.len())),
            _ => None,
        })
        .collect();
    assert_eq!(per_sub, [(a.clone(), 3), (b.clone(), 1)]);
    assert_eq!(checkpoints(&outs), [seq("103"), seq("200")]);
    assert_eq!(h.core.rows(&a).unwrap().len(), 3);
    assert_eq!(h.core.rows(&b).unwrap().len(), 1);
    let infos = h.core.subscriptions();
    assert!(infos.iter().all(|s| s.live));
    assert_eq!(infos[0].last_seq_id, Some(seq("103")));
}

#[test]
fn the_ack_schema_is_kept_per_subscription() {
    let mut h = Harness::new(test_config());
    let a = h.live(PAGING_SQL);
    let e = h.subscribe(
        PAGING_SQL,
        SubscribeOptions::default(),
        SubscriptionMode::Events,
    );
    assert_eq!(h.core.subscription_schema(&a), Some(&[][..]));
    assert_eq!(h.core.subscription_schema("sub-404"), None);
    h.establish();
    for (id, ty) in [(&a, "BigInt"), (&e, "Text")] {
        h.text(
            &json!({"type":"subscription_ack","subscription_id":id,"total_rows":0,
            "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":null},
            "schema":[{"name":"id","data_type":ty,"index":0,"flags":["pk"]},
                      {"name":"doc","data_type":"Json","index":1}]})
            .to_string(),
        );
    }
    h.drain();
    let names = |core: &LiveCore, id: &str| -> Vec<(String, String)> {
        core.subscription_schema(id)
            .unwrap()
            .iter()
            .map(|f| (f.name.clone(), f.data_type.to_wire().to_string()))
            .collect()
    };
    assert_eq!(
        names(&h.core, &a),
        [
            ("id".to_string(), "\"BigInt\"".to_string()),
            ("doc".to_string(), "\"Json\"".to_string())
        ]
    );
    assert_eq!(names(&h.core, &e)[0].1, "\"Text\"");
    // A resubscribe after a reconnect replaces it with the new ack's schema.
    h.close(1006, "");
    h.drain();
    h.core.online(h.now);
    h.establish();
    h.text(
        &json!({"type":"subscription_ack","subscription_id":a,"total_rows":0,
        "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":null},
        "schema":[{"name":"id","data_type":"Text","index":0,"flags":["pk"]}]})
        .to_string(),
    );
    assert_eq!(
        names(&h.core, &a),
        [("id".to_string(), "\"Text\"".to_string())]
    );
    h.core.unsubscribe(h.now, &a);
    assert_eq!(h.core.subscription_schema(&a), None);
}

#[test]
fn sends_stay_under_the_server_message_rate_and_keep_their_order() {
    let mut h = Harness::new(test_config());
    let ids: Vec<String> = (0..60).map(|_| h.live(PAGING_SQL)).collect();
    let outs = h.establish();
    // authenticate + 39 subscribes in the first window, the rest held back.
    let first = sent(&outs);
    assert_eq!(first.len(), 40);
    assert_eq!(first[0]["type"], "authenticate");
    assert!(outs.contains(&Output::SetTimer {
        id: TimerId::Throttle,
        delay_ms: 1100
    }));
    // Early firings are ignored; the timer fires when the window has room.
    h.now += 1100;
    h.core.timer_fired(h.now, TimerId::Throttle);
    let outs = h.drain();
    let rest = sent(&outs);
    assert_eq!(rest.len(), 21);
    let order: Vec<String> = first[1..]
        .iter()
        .chain(rest.iter())
        .map(|m| m["subscription"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, ids, "every subscribe once, in order");
    assert!(!outs.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            id: TimerId::Throttle,
            ..
        }
    )));
    // A lost socket drops the queue (a new socket resubscribes everything anyway).
    for _ in 0..45 {
        h.core.unsubscribe(h.now, &ids[0]);
        h.live(PAGING_SQL);
    }
    h.close(1006, "");
    let outs = h.drain();
    assert!(outs.contains(&Output::CancelTimer {
        id: TimerId::Throttle
    }));
    // Unlimited when the budget is 0.
    let mut config = test_config();
    config.send_budget = 0;
    let mut h = Harness::new(config);
    for _ in 0..60 {
        h.live(PAGING_SQL);
    }
    assert_eq!(sent(&h.establish()).len(), 61);
}

mod resilience;

/// Issue 16: a burst of change frames reaches the shell as one delta per coalescing window;
/// a lone change (nothing flushed within the window) is flushed by the drain that follows
/// it, as without coalescing.
#[test]
fn bursts_coalesce_per_window_and_a_lone_change_is_not_delayed() {
    let mut config = test_config();
    config.coalesce_ms = 16;
    let mut h = Harness::new(config);
    let a = h.live(PAGING_SQL);
    h.establish();
    h.empty_snapshot(&a);
    h.drain();
    let change = |n: u64| {
        json!({"type":"change","subscription_id":a,"change_type":"insert",
        "rows":[{"id":n.to_string(),"_seq":(100 + n).to_string()}]})
        .to_string()
    };
    h.now += 100;
    h.text(&change(1));
    let outs = h.drain();
    assert_eq!(deltas(&outs).len(), 1, "a lone change is flushed at once");
    assert!(!outs.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            id: TimerId::Flush,
            ..
        }
    )));
    // The burst that follows within the window is held, then flushed as one delta.
    let mut timers: Vec<u64> = Vec::new();
    for n in 2..=40 {
        h.now += if n % 4 == 0 { 1 } else { 0 };
        h.text(&change(n));
        let outs = h.drain();
        assert!(
            deltas(&outs).is_empty(),
            "frame {n} flushed inside the window"
        );
        let flush: Vec<u64> =
            pick!(outs, Output::SetTimer { id: TimerId::Flush, delay_ms } => *delay_ms);
        timers.extend(flush);
    }
    assert_eq!(timers, [16], "one Flush timer, for the end of the window");
    h.now = 1_000 + 100 + 16;
    h.core.timer_fired(h.now, TimerId::Flush);
    let outs = h.drain();
    let held = deltas(&outs);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].inserted.len(), 39, "the union of the held frames");
    assert_eq!(checkpoints(&outs), [seq("140")]);
    // A frame right after that flush opens the next window; one long after it does not.
    h.now += 5;
    h.text(&change(41));
    let outs = h.drain();
    assert!(deltas(&outs).is_empty());
    let flush: Vec<u64> =
        pick!(outs, Output::SetTimer { id: TimerId::Flush, delay_ms } => *delay_ms);
    assert_eq!(flush, [11]);
    h.now += 11;
    h.core.timer_fired(h.now, TimerId::Flush);
    assert_eq!(deltas(&h.drain())[0].inserted.len(), 1);
    h.now += 1_000;
    h.text(&change(42));
    assert_eq!(
        deltas(&h.drain()).len(),
        1,
        "a lone change after a quiet second"
    );
    assert_eq!(h.core.rows(&a).unwrap().len(), 42);
}

/// Without a window (`coalesce_ms: 0`, the core's default) every drain flushes.
#[test]
fn without_a_coalescing_window_every_drain_flushes() {
    let mut h = Harness::new(test_config());
    let a = h.live(PAGING_SQL);
    h.establish();
    h.empty_snapshot(&a);
    h.drain();
    for n in 1..=3 {
        h.text(
            &json!({"type":"change","subscription_id":a,"change_type":"insert",
            "rows":[{"id":n.to_string(),"_seq":(100 + n).to_string()}]})
            .to_string(),
        );
        let outs = h.drain();
        assert_eq!(deltas(&outs).len(), 1);
        assert!(!outs.iter().any(|o| matches!(
            o,
            Output::SetTimer {
                id: TimerId::Flush,
                ..
            }
        )));
    }
}
