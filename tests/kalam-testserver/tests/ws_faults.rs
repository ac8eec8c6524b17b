//! The WebSocket faults that the live-client tests meet: the bounded notification queue
//! (on by default, like the real server), the §12.3 echo, black hole, failed `next_batch`
//! and injected subscription errors.

mod common;

use common::*;
use kalam_testserver::Config;
use serde_json::{json, Value};
use std::time::Duration;

async fn items(c: &Client, root: &str, token: &str, rows: usize) {
    c.ok(root, "CREATE TABLE app.items (id BIGINT PRIMARY KEY, n INT) WITH (TYPE = 'SHARED', ACCESS_LEVEL = 'PUBLIC')").await;
    let values: Vec<String> = (1..=rows).map(|i| format!("({i}, 0)")).collect();
    for chunk in values.chunks(250) {
        c.ok(
            token,
            &format!("INSERT INTO app.items (id, n) VALUES {}", chunk.join(", ")),
        )
        .await;
    }
}

async fn subscribe(ws: &mut Ws, id: &str, options: Value) -> (Value, Value) {
    ws_send(
        ws,
        &json!({"type": "subscribe", "subscription": {"id": id, "sql": "SELECT * FROM app.items", "options": options}}),
    )
    .await;
    let ack = ws_json(ws).await;
    assert_eq!(ack["type"], "subscription_ack", "{ack}");
    let batch = ws_json(ws).await;
    assert_eq!(batch["type"], "initial_data_batch", "{batch}");
    (ack, batch)
}

/// Change frames received until the socket is quiet for `quiet`.
async fn count_changes(ws: &mut Ws, quiet: Duration) -> usize {
    let mut n = 0;
    loop {
        match ws_recv(ws, quiet).await {
            In::Text(v) | In::Gzip(v, _) if v["type"] == "change" => n += 1,
            In::Timeout => return n,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn bounded_queue_drops_notifications_silently_unless_turned_off() {
    let s = start(Config::default()).await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    items(&c, &root, &root, 1000).await;
    let a = c.token("alice", &pw("alice")).await;
    let mut ws = ws_auth(&s.url(), &a, "").await;
    let (_, b0) = subscribe(&mut ws, "all", json!({"batch_size": 500})).await;
    // Page the snapshot to the end so changes flow.
    let mut last = b0["batch_control"]["last_seq_id"].as_i64();
    while last.is_some() {
        ws_send(
            &mut ws,
            &json!({"type":"next_batch","subscription_id":"all","last_seq_id":last}),
        )
        .await;
        let b = ws_json(&mut ws).await;
        assert_eq!(b["type"], "initial_data_batch", "{b}");
        last = b["batch_control"]["last_seq_id"].as_i64();
        if b["batch_control"]["has_more"] == false {
            last = None;
        }
    }
    c.ok(&root, "UPDATE app.items SET n = n + 1 WHERE id > 0")
        .await;
    let got = count_changes(&mut ws, Duration::from_millis(700)).await;
    assert!(
        (128..1000).contains(&got),
        "one 1,000-row UPDATE through a 128-frame queue: {got} changes arrived"
    );
    // Nothing on the wire says frames were lost; the socket keeps working.
    c.ok(&root, "INSERT INTO app.items (id, n) VALUES (5000, 1)")
        .await;
    assert_eq!(count_changes(&mut ws, Duration::from_millis(500)).await, 1);

    // Unbounded (the fault route's set_limits): every notification arrives.
    let (st, _) = c
        .post(
            Some(&root),
            "/v1/api/test/faults",
            json!({"action": "set_limits", "ws_outbound_queue": 0}),
        )
        .await;
    assert_eq!(st, 200);
    c.ok(&root, "UPDATE app.items SET n = n + 1 WHERE id > 0")
        .await;
    assert_eq!(
        count_changes(&mut ws, Duration::from_millis(700)).await,
        1001
    );
}

#[tokio::test]
async fn unknown_next_batch_is_an_echo_and_ping_is_never_answered() {
    let s = start(Config::default()).await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    let a = c.token("alice", &pw("alice")).await;
    let _ = root;
    let mut ws = ws_auth(&s.url(), &a, "").await;
    ws_send(&mut ws, &json!({"type":"ping"})).await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_millis(400)).await,
        In::Timeout
    ));
    ws_send(
        &mut ws,
        &json!({"type":"next_batch","subscription_id":"echo-1","last_seq_id":1}),
    )
    .await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type":"error","subscription_id":"echo-1","code":"BATCH_FETCH_FAILED",
               "message":"Not found: Subscription not found: echo-1"})
    );
}

