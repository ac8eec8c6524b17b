//! Fake-clock tests of the row-cap check (issue 15, `connection/cap.rs`): a server that cuts
//! every query at `max_query_limit` rows and reports `has_more: false` (PROTOCOL.md §9.3),
//! played by [`CapServer`] with the paging rules of the test server.

use std::collections::HashMap;

use super::*;
use crate::core::error::KalamError;
use crate::core::live::verify::{Checksum, CHECKSUM_MODULUS};

const SQL: &str = "SELECT * FROM app.items";
const COUNT_SQL: &str =
    "SELECT COUNT(*) AS c, SUM(_seq % 1000003) AS s, MAX(_seq) AS m FROM app.items";

/// How the server answers `Output::Verify` (the row count and the checksums).
enum Answer {
    Truth,
    Fail,
    Silent,
}

/// One table `(id, n, _seq)` in `_seq` order behind a socket and HTTP SQL; every query is
/// cut at `cap` rows. Snapshots are `ORDER BY _seq LIMIT min(batch_size + 1, cap)`, with
/// `has_more` = more than `batch_size` came back, as the test server and a real one do.
struct CapServer {
    table: Vec<(i64, i64, i64)>,
    cap: usize,
    /// `batch_size` of every `subscribe`, in order.
    subscribes: Vec<u64>,
    /// SQL of every `Output::Verify`, in order.
    queries: Vec<String>,
    /// Batch size of each subscription that is paging.
    paging: HashMap<String, usize>,
    /// Written after the snapshot and before the next query runs (their change frames
    /// would come later: the subscription is replaced before).
    pending_inserts: Vec<(i64, i64, i64)>,
    answer: Answer,
    /// Everything drained, in order.
    log: Vec<Output>,
}

fn rows(n: i64) -> Vec<(i64, i64, i64)> {
    (1..=n).map(|i| (i, i, 1000 + i)).collect()
}

fn figures(table: &[(i64, i64, i64)]) -> Checksum {
    Checksum {
        count: table.len() as u64,
        sum: table.iter().map(|r| r.2 % CHECKSUM_MODULUS).sum(),
        max: table.iter().map(|r| SeqId::new(r.2)).max(),
    }
}

impl CapServer {
    fn new(table: Vec<(i64, i64, i64)>, cap: usize) -> CapServer {
        CapServer {
            table,
            cap,
            subscribes: Vec::new(),
            queries: Vec::new(),
            paging: HashMap::new(),
            pending_inserts: Vec::new(),
            answer: Answer::Truth,
            log: Vec::new(),
        }
    }

    /// A page after `after`: `(rows, has_more)`.
    fn page(&self, after: Option<i64>, batch: usize) -> (Vec<(i64, i64, i64)>, bool) {
        let mut page: Vec<_> = self
            .table
            .iter()
            .filter(|r| after.is_none_or(|a| r.2 > a))
            .take((batch + 1).min(self.cap))
            .copied()
            .collect();
        let more = page.len() > batch;
        page.truncate(batch);
        (page, more)
    }

    fn batch_frame(id: &str, num: u32, page: &[(i64, i64, i64)], more: bool) -> Value {
        let rows: Vec<Value> = page
            .iter()
            .map(|(k, n, s)| json!({"id": k.to_string(), "n": *n, "_seq": s.to_string()}))
            .collect();
        json!({"type":"initial_data_batch","subscription_id":id,"rows":rows,
            "batch_control":{"batch_num":num,"has_more":more,
                "status":if more {"loading_batch"} else {"ready"},"last_seq_id":page.last().map(|r| r.2)}})
    }

    /// Answers every frame and query in `outs`, then whatever that leads to, until quiet.
    fn serve(&mut self, h: &mut Harness, outs: Vec<Output>) {
        let mut outs = outs;
        while !outs.is_empty() {
            for out in &outs {
                match out {
                    Output::SendText { text, .. } => self.on_frame(h, text),
                    Output::Verify {
                        subscription_id,
                        request,
                        sql,
                    } => {
                        self.queries.push(sql.clone());
                        self.table.append(&mut self.pending_inserts);
                        let result = match self.answer {
                            Answer::Truth => Ok(figures(&self.table)),
                            Answer::Fail => {
                                Err(KalamError::new("RATE_LIMIT_EXCEEDED", "Too many queries")
                                    .retryable(true))
                            }
                            Answer::Silent => continue,
                        };
                        h.core
                            .verify_result(h.now, subscription_id, *request, result);
                    }
                    _ => {}
                }
            }
            self.log.extend(outs);
            outs = h.drain();
        }
    }

