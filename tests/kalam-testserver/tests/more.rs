//! Further protocol details: WS auth paths, buffering during snapshot load, unsubscribe,
//! STREAM payloads, transactions, user management, EXECUTE AS, uploads.

mod common;

use common::*;
use futures_util::SinkExt;
use kalam_testserver::Config;
use serde_json::{json, Value};
use std::time::Duration;

async fn setup() -> (kalam_testserver::TestServer, Client, String, String) {
    let s = start(Config::default()).await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    c.ok(&root, "CREATE TABLE app.inbox (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), body TEXT NOT NULL, n INT) WITH (TYPE = 'USER')").await;
    let a = c.token("alice", &pw("alice")).await;
    (s, c, root, a)
}

#[tokio::test]
async fn ws_auth_timeout_header_auth_and_auth_required() {
    let (s, _c, _root, a) = setup().await;
    // No authenticate within 3 s: auth_error then 1008.
    let mut ws = ws_connect(&s.url(), "").await;
    let v = match ws_recv(&mut ws, Duration::from_secs(5)).await {
        In::Text(v) => v,
        o => panic!("{o:?}"),
    };
    assert_eq!(v["type"], "auth_error");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("Authentication timeout"));
    assert!(
        matches!(ws_recv(&mut ws, Duration::from_secs(2)).await, In::Close(1008, r) if r == "Authentication timeout")
    );
    // Header auth: auth_success arrives unsolicited.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{}/v1/ws", s.url().replacen("http", "ws", 1)),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {a}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let v = ws_json(&mut ws).await;
    assert_eq!(
        (v["type"].as_str(), v["user"].as_str(), v["role"].as_str()),
        (Some("auth_success"), Some("alice"), Some("user"))
    );
    // Binary frames in JSON mode are refused with UNSUPPORTED_DATA, socket stays open.
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        vec![1, 2, 3].into(),
    ))
    .await
    .unwrap();
    let v = ws_json(&mut ws).await;
    assert_eq!(
        (v["subscription_id"].as_str(), v["code"].as_str()),
        (Some("protocol"), Some("UNSUPPORTED_DATA"))
    );
    // Without options: ack "ready" with null last_seq_id, and next_batch fails.
    ws_send(&mut ws, &json!({"type": "subscribe", "subscription": {"id": "n", "sql": "SELECT * FROM app.inbox"}})).await;
    let ack = ws_json(&mut ws).await;
    assert_eq!(
        ack["batch_control"],
        json!({"batch_num": 0, "has_more": false, "status": "ready", "last_seq_id": null})
    );
    ws_send(
        &mut ws,
        &json!({"type": "next_batch", "subscription_id": "n"}),
    )
    .await;
    assert_eq!(ws_json(&mut ws).await["code"], "BATCH_FETCH_FAILED");
    // Blank id.
    ws_send(&mut ws, &json!({"type": "subscribe", "subscription": {"id": " ", "sql": "SELECT * FROM app.inbox"}})).await;
    let e = ws_json(&mut ws).await;
    assert_eq!(
        (e["subscription_id"].as_str(), e["code"].as_str()),
        (
            Some("invalid_subscription"),
            Some("INVALID_SUBSCRIPTION_ID")
        )
    );
}