#[tokio::test]
async fn black_hole_freezes_sockets_and_cuts_them_afterwards() {
    let s = start(Config {
        heartbeat_timeout_secs: 1,
        ..Config::default()
    })
    .await;
    let h = s.handle();
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    items(&c, &root, &root, 3).await;
    let a = c.token("alice", &pw("alice")).await;
    let mut ws = ws_auth(&s.url(), &a, "").await;
    subscribe(&mut ws, "s", json!({})).await;
    let (st, _) = c
        .post(
            Some(&root),
            "/v1/api/test/faults",
            json!({"action": "black_hole", "on": true}),
        )
        .await;
    assert_eq!(st, 200);
    c.ok(&root, "INSERT INTO app.items (id, n) VALUES (10, 1)")
        .await;
    ws_send(
        &mut ws,
        &json!({"type":"next_batch","subscription_id":"echo","last_seq_id":1}),
    )
    .await;
    // Nothing arrives and nothing closes, even past the (1 s) heartbeat timeout.
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_millis(2500)).await,
        In::Timeout
    ));
    // A new socket is frozen too: its authenticate is swallowed.
    let mut fresh = ws_connect(&s.url(), "").await;
    ws_send(
        &mut fresh,
        &json!({"type": "authenticate", "method": "jwt", "token": a,
            "protocol": {"serialization": "json", "compression": "gzip"}}),
    )
    .await;
    assert!(matches!(
        ws_recv(&mut fresh, Duration::from_millis(400)).await,
        In::Timeout
    ));
    h.black_hole(false);
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Abrupt
    ));
    let mut ws = ws_auth(&s.url(), &a, "").await;
    let (_, batch) = subscribe(&mut ws, "s", json!({})).await;
    assert_eq!(batch["rows"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn failed_and_unanswered_next_batch_and_injected_errors() {
    let s = start(Config::default()).await;
    let h = s.handle();
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    items(&c, &root, &root, 5).await;
    let a = c.token("alice", &pw("alice")).await;
    let mut ws = ws_auth(&s.url(), &a, "").await;
    let (_, b0) = subscribe(&mut ws, "p", json!({"batch_size": 2})).await;
    let last = b0["batch_control"]["last_seq_id"].as_i64().unwrap();
    // An echo does not count as the Nth next_batch.
    let (st, _) = c
        .post(
            Some(&root),
            "/v1/api/test/faults",
            json!({"action": "fail_next_batch", "n": 1}),
        )
        .await;
    assert_eq!(st, 200);
    ws_send(
        &mut ws,
        &json!({"type":"next_batch","subscription_id":"nope","last_seq_id":1}),
    )
    .await;
    assert_eq!(ws_json(&mut ws).await["code"], "BATCH_FETCH_FAILED");
    ws_send(
        &mut ws,
        &json!({"type":"next_batch","subscription_id":"p","last_seq_id":last}),
    )
    .await;
    let e = ws_json(&mut ws).await;
    assert_eq!(
        (
            e["type"].clone(),
            e["subscription_id"].clone(),
            e["code"].clone()
        ),
        (json!("error"), json!("p"), json!("BATCH_FETCH_FAILED")),
        "{e}"
    );
    // Only that one: the retry is served.
    ws_send(
        &mut ws,
        &json!({"type":"next_batch","subscription_id":"p","last_seq_id":last}),
    )
    .await;
    let b1 = ws_json(&mut ws).await;
    assert_eq!(b1["batch_control"]["batch_num"], 1, "{b1}");
    // mode "ignore": no answer at all.
    h.fail_next_batch(1, kalam_testserver::BatchFault::Ignore);
    let last = b1["batch_control"]["last_seq_id"].as_i64().unwrap();
    ws_send(
        &mut ws,
        &json!({"type":"next_batch","subscription_id":"p","last_seq_id":last}),
    )
    .await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_millis(400)).await,
        In::Timeout
    ));
    // inject_error: an error frame for a subscription that was acknowledged.
    let (st, v) = c
        .post(
            Some(&root),
            "/v1/api/test/faults",
            json!({"action": "inject_error", "subscription_id": "p", "code": "SUBSCRIPTION_FAILED", "message": "boom"}),
        )
        .await;
    assert_eq!((st, v["subscriptions"].clone()), (200, json!(1)));
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type":"error","subscription_id":"p","code":"SUBSCRIPTION_FAILED","message":"boom"})
    );
}
