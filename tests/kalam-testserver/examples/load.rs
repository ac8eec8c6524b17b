//! Load script (loopback only): 20 users × 1 socket × 10 live subscriptions = 200
//! subscriptions, while writers insert (plus some updates and deletes) at a target rate.
//! At the end every subscriber's materialised row set must equal what SQL returns.
//!
//! `cargo run --release -p kalam-testserver --example load`
//! Env: LOAD_SECS (default 60), LOAD_RATE inserts/s (default 500).

use futures_util::{SinkExt, StreamExt};
use kalam_testserver::{Config, TestServer};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const USERS: usize = 20;
const SUBS_PER_USER: usize = 10;

type Rows = HashMap<String, Map<String, Value>>;

struct Shared {
    /// Send time of each insert by row id, for insert→event latency.
    sent: Mutex<HashMap<String, Instant>>,
    latencies_us: Mutex<Vec<u64>>,
    events: AtomicU64,
}

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

/// Applies a change event the way a correct client materialises it (PROTOCOL.md §6.2).
fn apply(rows: &mut Rows, ev: &Value) {
    let key = |r: &Value| r["id"].as_str().unwrap_or("").to_string();
    match ev["change_type"].as_str() {
        Some("insert") => {
            for r in ev["rows"].as_array().into_iter().flatten() {
                rows.insert(key(r), r.as_object().cloned().unwrap_or_default());
            }
        }
        Some("update") => {
            let olds = ev["old_values"].as_array().cloned().unwrap_or_default();
            for (i, r) in ev["rows"].as_array().into_iter().flatten().enumerate() {
                let e = rows.entry(key(r)).or_default();
                for (k, v) in r.as_object().into_iter().flatten() {
                    e.insert(k.clone(), v.clone());
                }
                if let Some(o) = olds.get(i).and_then(|o| o.as_object()) {
                    for k in o.keys() {
                        if !r.as_object().is_some_and(|r| r.contains_key(k)) {
                            e.insert(k.clone(), Value::Null);
                        }
                    }
                }
            }
        }
        Some("delete") => {
            for r in ev["old_values"].as_array().into_iter().flatten() {
                rows.remove(&key(r));
            }
        }
        _ => {}
    }
}

async fn post(http: &reqwest::Client, url: &str, token: &str, sql: &str) -> Value {
    let r = http
        .post(format!("{url}/v1/api/sql"))
        .bearer_auth(token)
        .json(&json!({"sql": sql}))
        .send()
        .await
        .expect("http");
    let s = r.status();
    let v: Value = r.json().await.expect("json");
    assert!(s.is_success(), "{sql}: {v}");
    v
}