    fn on_frame(&mut self, h: &mut Harness, text: &str) {
        let frame: Value = crate::core::json::parse(text).unwrap();
        match frame["type"].as_str().unwrap() {
            "subscribe" => {
                let id = frame["subscription"]["id"].as_str().unwrap().to_string();
                let batch = frame["subscription"]["options"]["batch_size"]
                    .as_u64()
                    .unwrap();
                self.subscribes.push(batch);
                let from = frame["subscription"]["options"]["from"].as_i64();
                let (page, more) = self.page(from, batch as usize);
                h.text(&json!({"type":"subscription_ack","subscription_id":&id,"total_rows":0,
                    "batch_control":{"batch_num":0,"has_more":more,"status":if more {"loading"} else {"ready"},
                        "last_seq_id":page.last().map(|r| r.2)},
                    "schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]},
                              {"name":"n","data_type":"Int","index":1}]})
                .to_string());
                h.text(&Self::batch_frame(&id, 0, &page, more).to_string());
                if more {
                    self.paging.insert(id, batch as usize);
                }
            }
            "next_batch" => {
                let id = frame["subscription_id"].as_str().unwrap().to_string();
                let Some(&batch) = self.paging.get(&id) else {
                    return; // a liveness echo
                };
                let (page, more) = self.page(frame["last_seq_id"].as_i64(), batch);
                h.text(&Self::batch_frame(&id, 1, &page, more).to_string());
                if !more {
                    self.paging.remove(&id);
                }
            }
            "unsubscribe" => {
                self.paging
                    .remove(frame["subscription_id"].as_str().unwrap());
            }
            _ => {}
        }
    }

    /// Answers the frames in `outs` only (their counts are left to the test).
    fn frames(&mut self, h: &mut Harness, outs: &[Output]) {
        for out in outs {
            if let Output::SendText { text, .. } = out {
                self.on_frame(h, text);
            }
        }
    }

    /// Answers one count with the table as it is.
    fn answer_count(&mut self, h: &mut Harness, (id, request, sql): &(String, u64, String)) {
        self.queries.push(sql.clone());
        h.core
            .verify_result(h.now, id, *request, Ok(figures(&self.table)));
    }

    /// Moves the clock on and fires the subscription timer (checks, step deadlines).
    fn advance(&mut self, h: &mut Harness, ms: u64) {
        h.now += ms;
        h.core.timer_fired(h.now, TimerId::Subs);
        let outs = h.drain();
        self.serve(h, outs);
    }

    /// Takes the log.
    fn take_log(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.log)
    }
}

fn cap_config() -> LiveConfig {
    LiveConfig {
        check_row_cap: true,
        ..test_config()
    }
}

fn sub_errors(outs: &[Output]) -> Vec<(String, bool)> {
    pick!(outs, Output::SubscriptionError { error, fatal, .. } => (error.code.clone(), *fatal))
}

/// The counts (`Output::Verify`) in `outs`: `(subscription, request, sql)`.
fn counts(outs: &[Output]) -> Vec<(String, u64, String)> {
    pick!(outs, Output::Verify { subscription_id, request, sql } => (subscription_id.clone(), *request, sql.clone()))
}

fn frame_types(outs: &[Output]) -> Vec<String> {
    sent(outs)
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_string())
        .collect()
}