#[tokio::test]
async fn changes_wait_for_the_snapshot_and_unsubscribe_stops_them() {
    let (s, c, _root, a) = setup().await;
    for i in 0..5 {
        c.ok(
            &a,
            &format!("INSERT INTO app.inbox (body, n) VALUES ('r{i}', {i})"),
        )
        .await;
    }
    let mut ws = ws_auth(&s.url(), &a, "?compress=false").await;
    ws_send(&mut ws, &json!({"type": "subscribe", "subscription": {"id": "p", "sql": "SELECT body FROM app.inbox WHERE n >= 0", "options": {"batch_size": 2}}})).await;
    let ack = ws_json(&mut ws).await;
    assert_eq!(
        ack["schema"],
        json!([{"name": "body", "data_type": "Text", "index": 0, "flags": ["nn"]}])
    );
    let b0 = ws_json(&mut ws).await;
    assert_eq!(b0["batch_control"]["status"], "loading");
    // Written while loading: held back until the last batch.
    c.ok(&a, "INSERT INTO app.inbox (body, n) VALUES ('live', 9)")
        .await;
    c.ok(&a, "UPDATE app.inbox SET n = 8 WHERE body = 'r4'")
        .await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_millis(300)).await,
        In::Timeout
    ));
    let mut last = b0["batch_control"]["last_seq_id"].as_i64().unwrap();
    let mut bodies: Vec<String> = b0["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_string())
        .collect();
    loop {
        ws_send(
            &mut ws,
            &json!({"type": "next_batch", "subscription_id": "p", "last_seq_id": last}),
        )
        .await;
        let b = ws_json(&mut ws).await;
        assert_eq!(b["type"], "initial_data_batch");
        bodies.extend(
            b["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["body"].as_str().unwrap().to_string()),
        );
        if b["batch_control"]["has_more"] == false {
            break;
        }
        last = b["batch_control"]["last_seq_id"].as_i64().unwrap();
    }
    // r4 got a version above the snapshot boundary while loading, so it is not in the
    // snapshot; its update event (sent after the snapshot) carries it.
    assert_eq!(bodies, ["r0", "r1", "r2", "r3"]);
    let ins = ws_json(&mut ws).await;
    assert_eq!(
        (ins["change_type"].as_str(), ins["rows"][0]["body"].as_str()),
        (Some("insert"), Some("live"))
    );
    let upd = ws_json(&mut ws).await;
    assert_eq!(
        (upd["change_type"].as_str(), upd["rows"][0]["body"].as_str()),
        (Some("update"), Some("r4"))
    );
    // Update: PK and new _seq always present, old_values carries the old _seq.
    assert!(upd["rows"][0]["id"].is_string() && upd["old_values"][0]["_seq"].is_string());
    ws_send(
        &mut ws,
        &json!({"type": "unsubscribe", "subscription_id": "p"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.ok(&a, "INSERT INTO app.inbox (body, n) VALUES ('after', 1)")
        .await;
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_millis(300)).await,
        In::Timeout
    ));
}

#[tokio::test]
async fn stream_tables_payloads() {
    let (s, c, root, a) = setup().await;
    c.ok(&root, "CREATE TABLE app.events (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), kind TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 3600)").await;
    let mut ws = ws_auth(&s.url(), &a, "").await;
    ws_send(&mut ws, &json!({"type": "subscribe", "subscription": {"id": "e", "sql": "SELECT * FROM app.events", "options": {}}})).await;
    ws_json(&mut ws).await;
    ws_json(&mut ws).await;
    c.ok(&a, "INSERT INTO app.events (kind) VALUES ('click')")
        .await;
    let ins = ws_json(&mut ws).await;
    let row = ins["rows"][0].as_object().unwrap();
    assert!(
        row.contains_key("_seq") && !row.contains_key("_deleted"),
        "{ins}"
    );
    let seq = row["_seq"].as_str().unwrap().to_string();
    let (st, v) = c.sql_as(&a, "UPDATE app.events SET kind = 'x'", None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("SQL_EXECUTION_ERROR"))
    );
    c.ok(&a, "DELETE FROM app.events WHERE kind = 'click'")
        .await;
    let del = ws_json(&mut ws).await;
    assert_eq!(
        del["old_values"],
        json!([{"row_id": format!("alice:{seq}")}])
    );
    let r = c.ok(&a, "SELECT COUNT(*) AS c FROM app.events").await;
    assert_eq!(r["results"][0]["rows"][0][0], "0");
}

#[tokio::test]
async fn transactions_users_and_execute_as() {
    let (_s, c, root, a) = setup().await;
    let r = c.ok(&a, "BEGIN; INSERT INTO app.inbox (body) VALUES ('tx'); ROLLBACK; SELECT COUNT(*) AS c FROM app.inbox").await;
    assert_eq!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x.get("rows").is_some())
            .unwrap()["rows"][0][0],
        "0"
    );
    let (st, v) = c
        .sql_as(
            &a,
            "BEGIN; INSERT INTO app.inbox (body) VALUES ('open')",
            None,
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("SQL_EXECUTION_ERROR"))
    );
    let r = c.ok(&a, "SELECT COUNT(*) AS c FROM app.inbox").await;
    assert_eq!(r["results"][0]["rows"][0][0], "0");
    // EXECUTE AS from a service user writes into alice's partition.
    let w = c.token("worker", &pw("worker")).await;
    let r = c
        .ok(
            &w,
            "EXECUTE AS USER 'alice' (INSERT INTO app.inbox (body) VALUES ('by worker'))",
        )
        .await;
    assert_eq!(r["results"][0]["as_user"], "alice");
    let r = c.ok(&a, "SELECT body FROM app.inbox").await;
    assert_eq!(r["results"][0]["rows"], json!([["by worker"]]));
    let (st, _) = c
        .sql_as(&a, "EXECUTE AS USER 'bob' (SELECT * FROM app.inbox)", None)
        .await;
    assert_eq!(st, 403);
    // ALTER USER changes the password; DROP USER invalidates tokens.
    c.ok(&root, "ALTER USER 'bob' SET PASSWORD 'New-pass-123'")
        .await;
    let b = c.token("bob", "New-pass-123").await;
    c.ok(&root, "DROP USER 'bob'").await;
    let (st, v) = c.sql_as(&b, "SELECT 1", None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("INVALID_CREDENTIALS"))
    );
    // Non-admins cannot manage users.
    let (st, v) = c
        .sql_as(&a, "CREATE USER 'eve' WITH PASSWORD 'x' ROLE dba", None)
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
}

