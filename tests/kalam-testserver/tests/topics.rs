//! Topic claims as the real publisher keeps them (PROTOCOL.md §7.4, §12.4) and the topic
//! fault switches: a consume answer lost after its claim, acks refused, the ack log.

mod common;

use common::*;
use kalam_testserver::Config;
use serde_json::{json, Value};
use std::time::Duration;

struct Topic {
    c: Client,
    root: String,
    w: String,
    _s: kalam_testserver::TestServer,
}

/// A topic `app.ev` with `n` messages on one partition, and a service token.
async fn topic(n: usize, visibility: Duration) -> Topic {
    let s = start(Config {
        topic_visibility_timeout: visibility,
        ..Config::default()
    })
    .await;
    let c = Client::new(&s.url());
    let root = bootstrap(&c).await;
    c.ok(&root, "CREATE TABLE app.src (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), n INT) WITH (TYPE = 'SHARED')").await;
    c.ok(&root, "CREATE TOPIC app.ev").await;
    c.ok(&root, "ALTER TOPIC app.ev ADD SOURCE app.src ON INSERT")
        .await;
    let values: Vec<String> = (0..n).map(|i| format!("({i})")).collect();
    c.ok(
        &root,
        &format!("INSERT INTO app.src (n) VALUES {}", values.join(", ")),
    )
    .await;
    let w = c.token("worker", &pw("worker")).await;
    Topic { c, root, w, _s: s }
}