fn ids(delta: &RowsDelta) -> Vec<i64> {
    delta
        .inserted
        .iter()
        .map(|r| r.row["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Subscribes `sql` on an established harness and serves it until quiet.
fn live_on(h: &mut Harness, server: &mut CapServer, options: SubscribeOptions) -> String {
    let id = h.subscribe(SQL, options, SubscriptionMode::Materialized);
    let outs = h.drain();
    server.serve(h, outs);
    id
}

/// A first subscription with the defaults over `server`, on a fresh harness.
fn first_live(config: LiveConfig, server: &mut CapServer) -> (Harness, String) {
    let mut h = Harness::new(config);
    let id = h.live(SQL);
    let outs = h.establish();
    server.serve(&mut h, outs);
    (h, id)
}

#[test]
fn a_snapshot_cut_by_the_servers_row_cap_is_counted_probed_and_loaded_in_full() {
    // Verification off: the check is about correctness and runs anyway.
    let mut config = cap_config();
    config.verify.enabled = false;
    let mut server = CapServer::new(rows(250), 100);
    let (h, id) = first_live(config, &mut server);
    // 999 is cut at 100 rows (has_more: false); one count shows 250; the probe with 100 is
    // cut again: the cap is 100, and 99 pages (a batch of 100 would say has_more: false).
    assert_eq!(server.subscribes, [999, 100, 99]);
    assert_eq!(server.queries, [COUNT_SQL]);
    let log = server.take_log();
    let d = deltas(&log);
    assert_eq!(d.len(), 1, "the app hears of the snapshot once, complete");
    assert!(d[0].initial);
    assert_eq!(ids(&d[0]), (1..=250).collect::<Vec<_>>());
    assert_eq!(h.rows(&id).len(), 250);
    assert!(sub_errors(&log).is_empty());
    let unsubscribes = sent(&log)
        .iter()
        .filter(|f| f["type"] == "unsubscribe")
        .count();
    assert_eq!(unsubscribes, 2, "each resubscribe replaces the cut one");
}

#[test]
fn the_found_cap_holds_for_later_subscriptions_healing_resyncs_and_reconnects() {
    let mut server = CapServer::new(rows(250), 100);
    let (mut h, first) = first_live(cap_config(), &mut server);
    assert_eq!(server.subscribes, [999, 100, 99]);
    server.take_log();

    // A second subscription pages below the cap at once, and is not counted.
    let second = live_on(&mut h, &mut server, SubscribeOptions::default());
    assert_eq!(server.subscribes[3..], [99]);
    assert_eq!(server.queries.len(), 1);
    let d = deltas(&server.take_log());
    assert_eq!(ids(&d[0]).len(), 250);

    // A delete whose notification was dropped: the periodic checks disagree twice and
    // heal both subscriptions with resyncs, which page below the cap too.
    server.table.retain(|r| r.0 != 7);
    server.advance(&mut h, 30_000);
    server.advance(&mut h, 1_000);
    assert_eq!(server.subscribes[4..], [99, 99]);
    assert_eq!(server.queries.len(), 1 + 4, "two checks each, no row count");
    let log = server.take_log();
    let d = deltas(&log);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|d| d.resync && d.removed.len() == 1));
    assert_eq!(h.rows(&first).len(), 249);
    assert_eq!(h.rows(&second).len(), 249);

    // A reconnect resyncs both with the cap as well.
    h.close(1006, "gone");
    let outs = h.drain();
    let delays: Vec<u64> =
        pick!(outs, Output::SetTimer { id: TimerId::Reconnect, delay_ms } => *delay_ms);
    let delay = delays[0];
    h.now += delay;
    h.core.timer_fired(h.now, TimerId::Reconnect);
    let outs = h.establish();
    server.serve(&mut h, outs);
    assert_eq!(server.subscribes[6..], [99, 99]);
    assert_eq!(server.queries.len(), 5);
}

#[test]
fn rows_inserted_between_the_snapshot_and_its_count_are_not_taken_for_a_cap() {
    let mut server = CapServer::new(rows(5), 1000);
    server.pending_inserts = vec![(6, 6, 1006)];
    let (mut h, id) = first_live(cap_config(), &mut server);
    // The count says 6 > 5; the probe with batch_size 5 pages (has_more: true): no cap.
    assert_eq!(server.subscribes, [999, 5]);
    let d = deltas(&server.take_log());
    assert_eq!(d.len(), 1);
    assert_eq!(ids(&d[0]), [1, 2, 3, 4, 5, 6]);
    assert_eq!(h.rows(&id).len(), 6);
    // Nothing was learned but that 5 fits: the next snapshot asks for 999, and is counted.
    live_on(&mut h, &mut server, SubscribeOptions::default());
    assert_eq!(server.subscribes[2..], [999]);
    assert_eq!(server.queries.len(), 2);
}

#[test]
fn a_multi_batch_snapshot_is_not_counted_and_proves_its_batch_size_for_later_ones() {
    let mut server = CapServer::new(rows(1500), 1000);
    // The count that went out with the subscribe fails: a paged snapshot ignores it, and
    // does not report it.
    server.answer = Answer::Fail;
    let (mut h, _) = first_live(cap_config(), &mut server);
    assert_eq!(server.subscribes, [999]);
    assert_eq!(server.queries, [COUNT_SQL], "sent with the subscribe");
    let log = server.take_log();
    assert!(
        sub_errors(&log).is_empty(),
        "has_more: true proves 999 fits"
    );
    let d = deltas(&log);
    assert_eq!(d.len(), 1);
    assert_eq!(ids(&d[0]).len(), 1500);
    // A later one-batch snapshot with a batch size up to 999 cannot have been cut: no
    // count goes out with its subscribe.
    server.table.truncate(10);
    let id = live_on(&mut h, &mut server, SubscribeOptions::default());
    assert_eq!(server.queries.len(), 1);
    let d = deltas(&server.take_log());
    assert_eq!(ids(&d[0]).len(), 10);
    assert_eq!(h.rows(&id).len(), 10);
}

#[test]
fn one_batch_snapshots_are_counted_only_where_they_can_be_cut() {
    // A batch that fills batch_size with has_more: false is cut when the cap equals it.
    let mut server = CapServer::new(rows(25), 10);
    let mut h = Harness::new(cap_config());
    let sized = SubscribeOptions {
        batch_size: Some(10),
        ..Default::default()
    };
    let id = h.subscribe(SQL, sized, SubscriptionMode::Materialized);
    let outs = h.establish();
    server.serve(&mut h, outs);
    assert_eq!(server.subscribes, [10, 10, 9]);
    assert_eq!(server.queries, [COUNT_SQL]);
    assert_eq!(h.rows(&id).len(), 25);

    // An uncut one-batch snapshot: one count, then it completes.
    let mut server = CapServer::new(rows(3), 1000);
    let (h, id) = first_live(cap_config(), &mut server);
    assert_eq!((server.subscribes.len(), server.queries.len()), (1, 1));
    assert_eq!(ids(&deltas(&server.take_log())[0]), [1, 2, 3]);
    assert_eq!(h.rows(&id).len(), 3);

    // Not counted: liveEvents() batches (they reach the app as they come), lastRows (one
    // batch by definition), a shell without SQL (check_row_cap off). An empty snapshot
    // (no cap cuts to nothing; rows inserted meanwhile arrive as changes): its count went
    // out with the subscribe, and its answer (1 > 0 rows) is ignored.
    for (mode, options, config, table, counts) in [
        (
            SubscriptionMode::Events,
            SubscribeOptions::default(),
            cap_config(),
            3,
            0,
        ),
        (
            SubscriptionMode::Materialized,
            SubscribeOptions {
                last_rows: Some(2),
                ..Default::default()
            },
            cap_config(),
            3,
            0,
        ),
        (
            SubscriptionMode::Materialized,
            SubscribeOptions::default(),
            test_config(),
            3,
            0,
        ),
        (
            SubscriptionMode::Materialized,
            SubscribeOptions::default(),
            cap_config(),
            0,
            1,
        ),
    ] {
        let mut server = CapServer::new(rows(table), 1);
        server.pending_inserts = vec![(9, 9, 1009)];
        let mut h = Harness::new(config);
        h.subscribe(SQL, options, mode);
        let outs = h.establish();
        server.serve(&mut h, outs);
        assert_eq!(server.subscribes.len(), 1);
        assert_eq!(server.queries.len(), counts, "{mode:?}");
        let log = server.take_log();
        assert!(sub_errors(&log).is_empty());
        if mode == SubscriptionMode::Materialized {
            assert_eq!(deltas(&log).len(), 1, "completed at once");
        }
    }
}

#[test]
fn a_count_that_fails_or_gets_no_answer_completes_the_snapshot_and_says_so() {
    let mut server = CapServer::new(rows(4), 1000);
    server.answer = Answer::Fail;
    let (_, _) = first_live(cap_config(), &mut server);
    let log = server.take_log();
    assert_eq!(ids(&deltas(&log)[0]), [1, 2, 3, 4]);
    assert_eq!(
        sub_errors(&log),
        [("RATE_LIMIT_EXCEEDED".to_string(), false)]
    );
    assert_eq!(server.subscribes.len(), 1, "no retry");

    // No answer: the snapshot step deadline (20 s) completes it, with a TIMEOUT.
    let mut server = CapServer::new(rows(4), 1000);
    server.answer = Answer::Silent;
    let mut h = Harness::new(cap_config());
    // A `from` snapshot is counted from `from` on.
    let from = SubscribeOptions {
        from: Some(SeqId::new(1001)),
        ..Default::default()
    };
    h.subscribe(SQL, from, SubscriptionMode::Materialized);
    let outs = h.establish();
    server.serve(&mut h, outs);
    assert_eq!(server.queries, [format!("{COUNT_SQL}\nWHERE _seq >= 1002")]);
    assert!(deltas(&server.take_log()).is_empty(), "held for the count");
    server.advance(&mut h, 19_999);
    assert!(deltas(&server.take_log()).is_empty());
    server.advance(&mut h, 1);
    let log = server.take_log();
    assert_eq!(ids(&deltas(&log)[0]), [2, 3, 4], "rows after `from`");
    assert_eq!(sub_errors(&log), [("TIMEOUT".to_string(), false)]);
    assert_eq!(server.subscribes.len(), 1);
}

#[test]
fn the_count_goes_out_with_the_subscribe_and_a_snapshot_it_already_covers_completes_at_once() {
    let mut server = CapServer::new(rows(3), 1000);
    let mut h = Harness::new(cap_config());
    let id = h.live(SQL);
    let outs = h.establish();
    let c = counts(&outs);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].0.as_str(), c[0].2.as_str()), (id.as_str(), COUNT_SQL));
    let subscribe = outs
        .iter()
        .position(|o| matches!(o, Output::SendText { text, .. } if text.contains(r#""type":"subscribe""#)))
        .unwrap();
    assert!(
        matches!(outs[subscribe + 1], Output::Verify { .. }),
        "right after the subscribe: {outs:?}"
    );
    // Answered (3 rows) before the snapshot arrives: the drain that handles the snapshot
    // completes it, with no request of its own.
    server.answer_count(&mut h, &c[0]);
    assert!(deltas(&h.drain()).is_empty());
    server.frames(&mut h, &outs);
    let done = h.drain();
    let d = deltas(&done);
    assert_eq!(d.len(), 1);
    assert!(d[0].initial);
    assert_eq!(ids(&d[0]), [1, 2, 3]);
    assert!(
        counts(&done).is_empty() && sent(&done).is_empty(),
        "{done:?}"
    );
    assert!(sub_errors(&done).is_empty());
    assert_eq!(server.subscribes, [999]);
    assert_eq!(h.rows(&id).len(), 3);
}

#[test]
fn a_one_batch_snapshot_whose_count_is_in_flight_completes_when_it_answers() {
    let mut server = CapServer::new(rows(3), 1000);
    let mut h = Harness::new(cap_config());
    let id = h.live(SQL);
    let outs = h.establish();
    let c = counts(&outs);
    server.frames(&mut h, &outs);
    let held = h.drain();
    assert!(deltas(&held).is_empty(), "held for the count");
    assert!(
        counts(&held).is_empty(),
        "the count in flight is not asked again"
    );
    assert!(sent(&held).is_empty());
    server.answer_count(&mut h, &c[0]);
    let done = h.drain();
    assert_eq!(ids(&deltas(&done)[0]), [1, 2, 3]);
    assert!(counts(&done).is_empty() && sent(&done).is_empty());
    assert_eq!(h.rows(&id).len(), 3);
}

#[test]
fn a_count_above_the_snapshot_probes_even_when_it_answered_first() {
    let mut server = CapServer::new(rows(250), 100);
    let mut h = Harness::new(cap_config());
    let id = h.live(SQL);
    let outs = h.establish();
    let c = counts(&outs);
    server.answer_count(&mut h, &c[0]);
    server.frames(&mut h, &outs);
    let probe = h.drain();
    // 250 > 100 rows is not trusted as the cap: subscribed again with batch_size 100 at
    // once, and that probe is not counted (cut again, it is the cap).
    assert_eq!(frame_types(&probe), ["unsubscribe", "subscribe"]);
    assert_eq!(
        sent(&probe)[1]["subscription"]["options"]["batch_size"].as_u64(),
        Some(100)
    );
    assert!(counts(&probe).is_empty());
    assert!(deltas(&probe).is_empty());
    server.serve(&mut h, probe);
    assert_eq!(server.subscribes, [999, 100, 99]);
    assert_eq!(server.queries.len(), 1);
    let d = deltas(&server.take_log());
    assert_eq!(d.len(), 1);
    assert_eq!(ids(&d[0]), (1..=250).collect::<Vec<_>>());
    assert_eq!(h.rows(&id).len(), 250);
}

#[test]
fn a_paged_snapshot_ignores_its_count_answered_before_or_after_it() {
    for early in [true, false] {
        let mut server = CapServer::new(rows(1500), 1000);
        let mut h = Harness::new(cap_config());
        let id = h.live(SQL);
        let outs = h.establish();
        let c = counts(&outs);
        assert_eq!(c.len(), 1);
        let (sub, request) = (c[0].0.clone(), c[0].1);
        if early {
            // A failed count is not reported for a snapshot that pages.
            let error = KalamError::new("RATE_LIMIT_EXCEEDED", "Too many queries");
            h.core.verify_result(h.now, &sub, request, Err(error));
        }
        server.frames(&mut h, &outs);
        let more = h.drain();
        server.serve(&mut h, more);
        if !early {
            // Far more rows than the last batch held: taken for a cut, this would probe.
            let count = Checksum {
                count: 99_999,
                ..Checksum::default()
            };
            h.core.verify_result(h.now, &sub, request, Ok(count));
            let more = h.drain();
            server.serve(&mut h, more);
        }
        let log = server.take_log();
        assert!(sub_errors(&log).is_empty(), "early: {early}");
        assert_eq!(server.subscribes, [999]);
        assert!(!frame_types(&log).iter().any(|t| t == "unsubscribe"));
        let d = deltas(&log);
        assert_eq!(d.len(), 1);
        assert_eq!(ids(&d[0]).len(), 1500);
        assert_eq!(h.rows(&id).len(), 1500);
    }
}

#[test]
fn a_count_of_an_earlier_subscribe_is_never_used_for_the_next_one() {
    let mut server = CapServer::new(rows(250), 100);
    let mut h = Harness::new(cap_config());
    let id = h.live(SQL);
    let first = counts(&h.establish());
    // The subscribe gets no answer: after the step deadline it is retried (1 s backoff),
    // with a count of its own.
    h.now += 20_000;
    h.core.timer_fired(h.now, TimerId::Subs);
    assert_eq!(sub_errors(&h.drain()), [("TIMEOUT".to_string(), false)]);
    h.now += 1_000;
    h.core.timer_fired(h.now, TimerId::Subs);
    let outs = h.drain();
    assert_eq!(frame_types(&outs), ["unsubscribe", "subscribe"]);
    let second = counts(&outs);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].1, first[0].1);
    // The first count answers late with 0 rows (the table was empty then): if it were
    // taken for the new snapshot, the 100 rows of the cut one would be complete.
    h.core
        .verify_result(h.now, &first[0].0, first[0].1, Ok(Checksum::default()));
    server.frames(&mut h, &outs);
    assert!(deltas(&h.drain()).is_empty(), "waits for its own count");
    server.answer_count(&mut h, &second[0]);
    let outs = h.drain();
    server.serve(&mut h, outs);
    assert_eq!(server.subscribes, [999, 100, 99]);
    assert_eq!(h.rows(&id).len(), 250);
    assert_eq!(ids(&deltas(&server.take_log())[0]).len(), 250);
}

