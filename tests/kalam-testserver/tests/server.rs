//! The server's own behaviour tests (isolation, paging, limits, resume, heartbeat, faults,
//! topics, bad input).

mod common;

use common::*;
use kalam_testserver::Config;
use serde_json::{json, Value};
use std::time::Duration;

async fn inbox(c: &Client, root: &str) {
    c.ok(root, "CREATE TABLE app.inbox (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), body TEXT NOT NULL, n INT) WITH (TYPE = 'USER')").await;
}

async fn subscribe(ws: &mut Ws, id: &str, sql: &str, options: Value) -> (Value, Value) {
    ws_send(
        ws,
        &json!({"type": "subscribe", "subscription": {"id": id, "sql": sql, "options": options}}),
    )
    .await;
    let ack = ws_json(ws).await;
    assert_eq!(ack["type"], "subscription_ack", "{ack}");
    let b = ws_json(ws).await;
    assert_eq!(b["type"], "initial_data_batch", "{b}");
    (ack, b)
}

#[tokio::test]
async fn user_tables_are_isolated_per_user() {
    let s = start(Config::default()).await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    inbox(&c, &root).await;
    let a = c.token("alice", &pw("alice")).await;
    let b = c.token("bob", &pw("bob")).await;
    c.ok(&a, "INSERT INTO app.inbox (body) VALUES ('a1'), ('a2')")
        .await;
    c.ok(&b, "INSERT INTO app.inbox (body) VALUES ('b1')").await;
    let ra = c.ok(&a, "SELECT body FROM app.inbox ORDER BY body").await;
    assert_eq!(ra["results"][0]["rows"], json!([["a1"], ["a2"]]));
    let rb = c.ok(&b, "SELECT body FROM app.inbox").await;
    assert_eq!(rb["results"][0]["rows"], json!([["b1"]]));
    // Bob cannot touch Alice's rows either.
    let u = c
        .ok(&b, "UPDATE app.inbox SET body = 'x' WHERE body = 'a1'")
        .await;
    assert_eq!(u["results"][0]["row_count"], 0);
    // Live events go only to the owner.
    let mut wa = ws_auth(&s.url(), &a, "").await;
    subscribe(&mut wa, "s", "SELECT * FROM app.inbox", json!({})).await;
    c.ok(&b, "INSERT INTO app.inbox (body) VALUES ('b2')").await;
    c.ok(&a, "INSERT INTO app.inbox (body) VALUES ('a3')").await;
    let ch = ws_json(&mut wa).await;
    assert_eq!(ch["rows"][0]["body"], "a3", "{ch}");
}