impl Topic {
    /// `(offsets, next_offset)` of one consume of group `g`.
    async fn consume(&self, g: &str, start: Value, limit: u64) -> (Vec<u64>, u64) {
        let (st, v) = self
            .c
            .post(
                Some(&self.w),
                "/v1/api/topics/consume",
                json!({"topic_id": "app.ev", "group_id": g, "start": start, "limit": limit}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let offsets = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect();
        (offsets, v["next_offset"].as_u64().unwrap())
    }

    async fn ack(&self, g: &str, upto: u64) -> (u16, Value) {
        self.c
            .post(
                Some(&self.w),
                "/v1/api/topics/ack",
                json!({"topic_id": "app.ev", "group_id": g, "upto_offset": upto}),
            )
            .await
    }

    async fn fault(&self, body: Value) -> Value {
        let (st, v) = self
            .c
            .post(Some(&self.root), "/v1/api/test/faults", body)
            .await;
        assert_eq!(st, 200, "{v}");
        v
    }
}

fn range(a: u64, b: u64) -> Vec<u64> {
    (a..b).collect()
}

#[tokio::test]
async fn acks_are_cumulative_and_drop_every_claim_they_cover() {
    let t = topic(30, Duration::from_millis(400)).await;
    // A claims 0-9 and acks 2 (partly covered: the claim stays); B claims 10-19, acks 19.
    assert_eq!(t.consume("g", json!("Earliest"), 10).await.0, range(0, 10));
    t.ack("g", 2).await;
    assert_eq!(t.consume("g", json!("Earliest"), 10).await.0, range(10, 20));
    let (st, v) = t.ack("g", 19).await;
    assert_eq!(
        (st, v),
        (200, json!({"success": true, "acknowledged_offset": 19}))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A's claim was removed by B's ack: 3-9 are never delivered again (PROTOCOL.md §12.4).
    assert_eq!(t.consume("g", json!("Earliest"), 10).await.0, range(20, 30));
    // A probe (limit 0) claims nothing and answers committed + 1.
    assert_eq!(t.consume("g", json!("Earliest"), 0).await, (vec![], 20));
    let state = t.fault(json!({"action": "topic_state"})).await;
    assert_eq!(state["offsets"][0]["last_acked_offset"], 19);
    assert_eq!(state["claims"][0]["pending"], json!([[20, 30]]));
    let acks: Vec<u64> = state["acks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["upto_offset"].as_u64().unwrap())
        .collect();
    assert_eq!(acks, vec![2, 19]);
}

#[tokio::test]
async fn expired_claims_rewind_no_lower_than_the_commit() {
    let t = topic(30, Duration::from_millis(300)).await;
    assert_eq!(t.consume("g", json!("Earliest"), 10).await.0, range(0, 10));
    assert_eq!(t.consume("g", json!("Earliest"), 10).await.0, range(10, 20));
    t.ack("g", 4).await; // covers neither claim fully
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Both expired: the cursor rewinds to 0, the start is committed + 1 = 5.
    assert_eq!(t.consume("g", json!("Earliest"), 10).await.0, range(5, 15));
    assert_eq!(t.consume("g", json!("Earliest"), 10).await.0, range(15, 25));
    // Without a commit, an explicit start beyond the cursor wins (max(cursor, start)).
    assert_eq!(
        t.consume("h", json!({"Offset": 7}), 3).await.0,
        vec![7, 8, 9]
    );
    assert_eq!(
        t.consume("h", json!({"Offset": 20}), 3).await.0,
        vec![20, 21, 22]
    );
    // An empty answer gives the computed start: the start position, or committed + 1.
    assert_eq!(t.consume("i", json!("Latest"), 5).await, (vec![], 30));
    assert_eq!(t.consume("i", json!({"Offset": 3}), 0).await, (vec![], 3));
    t.ack("i", 11).await;
    assert_eq!(t.consume("i", json!("Latest"), 0).await, (vec![], 12));
    // A restart forgets claims, keeps commits.
    t.fault(json!({"action": "restart"})).await;
    assert_eq!(t.consume("g", json!("Earliest"), 3).await.0, vec![5, 6, 7]);
}

#[tokio::test]
async fn a_dropped_consume_answer_keeps_its_claim_and_failing_acks_commit_nothing() {
    let t = topic(10, Duration::from_millis(300)).await;
    t.fault(json!({"action": "drop_consume_responses", "count": 1}))
        .await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/api/topics/consume", t.c.url))
        .bearer_auth(&t.w)
        .json(&json!({"topic_id": "app.ev", "group_id": "g", "start": "Earliest", "limit": 4}))
        .send()
        .await;
    // Cut off: hyper aborts the connection (before or after the status line).
    match r {
        Ok(r) => assert!(r.text().await.is_err(), "the answer is cut off"),
        Err(e) => assert!(!e.is_status(), "{e}"),
    }
    // The retry claims the next range; the lost one comes back after the timeout.
    assert_eq!(t.consume("g", json!("Earliest"), 4).await.0, range(4, 8));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(t.consume("g", json!("Earliest"), 4).await.0, range(0, 4));
    // Acks refused for a while: 503, nothing committed, then they work again.
    t.fault(json!({"action": "fail_acks", "ms": 300})).await;
    let (st, v) = t.ack("g", 3).await;
    assert_eq!((st, v["code"].clone()), (503, json!("SERVICE_UNAVAILABLE")));
    let state = t.fault(json!({"action": "topic_state"})).await;
    assert_eq!(state["offsets"], json!([]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(t.ack("g", 3).await.0, 200);
}

#[tokio::test]
async fn system_topic_tables_are_for_dba_and_system() {
    let t = topic(1, Duration::from_secs(60)).await;
    t.ack("g", 0).await;
    let v =
        t.c.ok(
            &t.root,
            "SELECT topic_id, partitions FROM system.topics WHERE topic_id = 'app.ev'",
        )
        .await;
    assert_eq!(v["results"][0]["rows"], json!([["app.ev", "ev", 1]]));
    let v = t.c.ok(&t.root, "SELECT * FROM system.topic_offsets").await;
    assert_eq!(v["results"][0]["rows"], json!([["app.ev", "g", 0, "0"]]));
    let (st, v) =
        t.c.sql_as(&t.w, "SELECT topic_id, partitions FROM system.topics", None)
            .await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["error"]["code"], "PERMISSION_DENIED");
}
