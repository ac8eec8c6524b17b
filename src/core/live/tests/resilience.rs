//! Fake-clock tests of the self-healing paths: the liveness echo, retries of subscriptions
//! that fail after their ack or get no answer, and self-verification by checksum.

use std::collections::HashMap;

use crate::core::json::{json, Value};

use super::*;
use crate::core::error::KalamError;
use crate::core::live::connection::ECHO_ID_PREFIX;
use crate::core::live::verify::{Checksum, CHECKSUM_MODULUS};

/// A [`Harness`] whose timers fire on a simulated clock.
struct Sim {
    h: Harness,
    armed: HashMap<TimerId, u64>,
    /// Everything drained so far (timer bookkeeping applied).
    log: Vec<(u64, Output)>,
}

impl Sim {
    fn new(config: LiveConfig) -> Sim {
        let mut h = Harness::new(config);
        h.now = 0;
        Sim {
            h,
            armed: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// Answers the token request, opens the socket and feeds `auth_success` (timers kept).
    fn establish(&mut self) {
        let outs = self.drain();
        assert!(outs.contains(&Output::RequestToken), "{outs:?}");
        self.h.core.token_ready(self.h.now, "jwt-token".into());
        self.h.core.socket_opened(self.h.now, self.h.socket);
        self.drain();
        self.h.text(r#"{"type":"auth_success","user":"alice","role":"user","protocol":{"serialization":"json","compression":"gzip"}}"#);
        self.drain();
    }

    /// Drains, records timers, returns the new outputs.
    fn drain(&mut self) -> Vec<Output> {
        let outs = self.h.drain();
        for o in &outs {
            match o {
                Output::SetTimer { id, delay_ms } => {
                    self.armed.insert(*id, self.h.now + delay_ms);
                }
                Output::CancelTimer { id } => {
                    self.armed.remove(id);
                }
                _ => {}
            }
            self.log.push((self.h.now, o.clone()));
        }
        outs
    }

    /// Advances to `until`, firing due timers in order; `server` sees every drained batch
    /// of outputs and may feed frames back.
    fn run(&mut self, until: u64, server: &mut dyn FnMut(&mut Harness, &[Output])) {
        loop {
            let next = self
                .armed
                .iter()
                .filter(|(_, &t)| t <= until)
                .min_by_key(|(_, &t)| t)
                .map(|(&id, &t)| (id, t));
            let Some((id, t)) = next else { break };
            self.armed.remove(&id);
            self.h.now = self.h.now.max(t);
            self.h.core.timer_fired(self.h.now, id);
            self.settle(server);
        }
        self.h.now = self.h.now.max(until);
    }

    /// Drains until the server has nothing more to say.
    fn settle(&mut self, server: &mut dyn FnMut(&mut Harness, &[Output])) -> Vec<Output> {
        let mut all = Vec::new();
        loop {
            let outs = self.drain();
            if outs.is_empty() {
                return all;
            }
            server(&mut self.h, &outs);
            all.extend(outs);
        }
    }
}

/// A server that answers every liveness echo at once.
fn answers_echoes(h: &mut Harness, outs: &[Output]) {
    for v in sent(outs) {
        if v["type"] == "next_batch" {
            let id = v["subscription_id"].as_str().unwrap();
            if id.starts_with(ECHO_ID_PREFIX) {
                h.text(
                    &json!({"type":"error","subscription_id":id,"code":"BATCH_FETCH_FAILED",
                            "message":format!("Not found: Subscription not found: {id}")})
                    .to_string(),
                );
            }
        }
    }
}

fn silent(_: &mut Harness, _: &[Output]) {}

fn ack(id: &str, has_more: bool, last: Option<i64>) -> String {
    json!({"type":"subscription_ack","subscription_id":id,"total_rows":0,
        "batch_control":{"batch_num":0,"has_more":has_more,"status":if has_more {"loading"} else {"ready"},"last_seq_id":last},
        "schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]},
                  {"name":"n","data_type":"Int","index":1}]})
    .to_string()
}

fn batch(id: &str, num: u32, rows: &[(i64, i64, i64)], has_more: bool) -> String {
    let rows: Vec<Value> = rows
        .iter()
        .map(|(k, n, s)| json!({"id": k.to_string(), "n": *n, "_seq": s.to_string()}))
        .collect();
    let last = rows
        .last()
        .map(|r| r["_seq"].as_str().unwrap().parse::<i64>().unwrap());
    json!({"type":"initial_data_batch","subscription_id":id,"rows":rows,
        "batch_control":{"batch_num":num,"has_more":has_more,
                         "status":if has_more {"loading_batch"} else {"ready"},"last_seq_id":last}})
    .to_string()
}

fn update(id: &str, key: i64, n: i64, seq: i64, old_seq: i64) -> String {
    json!({"type":"change","subscription_id":id,"change_type":"update",
        "rows":[{"id":key.to_string(),"n":n,"_seq":seq.to_string()}],
        "old_values":[{"id":key.to_string(),"n":n - 1,"_seq":old_seq.to_string()}]})
    .to_string()
}

fn sub_errors(outs: &[Output]) -> Vec<(String, bool)> {
    pick!(outs, Output::SubscriptionError { error, fatal, .. } => (error.code.clone(), *fatal))
}

fn verifies(outs: &[Output]) -> Vec<(String, u64, String)> {
    pick!(outs, Output::Verify { subscription_id, request, sql } => (subscription_id.clone(), *request, sql.clone()))
}

/// The §12.2 figures of a server-side table `(key, n, _seq)`.
fn figures(rows: &[(i64, i64, i64)]) -> Checksum {
    Checksum {
        count: rows.len() as u64,
        sum: rows.iter().map(|r| r.2 % CHECKSUM_MODULUS).sum(),
        max: rows.iter().map(|r| SeqId::new(r.2)).max(),
    }
}

#[test]
fn liveness_echo_keeps_a_healthy_idle_socket_for_ten_minutes_and_detects_a_dead_one() {
    let mut s = Sim::new(test_config());
    s.h.core.connect(0);
    s.establish();
    s.log.clear();
    // Ten healthy idle minutes: echoes go out, each answered; no alarm.
    s.run(600_000, &mut answers_echoes);
    let echoes = s
        .log
        .iter()
        .filter(
            |(_, o)| matches!(o, Output::SendText { text, .. } if text.contains(ECHO_ID_PREFIX)),
        )
        .count();
    assert!((70..=90).contains(&echoes), "{echoes} echoes in 10 min");
    assert!(s.h.core.is_connected());
    assert!(
        !s.log.iter().any(|(_, o)| matches!(
            o,
            Output::ConnectionError(_) | Output::CloseSocket { .. } | Output::StateChanged(_)
        )),
        "no false alarm on a healthy idle socket"
    );
    let echo: Value = s
        .log
        .iter()
        .rev()
        .find_map(|(_, o)| match o {
            Output::SendText { text, .. } if text.contains(ECHO_ID_PREFIX) => {
                Some(crate::core::json::parse(text).unwrap())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(echo["type"], "next_batch");
    assert_eq!(echo["last_seq_id"], 1, "an integer cursor, as §12.3");
    // The echo reply is not reported as an error; pings alone are never answered.
    // Now the path dies: nothing arrives any more.
    let died = s.h.now;
    s.log.clear();
    s.run(died + 20_000, &mut silent);
    let (at, _) = s
        .log
        .iter()
        .find(|(_, o)| {
            matches!(
                o,
                Output::StateChanged(ConnectionState::Reconnecting { .. })
            )
        })
        .expect("reconnecting within 20 s");
    assert!(at - died <= 12_000, "noticed after {} ms", at - died);
    assert!(s
        .log
        .iter()
        .any(|(_, o)| matches!(o, Output::CloseSocket { code: 4000, .. })));
    assert!(s
        .log
        .iter()
        .any(|(_, o)| matches!(o, Output::ConnectionError(e) if e.code == "TIMEOUT")));
    assert!(
        s.log
            .iter()
            .any(|(_, o)| matches!(o, Output::OpenSocket { .. })),
        "reconnects"
    );
}

#[test]
fn any_frame_counts_as_alive_and_a_page_hint_probes_at_once() {
    let mut s = Sim::new(test_config());
    let id = s.h.live("SELECT * FROM app.t");
    s.establish();
    s.h.text(&ack(&id, false, None));
    s.h.text(&batch(&id, 0, &[], false));
    s.drain();
    // A change every 3 s: never silent for 7 s, so no echo is needed.
    for k in 1..=20 {
        s.run(k * 3000, &mut silent);
        s.h.text(
            &json!({"type":"change","subscription_id":&id,"change_type":"insert",
                "rows":[{"id":k.to_string(),"n":0,"_seq":(100 + k).to_string()}]})
            .to_string(),
        );
        s.drain();
    }
    assert!(!s
        .log
        .iter()
        .any(|(_, o)| matches!(o, Output::SendText { text, .. } if text.contains(ECHO_ID_PREFIX))));
    assert!(s.h.core.is_connected());
    // visibilitychange: an echo right away (the page may have slept through a dead path).
    s.h.core.visible(s.h.now);
    let outs = s.drain();
    assert!(sent(&outs).iter().any(|v| v["type"] == "next_batch"
        && v["subscription_id"]
            .as_str()
            .unwrap()
            .starts_with(ECHO_ID_PREFIX)));
}

#[test]
fn an_error_after_the_ack_while_paging_is_retried_and_the_snapshot_completes() {
    let mut s = Sim::new(test_config());
    let id = s.h.subscribe(
        "SELECT * FROM app.t",
        SubscribeOptions {
            batch_size: Some(2),
            ..Default::default()
        },
        SubscriptionMode::Materialized,
    );
    s.establish();
    s.h.text(&ack(&id, true, Some(11)));
    s.h.text(&batch(&id, 0, &[(1, 0, 10), (2, 0, 11)], true));
    let outs = s.drain();
    assert_eq!(sent(&outs)[0]["type"], "next_batch");
    // The server fails the page.
    s.h.text(&json!({"type":"error","subscription_id":&id,"code":"BATCH_FETCH_FAILED","message":"Batch fetch failed: boom"}).to_string());
    let outs = s.drain();
    assert_eq!(
        sub_errors(&outs),
        [("BATCH_FETCH_FAILED".to_string(), false)]
    );
    assert!(
        deltas(&outs).iter().all(|d| d.loading),
        "the app sees nothing yet"
    );
    // Retried after a 1 s backoff: unsubscribe + subscribe again.
    let mut sent_frames = Vec::new();
    s.run(s.h.now + 999, &mut |_, o| sent_frames.extend(sent(o)));
    assert!(sent_frames.is_empty(), "{sent_frames:?}");
    s.run(s.h.now + 1, &mut |_, o| sent_frames.extend(sent(o)));
    let kinds: Vec<&str> = sent_frames
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unsubscribe", "subscribe"]);
    s.h.text(&ack(&id, true, Some(11)));
    s.h.text(&batch(&id, 0, &[(1, 0, 10), (2, 0, 11)], true));
    s.drain();
    s.h.text(&batch(&id, 1, &[(3, 0, 12)], false));
    let outs = s.drain();
    let d = deltas(&outs);
    assert_eq!(d.len(), 1);
    assert!(d[0].initial);
    assert_eq!(d[0].inserted.len(), 3, "the whole snapshot, once");
    assert_eq!(s.h.rows(&id).len(), 3);
}

#[test]
fn a_failed_resync_keeps_the_rows_and_a_refused_resubscribe_is_retried() {
    let mut s = Sim::new(test_config());
    let id = s.h.live("SELECT * FROM app.t");
    s.establish();
    s.h.text(&ack(&id, false, Some(11)));
    s.h.text(&batch(&id, 0, &[(1, 0, 10), (2, 0, 11)], false));
    s.drain();
    // Reconnect: the server still counts the dropped connection's subscriptions.
    s.h.close(1006, "");
    s.drain();
    s.run(s.h.now + 500, &mut silent);
    s.h.core.token_ready(s.h.now, "t".into());
    s.h.core.socket_opened(s.h.now, s.h.socket);
    s.h.text(r#"{"type":"auth_success","user":"a","role":"user"}"#);
    s.drain();
    s.h.text(&json!({"type":"error","subscription_id":&id,"code":"SUBSCRIPTION_LIMIT_EXCEEDED","message":"Maximum subscriptions reached"}).to_string());
    let outs = s.drain();
    assert_eq!(
        sub_errors(&outs),
        [("SUBSCRIPTION_LIMIT_EXCEEDED".to_string(), false)]
    );
    assert_eq!(s.h.rows(&id).len(), 2, "rows stay");
    let mut frames = Vec::new();
    s.run(s.h.now + 1000, &mut |_, o| frames.extend(sent(o)));
    assert!(frames.iter().any(|v| v["type"] == "subscribe"));
    // Accepted now; then an error while the resync snapshot is staging.
    s.h.text(&ack(&id, true, Some(11)));
    s.h.text(&json!({"type":"error","subscription_id":&id,"code":"SUBSCRIPTION_FAILED","message":"Subscription failed: x"}).to_string());
    let outs = s.drain();
    assert_eq!(
        sub_errors(&outs),
        [("SUBSCRIPTION_FAILED".to_string(), false)]
    );
    assert!(deltas(&outs).is_empty(), "no partial swap");
    // Second retry after 2 s; this time the resync completes as one delta.
    frames.clear();
    s.run(s.h.now + 2000, &mut |_, o| frames.extend(sent(o)));
    assert!(frames.iter().any(|v| v["type"] == "subscribe"));
    s.h.text(&ack(&id, false, Some(12)));
    s.h.text(&batch(&id, 0, &[(2, 1, 12)], false));
    let d = deltas(&s.drain());
    assert_eq!(d.len(), 1);
    assert!(d[0].resync);
    assert_eq!(d[0].removed, vec![key("1")]);
    assert_eq!(d[0].updated.len(), 1);
    assert!(d[0].inserted.is_empty());
}

#[test]
fn an_unanswered_next_batch_times_out_retries_with_backoff_then_fails_loudly() {
    let mut config = test_config();
    config.sub_max_retries = 2;
    config.liveness_idle_ms = 0;
    let mut s = Sim::new(config);
    let id = s.h.subscribe(
        "SELECT * FROM app.t",
        SubscribeOptions {
            batch_size: Some(1),
            ..Default::default()
        },
        SubscriptionMode::Materialized,
    );
    s.establish();
    // Every subscribe is acknowledged with a first page; every next_batch goes unanswered.
    let mut server = |h: &mut Harness, outs: &[Output]| {
        for v in sent(outs) {
            if v["type"] == "subscribe" {
                let id = v["subscription"]["id"].as_str().unwrap().to_string();
                h.text(&ack(&id, true, Some(10)));
                h.text(&batch(&id, 0, &[(1, 0, 10)], true));
            }
        }
    };
    s.h.text(&ack(&id, true, Some(10)));
    s.h.text(&batch(&id, 0, &[(1, 0, 10)], true));
    s.settle(&mut server);
    s.log.clear();
    let start = s.h.now;
    s.run(start + 120_000, &mut server);
    let errors: Vec<(u64, String, bool)> = s
        .log
        .iter()
        .filter_map(|(t, o)| match o {
            Output::SubscriptionError { error, fatal, .. } => {
                Some((*t - start, error.code.clone(), *fatal))
            }
            _ => None,
        })
        .collect();
    // 20 s deadline, retry after 1 s, 20 s deadline, retry after 2 s, 20 s deadline: fatal.
    assert_eq!(
        errors,
        [
            (20_000, "TIMEOUT".to_string(), false),
            (41_000, "TIMEOUT".to_string(), false),
            (63_000, "TIMEOUT".to_string(), true),
        ]
    );
    assert!(
        s.h.core.subscriptions().is_empty(),
        "gone after the fatal error"
    );
    assert!(s
        .log
        .iter()
        .any(|(_, o)| matches!(o, Output::SendText { text, .. } if text.contains("unsubscribe"))));
}

/// A live subscription on three rows, with bursts of 3 changes counting as a burst.
fn verifying_sim(options: SubscribeOptions) -> (Sim, String) {
    let mut config = test_config();
    config.verify.after_burst = 3;
    config.liveness_idle_ms = 0;
    let mut s = Sim::new(config);
    let id = s.h.subscribe(
        "SELECT * FROM app.t WHERE n >= 0",
        options,
        SubscriptionMode::Materialized,
    );
    s.establish();
    s.h.text(&ack(&id, false, Some(12)));
    s.h.text(&batch(&id, 0, &[(1, 0, 10), (2, 0, 11), (3, 0, 12)], false));
    s.drain();
    (s, id)
}

#[test]
fn a_burst_with_dropped_changes_is_detected_by_checksum_and_healed_by_one_resync() {
    let (mut s, id) = verifying_sim(SubscribeOptions::default());
    // Server truth after a burst: 1 and 2 updated, 3 updated and 4 inserted, 2 deleted;
    // the client only got the first two updates (the rest were dropped by the queue).
    let truth = [(1, 1, 20), (3, 1, 22), (4, 0, 23)];
    s.h.text(&update(&id, 1, 1, 20, 10));
    s.h.text(&update(&id, 2, 1, 21, 11));
    s.h.text(&update(&id, 1, 1, 20, 10)); // a replay also counts as traffic
    let outs = s.drain();
    assert_eq!(deltas(&outs).len(), 1);
    let mut asked = Vec::new();
    let mut answer = |h: &mut Harness, outs: &[Output]| {
        for (sub, request, sql) in verifies(outs) {
            asked.push((h.now, sql.clone()));
            h.core
                .verify_result(h.now, &sub, request, Ok(figures(&truth)));
        }
        for v in sent(outs) {
            if v["type"] == "subscribe" {
                let sid = v["subscription"]["id"].as_str().unwrap().to_string();
                h.text(&ack(&sid, false, Some(23)));
                h.text(&batch(&sid, 0, &truth, false));
            }
        }
    };
    let burst_end = s.h.now;
    s.log.clear();
    s.run(burst_end + 5_000, &mut answer);
    // Checked 500 ms after the burst, confirmed 1 s later, then healed.
    let times: Vec<u64> = asked.iter().map(|(t, _)| t - burst_end).collect();
    assert_eq!(times, [500, 1500]);
    assert_eq!(
        asked[0].1,
        "SELECT COUNT(*) AS c, SUM(_seq % 1000003) AS s, MAX(_seq) AS m FROM app.t WHERE n >= 0"
    );
    let d: Vec<RowsDelta> = s
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Rows { delta, .. } => Some(delta.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(d.len(), 1, "one delta for the heal");
    assert!(d[0].resync && !d[0].initial);
    assert_eq!(d[0].removed, vec![key("2")]);
    let updated: Vec<&RowKey> = d[0].updated.iter().map(|r| &r.key).collect();
    assert_eq!(updated, [&key("3")], "row 1 was right: not reported");
    assert_eq!(d[0].inserted.len(), 1);
    let frames: Vec<Value> = pick!(s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>(), Output::SendText { text, .. } => crate::core::json::parse(text).unwrap());
    let kinds: Vec<&str> = frames.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["unsubscribe", "subscribe"]);
    assert!(s
        .log
        .iter()
        .all(|(_, o)| !matches!(o, Output::SubscriptionError { .. })));
    let held: Vec<(String, i64)> =
        s.h.rows(&id)
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["n"].as_i64().unwrap(),
                )
            })
            .collect();
    assert_eq!(held, [("1".into(), 1), ("3".into(), 1), ("4".into(), 0)]);
}

#[test]
fn a_single_mismatch_is_confirmed_before_healing_and_matches_keep_the_periodic_pace() {
    let (mut s, id) = verifying_sim(SubscribeOptions::default());
    let mut truth = vec![(1, 0, 10), (2, 0, 11), (3, 0, 12)];
    let mut asked = Vec::new();
    // The first answer sees a change that reaches the socket just after it.
    let mut first = true;
    let start = s.h.now;
    let mut server = |h: &mut Harness, outs: &[Output]| {
        for (sub, request, _) in verifies(outs) {
            asked.push(h.now - start);
            if first {
                first = false;
                truth.push((4, 0, 30));
                h.core
                    .verify_result(h.now, &sub, request, Ok(figures(&truth)));
                h.text(
                    &json!({"type":"change","subscription_id":sub,"change_type":"insert",
                    "rows":[{"id":"4","n":0,"_seq":"30"}]})
                    .to_string(),
                );
            } else {
                h.core
                    .verify_result(h.now, &sub, request, Ok(figures(&truth)));
            }
        }
        assert!(
            sent(outs).iter().all(|v| v["type"] != "subscribe"),
            "no resync"
        );
    };
    s.run(start + 95_000, &mut server);
    // Periodic (30 s), one confirming re-check (+1 s) that matches, then every 30 s.
    assert_eq!(asked, [30_000, 31_000, 61_000, 91_000]);
    assert_eq!(s.h.rows(&id).len(), 4);
}

#[test]
fn verification_shapes_last_rows_floors_limit_max_and_switches_off() {
    // lastRows: only rows from the oldest held one on.
    let (mut s, _) = verifying_sim(SubscribeOptions {
        last_rows: Some(3),
        ..Default::default()
    });
    s.run(30_000 + s.h.now, &mut silent);
    let q = verifies(&s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>());
    assert_eq!(q.len(), 1);
    assert!(
        q[0].2.ends_with("WHERE (n >= 0\n) AND _seq >= 10"),
        "{}",
        q[0].2
    );

    // A `from` set: only rows written after `from`.
    let (mut s, _) = verifying_sim(SubscribeOptions {
        from: Some(SeqId::new(5)),
        ..Default::default()
    });
    s.run(30_000 + s.h.now, &mut silent);
    let q = verifies(&s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>());
    assert!(q[0].2.ends_with("AND _seq >= 6"), "{}", q[0].2);

    // A full `limit` set: only MAX(_seq) must agree (the table holds more rows).
    let (mut s, id) = verifying_sim(SubscribeOptions {
        limit: Some(3),
        ..Default::default()
    });
    let mut server = |h: &mut Harness, outs: &[Output]| {
        for (sub, request, _) in verifies(outs) {
            let many = Checksum {
                count: 50,
                sum: 12345,
                max: Some(SeqId::new(12)),
            };
            h.core.verify_result(h.now, &sub, request, Ok(many));
        }
        assert!(
            sent(outs).iter().all(|v| v["type"] != "subscribe"),
            "no resync"
        );
    };
    let t = s.h.now;
    s.run(t + 65_000, &mut server);
    assert_eq!(s.h.rows(&id).len(), 3);
    // Below its limit after a delete, while the table still holds more rows: still only
    // the newest `_seq` (a full compare would resync for nothing at every check).
    s.h.text(
        &json!({"type":"change","subscription_id":&id,"change_type":"delete",
            "old_values":[{"id":"1","n":0,"_seq":"40"}]})
        .to_string(),
    );
    s.drain();
    let mut server = |h: &mut Harness, outs: &[Output]| {
        for (sub, request, _) in verifies(outs) {
            let many = Checksum {
                count: 49,
                sum: 999,
                max: Some(SeqId::new(12)),
            };
            h.core.verify_result(h.now, &sub, request, Ok(many));
        }
        assert!(
            sent(outs).iter().all(|v| v["type"] != "subscribe"),
            "no resync"
        );
    };
    let t = s.h.now;
    s.run(t + 65_000, &mut server);
    assert_eq!(s.h.rows(&id).len(), 2);

    // A failing checksum query is reported once (not fatal) and retried later.
    let (mut s, _) = verifying_sim(SubscribeOptions::default());
    let mut server = |h: &mut Harness, outs: &[Output]| {
        for (sub, request, _) in verifies(outs) {
            h.core.verify_result(
                h.now,
                &sub,
                request,
                Err(KalamError::new("SQL_EXECUTION_ERROR", "no %")),
            );
        }
    };
    let t = s.h.now;
    s.run(t + 200_000, &mut server);
    let errs = sub_errors(&s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>());
    assert_eq!(errs, [("SQL_EXECUTION_ERROR".to_string(), false)]);
    assert!(verifies(&s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>()).len() >= 2);

    // verify: false on the subscription, or off in the config: never a query.
    let (mut s, _) = verifying_sim(SubscribeOptions {
        verify: Some(false),
        ..Default::default()
    });
    let t = s.h.now;
    s.run(t + 120_000, &mut silent);
    assert!(verifies(&s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>()).is_empty());
    let mut config = test_config();
    config.verify.enabled = false;
    let mut s = Sim::new(config);
    let id = s.h.live("SELECT * FROM app.t");
    s.establish();
    s.h.text(&ack(&id, false, None));
    s.h.text(&batch(&id, 0, &[], false));
    s.run(120_000, &mut answers_echoes);
    assert!(verifies(&s.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>()).is_empty());
}

#[test]
fn a_late_liveness_timer_gets_one_more_look_before_declaring_the_socket_dead() {
    let mut s = Sim::new(test_config());
    s.h.core.connect(0);
    s.establish();
    // Run until the first echo is out, unanswered.
    s.run(7_000, &mut silent);
    let deadline = s.armed[&TimerId::Liveness];
    assert_eq!(deadline, 12_000);
    // The main thread was blocked: the deadline timer fires 3 s late, before the answer
    // (already in the socket's queue) is processed.
    s.armed.remove(&TimerId::Liveness);
    s.h.now = deadline + 3_000;
    s.h.core.timer_fired(s.h.now, TimerId::Liveness);
    let outs = s.drain();
    assert!(
        !outs.iter().any(|o| matches!(o, Output::CloseSocket { .. })),
        "{outs:?}"
    );
    let sent_so_far: Vec<Output> = s.log.iter().map(|(_, o)| o.clone()).collect();
    answers_echoes(&mut s.h, &sent_so_far);
    s.drain();
    s.run(s.h.now + 60_000, &mut answers_echoes);
    assert!(s.h.core.is_connected());
    // Late again and still nothing: dead after the one extra second.
    let mut s = Sim::new(test_config());
    s.h.core.connect(0);
    s.establish();
    s.run(7_000, &mut silent);
    s.armed.remove(&TimerId::Liveness);
    s.h.now = 15_000;
    s.h.core.timer_fired(s.h.now, TimerId::Liveness);
    s.drain();
    s.run(16_000, &mut silent);
    assert!(!s.h.core.is_connected());
    assert!(s
        .log
        .iter()
        .any(|(t, o)| *t == 16_000 && matches!(o, Output::CloseSocket { code: 4000, .. })));
}

#[test]
fn a_burst_checks_every_subscription_on_the_socket_staggered() {
    let (mut s, a) = verifying_sim(SubscribeOptions::default());
    // A second subscription that got none of the burst (its changes may all have been dropped).
    let b = s.h.live("SELECT * FROM app.other");
    s.drain();
    s.h.text(&ack(&b, false, None));
    s.h.text(&batch(&b, 0, &[], false));
    s.drain();
    for k in 0..3 {
        s.h.text(&update(&a, 1, k + 1, 20 + k, 19 + k));
    }
    s.drain();
    let start = s.h.now;
    let mut asked = Vec::new();
    s.run(start + 2_000, &mut |h, outs| {
        for (sub, request, sql) in verifies(outs) {
            asked.push((h.now - start, sub.clone(), sql.contains("app.other")));
            let figures = if sub == a {
                figures(&[(1, 3, 22), (2, 0, 11), (3, 0, 12)])
            } else {
                Checksum::default()
            };
            h.core.verify_result(h.now, &sub, request, Ok(figures));
        }
    });
    assert_eq!(asked, [(500, a.clone(), false), (525, b.clone(), true)]);
}