#[test]
fn a_subscribe_that_waits_for_the_send_budget_is_counted_after_its_snapshot() {
    // Counts follow their subscribes' pace, not all at once when many are subscribed.
    let mut config = cap_config();
    config.send_budget = 2;
    let mut server = CapServer::new(rows(3), 1000);
    let mut h = Harness::new(config);
    let a = h.live(SQL);
    let b = h.live(SQL);
    let outs = h.establish();
    assert_eq!(frame_types(&outs), ["authenticate", "subscribe"]);
    let c = counts(&outs);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, a);
    server.serve(&mut h, outs);
    assert_eq!(h.rows(&a).len(), 3);
    server.take_log();
    h.now += 1_100;
    h.core.timer_fired(h.now, TimerId::Throttle);
    let outs = h.drain();
    assert_eq!(frame_types(&outs), ["subscribe"]);
    assert!(counts(&outs).is_empty());
    server.frames(&mut h, &outs);
    let held = h.drain();
    assert!(deltas(&held).is_empty(), "held for its count");
    let c = counts(&held);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, b);
    server.serve(&mut h, held);
    assert_eq!(server.queries.len(), 2);
    assert_eq!(ids(&deltas(&server.take_log())[0]), [1, 2, 3]);
    assert_eq!(h.rows(&b).len(), 3);
}