#[tokio::test]
async fn snapshot_paging_limits_and_resume() {
    let s = start(Config::default()).await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    c.ok(&root, "CREATE TABLE app.many (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), k INT) WITH (TYPE = 'USER')").await;
    let a = c.token("alice", &pw("alice")).await;
    for chunk in 0..5 {
        let vals: Vec<String> = (chunk * 500..(chunk + 1) * 500)
            .map(|k| format!("({k})"))
            .collect();
        c.ok(
            &a,
            &format!("INSERT INTO app.many (k) VALUES {}", vals.join(",")),
        )
        .await;
    }
    // HTTP row limits: 50 without LIMIT, 1000 at most.
    let r = c.ok(&a, "SELECT id, k FROM app.many").await;
    assert_eq!(r["results"][0]["row_count"], 50);
    let r = c.ok(&a, "SELECT id, k FROM app.many LIMIT 5000").await;
    assert_eq!(r["results"][0]["row_count"], 1000);
    // Paging at batch size 300 delivers all 2,500 rows in order.
    let mut ws = ws_auth(&s.url(), &a, "").await;
    let (ack, mut b) = subscribe(
        &mut ws,
        "p",
        "SELECT id, k FROM app.many",
        json!({"batch_size": 300}),
    )
    .await;
    assert_eq!(ack["batch_control"], b["batch_control"]);
    let mut ks = Vec::new();
    let mut batches = 0;
    loop {
        batches += 1;
        for r in b["rows"].as_array().unwrap() {
            ks.push(r["k"].as_i64().unwrap());
        }
        if !b["batch_control"]["has_more"].as_bool().unwrap() {
            assert_eq!(b["batch_control"]["status"], "ready");
            break;
        }
        let last = b["batch_control"]["last_seq_id"].as_i64().unwrap();
        ws_send(
            &mut ws,
            &json!({"type": "next_batch", "subscription_id": "p", "last_seq_id": last}),
        )
        .await;
        b = ws_json(&mut ws).await;
        assert_eq!(
            b["batch_control"]["status"],
            if b["batch_control"]["has_more"] == true {
                "loading_batch"
            } else {
                "ready"
            }
        );
    }
    assert_eq!(batches, 9);
    assert_eq!(ks, (0..2500).collect::<Vec<_>>());
    // batch_size 1000 is cut to 1000 rows with has_more false (recorded behaviour).
    let (_, b) = subscribe(
        &mut ws,
        "big",
        "SELECT id, k FROM app.many",
        json!({"batch_size": 1000}),
    )
    .await;
    assert_eq!(b["rows"].as_array().unwrap().len(), 1000);
    assert_eq!(b["batch_control"]["has_more"], false);
    // Resume with `from`: only newer rows come back.
    let (_, b) = subscribe(
        &mut ws,
        "r0",
        "SELECT k FROM app.many WHERE k >= 2490",
        json!({}),
    )
    .await;
    let from = b["batch_control"]["last_seq_id"].as_i64().unwrap();
    c.ok(&a, "INSERT INTO app.many (k) VALUES (9001)").await;
    c.ok(&a, "UPDATE app.many SET k = 9002 WHERE k = 2495")
        .await;
    let mut ws2 = ws_auth(&s.url(), &a, "").await;
    let (_, b) = subscribe(
        &mut ws2,
        "r1",
        "SELECT k FROM app.many WHERE k >= 2490",
        json!({"from": from}),
    )
    .await;
    let got: Vec<i64> = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["k"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![9001, 9002]);
}