#[tokio::test]
async fn params_limits_and_errors() {
    let (_s, c, _root, a) = setup().await;
    let (st, v) = c
        .sql_as(
            &a,
            "INSERT INTO app.inbox (body, n) VALUES ($1, $2)",
            Some(json!(["p", 3])),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let params: Vec<Value> = (0..51).map(|i| json!(i)).collect();
    let (st, v) = c.sql_as(&a, "SELECT 1", Some(Value::Array(params))).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("SQL_EXECUTION_ERROR"))
    );
    let (st, v) = c.sql_as(&a, "SELECT $1", Some(json!([{"a": 1}]))).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("INVALID_PARAMETER"))
    );
    let r = c
        .http
        .post(format!("{}/v1/api/sql", c.url))
        .bearer_auth(&a)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "INVALID_INPUT"
    );
    let r = c
        .http
        .post(format!("{}/v1/api/sql", c.url))
        .header("authorization", format!("bearer {a}"))
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "INVALID_CREDENTIALS"
    );
}

#[tokio::test]
async fn uploads_and_downloads() {
    let (_s, c, root, a) = setup().await;
    c.ok(&root, "CREATE TABLE app.docs (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), name TEXT, f FILE) WITH (TYPE = 'USER')").await;
    let form = reqwest::multipart::Form::new()
        .text(
            "sql",
            "INSERT INTO app.docs (name, f) VALUES ('r', FILE('doc'))",
        )
        .part(
            "file:doc",
            reqwest::multipart::Part::bytes(b"hello".to_vec())
                .file_name("My Notes_v2.TXT")
                .mime_str("text/plain")
                .unwrap(),
        );
    let r = c
        .http
        .post(format!("{}/v1/api/sql", c.url))
        .bearer_auth(&a)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = c.ok(&a, "SELECT f FROM app.docs").await;
    let fr: Value = serde_json::from_str(v["results"][0]["rows"][0][0].as_str().unwrap()).unwrap();
    assert_eq!(
        (fr["name"].as_str(), fr["size"].as_u64(), fr["sub"].as_str()),
        (Some("My Notes_v2.TXT"), Some(5), Some("f0001"))
    );
    let stored = format!("{}-my-notes-v2.txt", fr["id"].as_str().unwrap());
    let r = c
        .http
        .get(format!("{}/v1/files/app/docs/f0001/{stored}", c.url))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("inline; filename=\"{stored}\"")
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello");
    let r = c
        .http
        .get(format!("{}/v1/files/app/docs/x1/{stored}", c.url))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_client_close_is_answered_and_the_connection_ends() {
    // WHATWG WebSockets (Node 22, Deno) hold the TCP connection, and so a script's process,
    // until the server answers the close frame and closes; with notifications sent first.
    let (s, c, _root, a) = setup().await;
    let mut ws = ws_auth(&s.url(), &a, "").await;
    ws_send(
        &mut ws,
        &json!({"type": "subscribe", "subscription": {"id": "s1", "sql": "SELECT * FROM app.inbox", "options": {}}}),
    )
    .await;
    assert_eq!(ws_json(&mut ws).await["type"], "subscription_ack");
    c.ok(&a, "INSERT INTO app.inbox (body) VALUES ('x')").await;
    loop {
        if ws_json(&mut ws).await["type"] == "change" {
            break;
        }
    }
    ws.send(tokio_tungstenite::tungstenite::Message::Close(Some(
        tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "".into(),
        },
    )))
    .await
    .unwrap();
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Close(1000, _)
    ));
    assert!(matches!(
        ws_recv(&mut ws, Duration::from_secs(2)).await,
        In::Abrupt
    ));
}
