//! Replays of the recorded KalamDB conversations (shared/kalamdb-wire) through LiveCore:
//! paging, updates and tombstones, resync after a reconnect, events resume, projections and
//! errors, the limits recording, an auth failure.

use super::*;

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
        json!({"type":"subscribe","subscription":{"id":&id,"sql":PAGING_SQL,"options":{"batch_size":2}}})
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
        json!({"type":"initial_data_batch","subscription_id":&id,"rows":rows,
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
        [json!({"type":"next_batch","subscription_id":&id,"last_seq_id":383266664157646848_i64})]
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
        &json!({"type":"change","subscription_id":&id,"change_type":"insert","rows":[p4]})
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
    h.text(&json!({"type":"subscription_ack","subscription_id":&id,"total_rows":0,
        "batch_control":{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":383266700000000000_i64},
        "schema":[]}).to_string());
    h.text(&json!({"type":"initial_data_batch","subscription_id":&id,"rows":[old.clone(), fresh],
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
            json!({"type":"subscribe","subscription":{"id":&proj,"sql":"SELECT body FROM wire445072.inbox WHERE room = 'paging'","options":{"batch_size":999,"last_rows":2}}})
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