async fn login(http: &reqwest::Client, url: &str, u: &str, pw: &str) -> String {
    let v: Value = http
        .post(format!("{url}/v1/api/auth/login"))
        .json(&json!({"user": u, "password": pw}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    v["access_token"].as_str().expect("token").to_string()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs = env_u64("LOAD_SECS", 60);
    let rate = env_u64("LOAD_RATE", 500);
    let server = TestServer::start(Config {
        root_password: Some("RootPass-123!".into()),
        ..Config::default()
    })
    .await;
    let url = server.url();
    let http = reqwest::Client::new();
    let root = login(&http, &url, "root", "RootPass-123!").await;
    post(&http, &url, &root, "CREATE NAMESPACE load").await;
    post(&http, &url, &root, "CREATE TABLE load.items (id BIGINT PRIMARY KEY, bucket INT NOT NULL, v INT, note TEXT) WITH (TYPE = 'USER')").await;
    let mut tokens = Vec::new();
    for u in 0..USERS {
        post(
            &http,
            &url,
            &root,
            &format!("CREATE USER 'u{u}' WITH PASSWORD 'Secret-u{u}-1' ROLE user"),
        )
        .await;
        tokens.push(login(&http, &url, &format!("u{u}"), &format!("Secret-u{u}-1")).await);
    }
    let shared = Arc::new(Shared {
        sent: Mutex::new(HashMap::new()),
        latencies_us: Mutex::new(Vec::new()),
        events: AtomicU64::new(0),
    });

    // Subscribers: one socket per user, ten subscriptions (one per bucket) each.
    let ws_url = format!("{}/v1/ws", url.replacen("http", "ws", 1));
    let mut readers = Vec::new();
    let mut ready = Vec::new();
    for token in tokens.iter() {
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("ws");
        ws.send(Message::Text(json!({"type": "authenticate", "method": "jwt", "token": token, "protocol": {"serialization": "json", "compression": "gzip"}}).to_string().into())).await.expect("send");
        for b in 0..SUBS_PER_USER {
            ws.send(Message::Text(json!({"type": "subscribe", "subscription": {"id": format!("b{b}"), "sql": format!("SELECT * FROM load.items WHERE bucket = {b}"), "options": {"batch_size": 500}}}).to_string().into())).await.expect("send");
        }
        let (tx_ready, rx_ready) = tokio::sync::oneshot::channel::<()>();
        ready.push(rx_ready);
        let shared = shared.clone();
        let (mut sink, mut stream) = ws.split();
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let reader = tokio::spawn(async move {
            let mut sets: Vec<Rows> = vec![HashMap::new(); SUBS_PER_USER];
            let mut acked = 0;
            let mut tx_ready = Some(tx_ready);
            let mut ping = tokio::time::interval(Duration::from_secs(4));
            loop {
                let m = tokio::select! {
                    _ = stop_rx.changed() => break,
                    _ = ping.tick() => {
                        let _ = sink.send(Message::Text(r#"{"type":"ping"}"#.into())).await;
                        continue;
                    }
                    m = stream.next() => m,
                };
                let Some(Ok(m)) = m else {
                    panic!("socket closed unexpectedly")
                };
                let v: Value = match m {
                    Message::Text(t) => serde_json::from_str(t.as_str()).expect("json"),
                    Message::Binary(b) => {
                        let mut s = String::new();
                        flate2::read::GzDecoder::new(&b[..])
                            .read_to_string(&mut s)
                            .expect("gzip");
                        serde_json::from_str(&s).expect("json")
                    }
                    _ => continue,
                };
                let sub: usize = v["subscription_id"]
                    .as_str()
                    .and_then(|s| s[1..].parse().ok())
                    .unwrap_or(0);
                match v["type"].as_str() {
                    Some("initial_data_batch") => {
                        for r in v["rows"].as_array().into_iter().flatten() {
                            sets[sub].insert(
                                r["id"].as_str().unwrap_or("").into(),
                                r.as_object().cloned().unwrap_or_default(),
                            );
                        }
                        acked += 1;
                        if acked == SUBS_PER_USER {
                            if let Some(t) = tx_ready.take() {
                                let _ = t.send(());
                            }
                        }
                    }
                    Some("change") => {
                        shared.events.fetch_add(1, Ordering::Relaxed);
                        if v["change_type"] == "insert" {
                            let id = v["rows"][0]["id"].as_str().unwrap_or("").to_string();
                            if let Some(t) = shared.sent.lock().unwrap().get(&id) {
                                shared
                                    .latencies_us
                                    .lock()
                                    .unwrap()
                                    .push(t.elapsed().as_micros() as u64);
                            }
                        }
                        apply(&mut sets[sub], &v);
                    }
                    Some("error") => panic!("server error: {v}"),
                    _ => {}
                }
            }
            sets
        });
        readers.push((reader, stop_tx));
    }
    for r in ready {
        r.await.expect("subscriptions ready");
    }
    println!(
        "load: {} subscriptions on {} sockets ready; writing {rate} inserts/s for {secs} s",
        USERS * SUBS_PER_USER,
        USERS
    );

    // Writers: paced inserts, with an update every 10th and a delete every 20th write.
    let start = Instant::now();
    let total = rate * secs;
    let mut handles = Vec::new();
    let next_id = Arc::new(AtomicU64::new(1));
    let http_lat = Arc::new(Mutex::new(Vec::<u64>::new()));
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..total {
        let due = start + Duration::from_micros(i * 1_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let u = (i as usize) % USERS;
        let token = tokens[u].clone();
        let (http, url, shared, next_id, http_lat, sem) = (
            http.clone(),
            url.clone(),
            shared.clone(),
            next_id.clone(),
            http_lat.clone(),
            sem.clone(),
        );
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.expect("semaphore");
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            // Spread every user's rows over all ten buckets.
            let bucket = (id / USERS as u64) % SUBS_PER_USER as u64;
            shared.sent.lock().unwrap().insert(id.to_string(), Instant::now());
            let t = Instant::now();
            post(&http, &url, &token, &format!("INSERT INTO load.items (id, bucket, v, note) VALUES ({id}, {bucket}, 0, 'n{id}')")).await;
            if id % 10 == 0 {
                post(&http, &url, &token, &format!("UPDATE load.items SET v = v + 1, note = NULL WHERE id = {id}")).await;
            }
            if id % 20 == 5 {
                post(&http, &url, &token, &format!("DELETE FROM load.items WHERE id = {id}")).await;
            }
            http_lat.lock().unwrap().push(t.elapsed().as_micros() as u64);
        }));
    }
    for h in handles {
        h.await.expect("writer");
    }
    let write_secs = start.elapsed().as_secs_f64();
    // Let the last events arrive.
    let mut last = shared.events.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = shared.events.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let mut failures = 0;
    let mut rows_checked = 0;
    for (u, (reader, stop)) in readers.into_iter().enumerate() {
        let _ = stop.send(true);
        let sets = reader.await.expect("reader");
        for (b, set) in sets.iter().enumerate() {
            let v = post(
                &http,
                &url,
                &tokens[u],
                &format!("SELECT * FROM load.items WHERE bucket = {b} LIMIT 1000"),
            )
            .await;
            let schema: Vec<String> = v["results"][0]["schema"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_string())
                .collect();
            let mut expected: Rows = HashMap::new();
            for r in v["results"][0]["rows"].as_array().unwrap() {
                let m: Map<String, Value> = schema
                    .iter()
                    .cloned()
                    .zip(r.as_array().unwrap().iter().cloned())
                    .collect();
                expected.insert(m["id"].as_str().unwrap().to_string(), m);
            }
            // Update payloads omit `_deleted` (always false for live rows).
            let normalise = |s: &Rows| -> Rows {
                s.iter()
                    .map(|(k, m)| {
                        let mut m = m.clone();
                        m.insert("_deleted".into(), json!(false));
                        (k.clone(), m)
                    })
                    .collect()
            };
            rows_checked += expected.len();
            if normalise(set) != normalise(&expected) {
                failures += 1;
                eprintln!(
                    "MISMATCH user u{u} bucket {b}: {} materialised vs {} in SQL",
                    set.len(),
                    expected.len()
                );
            }
        }
    }
    let mut lat = shared.latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    let mut hl = http_lat.lock().unwrap().clone();
    hl.sort_unstable();
    let events = shared.events.load(Ordering::Relaxed);
    println!("load: {total} inserts in {write_secs:.1} s = {:.0} inserts/s (plus {} updates, {} deletes)", total as f64 / write_secs, total / 10, total / 20);
    println!(
        "load: {events} change events delivered = {:.0} events/s",
        events as f64 / write_secs
    );
    println!(
        "load: insert->event latency ms p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}",
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "load: write request latency ms p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}",
        pct(&hl, 0.5),
        pct(&hl, 0.95),
        pct(&hl, 0.99),
        pct(&hl, 1.0)
    );
    println!(
        "load: {} subscriptions checked, {rows_checked} rows, {failures} mismatches",
        USERS * SUBS_PER_USER
    );
    server.shutdown().await;
    if failures > 0 {
        std::process::exit(1);
    }
    println!("load: OK");
}