#[tokio::test]
async fn heartbeat_timeout_closes_idle_sockets() {
    let s = start(Config {
        heartbeat_timeout_secs: 2,
        ..Config::default()
    })
    .await;
    let c = Client::new(&s.url());
    let _root = bootstrap(&c).await;
    let a = c.token("alice", &pw("alice")).await;
    let mut idle = ws_auth(&s.url(), &a, "").await;
    let mut pinging = ws_auth(&s.url(), &a, "").await;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        ws_send(&mut pinging, &json!({"type": "ping"})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    match ws_recv(&mut idle, Duration::from_secs(3)).await {
        In::Close(code, reason) => assert_eq!((code, reason.as_str()), (1000, "Heartbeat timeout")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ws_recv(&mut pinging, Duration::from_millis(300)).await,
        In::Timeout
    ));
}

#[tokio::test]
async fn fault_switches() {
    let s = start(Config::default()).await;
    let h = s.handle();
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    inbox(&c, &root).await;
    let a = c.token("alice", &pw("alice")).await;
    // Non-system callers are refused.
    let (st, v) = c
        .post(
            Some(&a),
            "/v1/api/test/faults",
            json!({"action": "drop_sockets"}),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (403, json!("PERMISSION_DENIED"))
    );
    // drop_sockets: abrupt close, no close frame.
    let mut ws = ws_auth(&s.url(), &a, "").await;
    let (st, v) = c
        .post(
            Some(&root),
            "/v1/api/test/faults",
            json!({"action": "drop_sockets"}),
        )
        .await;
    assert_eq!((st, v), (200, json!({"ok": true})));
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Abrupt
    ));
    // refuse_connections: 503 for a while, then served again.
    c.post(
        Some(&root),
        "/v1/api/test/faults",
        json!({"action": "refuse_connections", "ms": 400}),
    )
    .await;
    let (st, _) = c.sql_as(&a, "SELECT 1", None).await;
    assert_eq!(st, 503);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.sql_as(&a, "SELECT 1", None).await.0, 200);
    // delay_frames and stall_frames.
    let mut ws = ws_auth(&s.url(), &a, "").await;
    subscribe(&mut ws, "s", "SELECT * FROM app.inbox", json!({})).await;
    h.delay_frames(300);
    c.ok(&a, "INSERT INTO app.inbox (body) VALUES ('d')").await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_millis(150)).await,
        In::Timeout
    ));
    assert_eq!(ws_json(&mut ws).await["rows"][0]["body"], "d");
    h.delay_frames(0);
    c.post(
        Some(&root),
        "/v1/api/test/faults",
        json!({"action": "stall_frames", "on": true}),
    )
    .await;
    c.ok(&a, "INSERT INTO app.inbox (body) VALUES ('s')").await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_millis(400)).await,
        In::Timeout
    ));
    c.post(
        Some(&root),
        "/v1/api/test/faults",
        json!({"action": "stall_frames", "on": false}),
    )
    .await;
    assert_eq!(ws_json(&mut ws).await["rows"][0]["body"], "s");
    // restart: sockets dropped, data kept.
    c.post(
        Some(&root),
        "/v1/api/test/faults",
        json!({"action": "restart"}),
    )
    .await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Abrupt
    ));
    let r = c.ok(&a, "SELECT COUNT(*) AS c FROM app.inbox").await;
    assert_eq!(r["results"][0]["rows"][0][0], "2");
    // expire_tokens: old tokens are TOKEN_EXPIRED, new ones work.
    c.post(
        Some(&root),
        "/v1/api/test/faults",
        json!({"action": "expire_tokens"}),
    )
    .await;
    let (st, v) = c.sql_as(&a, "SELECT 1", None).await;
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (401, json!("TOKEN_EXPIRED"))
    );
    let a2 = c.token("alice", &pw("alice")).await;
    assert_eq!(c.sql_as(&a2, "SELECT 1", None).await.0, 200);
    // set_limits: the per-user subscription limit.
    let root2 = c.token("root", ROOT_PW).await;
    c.post(
        Some(&root2),
        "/v1/api/test/faults",
        json!({"action": "set_limits", "max_subscriptions_per_user": 1}),
    )
    .await;
    let mut ws = ws_auth(&s.url(), &a2, "").await;
    subscribe(&mut ws, "one", "SELECT * FROM app.inbox", json!({})).await;
    ws_send(&mut ws, &json!({"type": "subscribe", "subscription": {"id": "two", "sql": "SELECT * FROM app.inbox"}})).await;
    let e = ws_json(&mut ws).await;
    assert_eq!(e["code"], "SUBSCRIPTION_LIMIT_EXCEEDED", "{e}");
}

