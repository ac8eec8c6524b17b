//! Regression tests of issue 13 (hardening) that need the whole live core: recorded-style
//! frames through `LiveCore` on a fake clock.

use crate::core::json::{json, Value};

use super::live::connection::{LiveConfig, LiveCore, Output, SubscribeOptions, SubscriptionMode};
use super::live::TimerId;

struct Core {
    core: LiveCore,
    now: u64,
    socket: u64,
}

impl Core {
    fn new() -> Core {
        Core {
            core: LiveCore::with_jitter(
                LiveConfig {
                    check_row_cap: false, // snapshots are not held for a count
                    ..LiveConfig::new("ws://127.0.0.1:8080/v1/ws")
                },
                Box::new(|c| c / 2),
            ),
            now: 1_000,
            socket: 0,
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut outs = Vec::new();
        loop {
            let more = self.core.drain_outputs();
            if more.is_empty() {
                break;
            }
            outs.extend(more);
        }
        for o in &outs {
            if let Output::OpenSocket { socket, .. } = o {
                self.socket = *socket;
            }
        }
        outs
    }

    /// Token, open, `auth_success`; returns the frames sent (subscribes among them).
    fn establish(&mut self) -> Vec<Value> {
        let mut outs = self.drain();
        self.core.token_ready(self.now, "jwt".into());
        self.core.socket_opened(self.now, self.socket);
        outs.extend(self.drain());
        self.text(json!({"type":"auth_success","user":"alice","role":"user",
            "protocol":{"serialization":"json","compression":"gzip"}}));
        outs.extend(self.drain());
        sent(&outs)
    }

    fn text(&mut self, v: Value) {
        self.core.socket_text(self.now, self.socket, &v.to_string());
    }

    /// Ack + one final batch with `rows` (`(id, seq)`), as the server sends a snapshot.
    fn snapshot(&mut self, id: &str, rows: &[(u64, u64)]) {
        let last = rows.iter().map(|r| r.1).max();
        let control = json!({"batch_num":0,"has_more":false,"status":"ready","last_seq_id":last});
        self.text(
            json!({"type":"subscription_ack","subscription_id":id,"total_rows":0,
            "batch_control":&control,
            "schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk","nn","uq"]},
                      {"name":"title","data_type":"Text","index":1}]}),
        );
        let rows: Vec<Value> = rows
            .iter()
            .map(|(i, s)| json!({"id":i.to_string(),"title":format!("row {i}"),"_seq":s.to_string()}))
            .collect();
        self.text(
            json!({"type":"initial_data_batch","subscription_id":id,"rows":rows,
            "batch_control":control}),
        );
    }

    fn insert(&mut self, id: &str, row: u64, seq: u64) {
        self.text(
            json!({"type":"change","subscription_id":id,"change_type":"insert",
            "rows":[{"id":row.to_string(),"title":format!("row {row}"),"_seq":seq.to_string()}]}),
        );
    }

    fn ids(&self, id: &str) -> Vec<String> {
        self.core
            .rows(id)
            .unwrap()
            .map(|(_, r)| r["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn sent(outs: &[Output]) -> Vec<Value> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SendText { text, .. } => crate::core::json::parse(text).ok(),
            _ => None,
        })
        .collect()
}

fn subscribes(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "subscribe")
        .cloned()
        .collect()
}

/// The repro: `lastRows: 3` on 10 rows, 2 inserts (5 rows), the connection drops,
/// 1 insert while away: afterwards 6 rows, none vanished.
#[test]
fn last_rows_shapes_only_the_first_snapshot_not_the_resync() {
    let mut c = Core::new();
    let id = c
        .core
        .subscribe(
            c.now,
            "SELECT * FROM app.items",
            SubscribeOptions {
                last_rows: Some(3),
                ..Default::default()
            },
            SubscriptionMode::Materialized,
        )
        .unwrap();
    let first = subscribes(&c.establish());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["subscription"]["options"]["last_rows"], 3);
    // Rows 8..10 (the newest 3 of 10), then 2 inserts.
    c.snapshot(&id, &[(8, 108), (9, 109), (10, 110)]);
    c.insert(&id, 11, 111);
    c.insert(&id, 12, 112);
    c.drain();
    assert_eq!(c.ids(&id), ["8", "9", "10", "11", "12"]);

    // The connection drops; the reconnect resubscribes WITHOUT last_rows.
    c.core.socket_closed(c.now, c.socket, 1006, "gone");
    let outs = c.drain();
    let delay = outs
        .iter()
        .find_map(|o| match o {
            Output::SetTimer {
                id: TimerId::Reconnect,
                delay_ms,
            } => Some(*delay_ms),
            _ => None,
        })
        .expect("a reconnect is scheduled");
    c.now += delay;
    c.core.timer_fired(c.now, TimerId::Reconnect);
    let again = subscribes(&c.establish());
    assert_eq!(again.len(), 1, "{again:?}");
    let options = &again[0]["subscription"]["options"];
    assert!(options.get("last_rows").is_none(), "resubscribe: {options}");
    // The server's full snapshot: every row still matching, incl. row 13 inserted while away.
    let all: Vec<(u64, u64)> = (1..=13).map(|i| (i, 100 + i)).collect();
    c.snapshot(&id, &all);
    c.drain();
    // The 5 rows held plus the one written while away; rows 1..7, which the first
    // (lastRows) snapshot left out, stay out.
    assert_eq!(c.ids(&id), ["8", "9", "10", "11", "12", "13"]);
    // A row deleted while away still goes; one older row updated while away comes in
    // (a live update would have brought it too).
    c.core.socket_closed(c.now, c.socket, 1006, "gone");
    c.drain();
    c.now += 60_000;
    c.core.timer_fired(c.now, TimerId::Reconnect);
    c.establish();
    let mut all: Vec<(u64, u64)> = (1..=13).filter(|&i| i != 9).map(|i| (i, 100 + i)).collect();
    all[1].1 = 200; // row 2, updated
    all.sort_by_key(|r| r.1);
    c.snapshot(&id, &all);
    c.drain();
    assert_eq!(c.ids(&id), ["8", "10", "11", "12", "13", "2"]);
}
