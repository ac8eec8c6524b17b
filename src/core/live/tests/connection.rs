//! Fake-clock tests of the connection state machine: closes and reconnects, pings, the
//! backoff schedule, connect timeouts, ids, malformed frames, snapshot paging, one socket
//! for every subscription, the send budget.

use super::*;

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
    assert_eq!(ids, [json!(&a), json!(&b)]);
    // Connected: unsubscribe tells the server.
    assert!(h.core.unsubscribe(h.now, &a));
    assert_eq!(
        sent(&h.drain()),
        [json!({"type":"unsubscribe","subscription_id":&a})]
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
            &json!({"type":"change","subscription_id":&a,"change_type":"insert",
            "rows":[{"id":n.to_string(),"_seq":(100 + n).to_string()}]})
            .to_string(),
        );
    }
    h.text(
        &json!({"type":"change","subscription_id":&b,"change_type":"insert",
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
        &json!({"type":"subscription_ack","subscription_id":&a,"total_rows":0,
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