#[tokio::test]
async fn short_token_lifetime_expires() {
    let s = start(Config {
        access_token_ttl: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    let c = Client::new(&s.url());
    let t = c.token("root", ROOT_PW).await;
    assert_eq!(c.sql_as(&t, "SELECT 1", None).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (st, v) = c.sql_as(&t, "SELECT 1", None).await;
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (401, json!("TOKEN_EXPIRED"))
    );
}

#[tokio::test]
async fn topic_redelivery_after_visibility_timeout() {
    let s = start(Config {
        topic_visibility_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    inbox(&c, &root).await;
    c.ok(&root, "CREATE TOPIC app.ev").await;
    c.ok(&root, "ALTER TOPIC app.ev ADD SOURCE app.inbox ON INSERT")
        .await;
    let a = c.token("alice", &pw("alice")).await;
    c.ok(
        &a,
        "INSERT INTO app.inbox (body) VALUES ('m0'), ('m1'), ('m2')",
    )
    .await;
    let w = c.token("worker", &pw("worker")).await;
    let req = json!({"topic_id": "app.ev", "group_id": "g", "start": "Earliest", "limit": 2});
    let (_, v) = c
        .post(Some(&w), "/v1/api/topics/consume", req.clone())
        .await;
    assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    assert_eq!(v["next_offset"], 2);
    let (_, v) = c
        .post(Some(&w), "/v1/api/topics/consume", req.clone())
        .await;
    assert_eq!(v["messages"][0]["offset"], 2);
    c.post(
        Some(&w),
        "/v1/api/topics/ack",
        json!({"topic_id": "app.ev", "group_id": "g", "upto_offset": 0}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Unacked claims expired: offsets 1 and 2 come again.
    let (_, v) = c
        .post(
            Some(&w),
            "/v1/api/topics/consume",
            json!({"topic_id": "app.ev", "group_id": "g", "limit": 10}),
        )
        .await;
    let offs: Vec<u64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offs, vec![1, 2]);
    // A user role is refused.
    let (st, v) = c.post(Some(&a), "/v1/api/topics/consume", req).await;
    assert_eq!((st, v["code"].clone()), (403, json!("FORBIDDEN")));
}

#[tokio::test]
async fn bad_input_gets_real_errors_and_server_keeps_serving() {
    let s = start(Config::default()).await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    inbox(&c, &root).await;
    let a = c.token("alice", &pw("alice")).await;
    let mut other = ws_auth(&s.url(), &a, "").await;
    subscribe(&mut other, "keep", "SELECT * FROM app.inbox", json!({})).await;
    let cases: Vec<(&str, &str)> = vec![
        (
            "{not json",
            "Invalid message: key must be a string at line 1 column 2",
        ),
        (
            r#"{"type":"bogus"}"#,
            "Invalid message: unknown variant `bogus`",
        ),
        (
            r#"{"type":"next_batch","subscription_id":"x","last_seq_id":"123"}"#,
            "Invalid message: invalid type: string \"123\", expected i64",
        ),
    ];
    for (frame, reason) in cases {
        let mut ws = ws_auth(&s.url(), &a, "").await;
        ws_send_raw(&mut ws, frame).await;
        match ws_recv(&mut ws, Duration::from_secs(2)).await {
            In::Close(code, r) => {
                assert_eq!(code, 1011);
                assert!(r.starts_with(reason), "{r}");
            }
            o => panic!("{frame}: {o:?}"),
        }
    }
    // Oversized frame: connection dropped without a close frame.
    let mut ws = ws_auth(&s.url(), &a, "").await;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024));
    let _ = futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::Text(big.into()),
    )
    .await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Abrupt | In::Close(1009, _)
    ));
    // Malformed HTTP JSON.
    let r = c
        .http
        .post(format!("{}/v1/api/sql", s.url()))
        .bearer_auth(&a)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "INVALID_INPUT");
    // The other client is still served.
    c.ok(&a, "INSERT INTO app.inbox (body) VALUES ('still')")
        .await;
    let ch = ws_json(&mut other).await;
    assert_eq!(ch["rows"][0]["body"], "still");
}

#[tokio::test]
async fn gzip_threshold_and_compress_false() {
    let s = start(Config::default()).await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    inbox(&c, &root).await;
    let a = c.token("alice", &pw("alice")).await;
    let long = "y".repeat(600);
    c.ok(
        &a,
        &format!("INSERT INTO app.inbox (body) VALUES ('{long}')"),
    )
    .await;
    let mut ws = ws_auth(&s.url(), &a, "").await;
    ws_send(&mut ws, &json!({"type": "subscribe", "subscription": {"id": "g", "sql": "SELECT * FROM app.inbox", "options": {}}})).await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Gzip(..) | In::Text(_)
    ));
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Gzip(..)
    ));
    let mut ws = ws_auth(&s.url(), &a, "?compress=false").await;
    ws_send(&mut ws, &json!({"type": "subscribe", "subscription": {"id": "g", "sql": "SELECT * FROM app.inbox", "options": {}}})).await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Text(_)
    ));
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Text(_)
    ));
}
