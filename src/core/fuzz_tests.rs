//! A dependency-free, seeded, coverage-free mutation fuzzer for every decoder fed from the
//! network (stable toolchain: no cargo-fuzz). Seeds are the recorded conversations of
//! `shared/kalamdb-wire` (WebSocket frames, HTTP answers, topic batches) plus valid
//! encodings (gzip frames, SeqIds, cells); mutations are bit flips, interesting bytes,
//! truncation, deletion, duplication, splices between seeds, huge numbers, deep nesting and
//! structured JSON edits. Every input must give a value or a typed `KalamError` (non-empty
//! code and message), never a panic. In the release wasm build a panic aborts the one wasm
//! instance every client on the page shares (pkg-templates/client/README.md, "Panics").
//!
//! - `cargo test -p kalam-wasm --lib fuzz_smoke`: a fixed 3,000 inputs (part of every run).
//! - `KALAM_FUZZ_SECS=45 cargo test -p kalam-wasm --lib fuzz_for_a_while -- --ignored
//!   --nocapture`: time-bounded (scripts/test.sh runs it); `KALAM_FUZZ_SEED=n` picks the
//!   seed (printed), so a finding replays exactly. Longer: `KALAM_FUZZ_SECS=1800`.
//!   A panicking input is written to `tests/output/fuzz-<target>-<seed>-<n>.bin`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::core::json::{json, Value};

use super::error::KalamError;
use super::live::connection::{LiveConfig, LiveCore, Output, SubscribeOptions, SubscriptionMode};
use super::live::{frames, gzip, Materializer};
use super::schema::DataType;
use super::seq_id::SeqId;

// ----- randomness -----------------------------------------------------------------------

/// splitmix64: tiny, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ----- seeds ------------------------------------------------------------------------------

#[derive(Default)]
struct Corpus {
    /// Inbound WebSocket frames (JSON text).
    ws: Vec<Vec<u8>>,
    /// HTTP answers: (status, body text).
    http: Vec<(u16, String)>,
    /// Topic consume answers.
    topics: Vec<(u16, String)>,
    /// JSON cells with a type, from recorded result schemas.
    cells: Vec<(Value, Value)>,
}

fn load_corpus() -> Corpus {
    let dir = format!("{}/../shared/kalamdb-wire", env!("CARGO_MANIFEST_DIR"));
    let mut corpus = Corpus::default();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    for path in names {
        let doc: Value =
            crate::core::json::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for ex in doc["exchanges"].as_array().into_iter().flatten() {
            if ex["kind"] == "ws" {
                for ev in ex["events"].as_array().into_iter().flatten() {
                    if ev["dir"] == "in" {
                        let text = match &ev["data"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        corpus.ws.push(text.into_bytes());
                    }
                }
                continue;
            }
            let status = ex["response"]["status"].as_u64().unwrap_or(200) as u16;
            let body = match &ex["response"]["body"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let path = ex["request"]["path"].as_str().unwrap_or_default();
            if path.contains("/topics/") {
                corpus.topics.push((status, body.clone()));
            }
            for result in ex["response"]["body"]["results"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let schema = result["schema"].as_array().cloned().unwrap_or_default();
                for row in result["rows"].as_array().into_iter().flatten() {
                    for (field, cell) in schema.iter().zip(row.as_array().into_iter().flatten()) {
                        corpus
                            .cells
                            .push((field["data_type"].clone(), cell.clone()));
                    }
                }
            }
            corpus.http.push((status, body));
        }
    }
    assert!(
        corpus.ws.len() > 20 && corpus.http.len() > 50,
        "recordings found"
    );
    corpus
}

// ----- mutations --------------------------------------------------------------------------

const INTERESTING: &[&[u8]] = &[
    b"18446744073709551616",
    b"-9223372036854775809",
    b"9223372036854775807",
    b"1e999999",
    b"-0",
    b"0.0000000000000000000000000001",
    b"null",
    b"\"\\ud800\"",
    b"\"\\u0000\"",
    b"{}",
    b"[]",
    b"\"\"",
    b"true",
    b"\xff\xfe",
    b"\x1f\x8b",
];

fn mutate_bytes(rng: &mut Rng, mut data: Vec<u8>, others: &[Vec<u8>]) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(b"\0\xff\"{}[]\\:,.-0123456789eE \x7f");
            }
            2 => data.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let from = rng.below(len);
                let to = (from + rng.below(64)).min(len);
                data.drain(from..to);
            }
            4 if len > 0 => {
                let from = rng.below(len);
                let to = (from + rng.below(256)).min(len);
                let chunk = data[from..to].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            5 if !others.is_empty() => {
                let other = rng.pick(others);
                let from = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                let cut = (at + rng.below(len - at + 1)).min(len);
                data.splice(at..cut, other[from..].iter().copied());
            }
            6 => {
                // Replace a run of digits (or insert) with a huge or odd number.
                let at = rng.below(len + 1);
                let mut end = at;
                while end < len && data[end].is_ascii_digit() {
                    end += 1;
                }
                data.splice(at..end, rng.pick(INTERESTING).iter().copied());
            }
            7 => {
                let most = if rng.chance(4) { 5000 } else { 200 };
                let depth = 1 + rng.below(most);
                let (open, close) = if rng.chance(2) {
                    (b'[', b']')
                } else {
                    (b'{', b'}')
                };
                let mut out = vec![open; depth];
                out.extend_from_slice(&data);
                out.extend(std::iter::repeat_n(close, depth));
                data = out;
            }
            _ => {
                let at = rng.below(len + 1);
                let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, junk);
            }
        }
    }
    data
}

fn odd_value(rng: &mut Rng, donor: &Value) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(u64::MAX),
        3 => json!(i64::MIN),
        4 => json!(1e308),
        5 => json!(-0.0),
        6 => json!(""),
        7 => json!("9".repeat(1 + rng.below(40))),
        8 => json!("x".repeat(rng.below(20_000))),
        9 => {
            let mut v = json!([]);
            for _ in 0..rng.below(120) {
                v = json!([v]);
            }
            v
        }
        10 => json!({"": null, "_seq": "1", "id": {"$bigint": "1"}}),
        11 => json!("-9223372036854775808"),
        12 => json!("2026-13-40T25:61:61.999999999+99:99"),
        _ => donor.clone(),
    }
}

/// Replaces (or deletes) one random node of a JSON document.
fn mutate_value(rng: &mut Rng, v: &mut Value, donor: &Value, depth: usize) {
    // Mostly deep, plausible edits: strictly typed protocol fields near the top reject
    // nearly anything, and a mutant that never parses tests only the parser.
    let descend = depth < 12 && !rng.chance(8);
    match v {
        Value::Object(map) if descend && !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            if rng.chance(6) {
                map.remove(&key);
            } else {
                mutate_value(rng, map.get_mut(&key).unwrap(), donor, depth + 1);
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.below(items.len());
            match rng.below(8) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let copy = items[i].clone();
                    items.insert(i, copy);
                }
                _ => mutate_value(rng, &mut items[i], donor, depth + 1),
            }
        }
        _ if rng.chance(2) => *v = odd_value(rng, donor),
        _ => *v = near_value(rng, v),
    }
}

/// A value of the same kind, a little off.
fn near_value(rng: &mut Rng, v: &Value) -> Value {
    match v {
        Value::String(s) => match rng.below(4) {
            0 => json!(format!("{s}{}", rng.below(10))),
            1 => json!(s
                .chars()
                .take(rng.below(s.chars().count() + 1))
                .collect::<String>()),
            2 => json!((rng.next() as i64).to_string()),
            _ => json!(s.to_uppercase()),
        },
        Value::Number(n) => match (n.as_i64(), rng.below(4)) {
            (Some(i), 0) => json!(i.wrapping_add(1)),
            (Some(i), 1) => json!(i.wrapping_neg()),
            (Some(i), 2) => json!(i as f64 + 0.5),
            _ => json!(rng.next() as i64),
        },
        Value::Bool(b) => json!(!b),
        other => other.clone(),
    }
}

fn mutate_json_text(rng: &mut Rng, text: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    // Mostly structured edits, so that many mutants still parse and reach the code behind
    // the parser; byte-level damage for the rest.
    if !others.is_empty() && !rng.chance(4) {
        if let Ok(mut v) = crate::core::json::parse_slice(text) {
            let donor: &Vec<u8> = rng.pick(others);
            let donor = crate::core::json::parse_slice(donor).unwrap_or(Value::Null);
            for _ in 0..=rng.below(2) {
                mutate_value(rng, &mut v, &donor, 0);
            }
            let out = v.to_string().into_bytes();
            return if rng.chance(8) {
                mutate_bytes(rng, out, others)
            } else {
                out
            };
        }
    }
    mutate_bytes(rng, text.to_vec(), others)
}

// ----- targets ----------------------------------------------------------------------------

/// A typed error has a code and a message.
fn typed<T>(result: Result<T, KalamError>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => !e.code.is_empty() && !e.message.is_empty(),
    }
}

const MAX_INFLATED: usize = 1 << 20;

/// One live core, connected, with a materialized subscription `sub-1` whose frames reach the
/// materializer (and an events one, `sub-2`).
fn connected_core() -> LiveCore {
    let mut core = LiveCore::with_jitter(
        LiveConfig::new("ws://127.0.0.1:1/v1/ws"),
        Box::new(|c| c / 2),
    );
    core.subscribe(
        0,
        "SELECT * FROM wire445072.inbox",
        SubscribeOptions {
            limit: Some(50),
            ..Default::default()
        },
        SubscriptionMode::Materialized,
    )
    .unwrap();
    core.subscribe(
        0,
        "SELECT * FROM wire445072.inbox",
        SubscribeOptions::default(),
        SubscriptionMode::Events,
    )
    .unwrap();
    core.drain_outputs();
    core.token_ready(0, "jwt".into());
    core.socket_opened(0, 1);
    core.socket_text(0, 1, r#"{"type":"auth_success","user":"alice","role":"user","protocol":{"serialization":"json","compression":"gzip"}}"#);
    // Both snapshots complete (empty), so change frames are applied and emitted at once.
    for id in ["sub-1", "sub-2"] {
        let control = r#"{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":null}"#;
        core.socket_text(0, 1, &format!(r#"{{"type":"subscription_ack","subscription_id":"{id}","total_rows":0,"batch_control":{control},"schema":[{{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]}}]}}"#));
        core.socket_text(0, 1, &format!(r#"{{"type":"initial_data_batch","subscription_id":"{id}","rows":[],"batch_control":{control}}}"#));
    }
    while !core.drain_outputs().is_empty() {}
    core
}

struct Fuzzer {
    rng: Rng,
    corpus: Corpus,
    ws_renamed: Vec<Vec<u8>>,
    /// The `change` frames among them.
    changes: Vec<Vec<u8>>,
    gz: Vec<Vec<u8>>,
    http_bodies: Vec<Vec<u8>>,
    core: LiveCore,
    core_uses: u32,
    execs: u64,
    per_target: [u64; TARGETS.len()],
    /// Inputs a target accepted (decoded, or changed rows): how deep the mutants got.
    accepted: [u64; TARGETS.len()],
    errors: u64,
}

const TARGETS: [&str; 10] = [
    "ws-text",
    "ws-gzip",
    "gunzip",
    "live-core",
    "http-sql",
    "http-auth",
    "topics",
    "cells",
    "seq-id",
    "materializer",
];

impl Fuzzer {
    fn new(seed: u64) -> Fuzzer {
        let corpus = load_corpus();
        // Frames addressed to the fuzzed core's subscriptions, so they get past routing.
        let ws_renamed: Vec<Vec<u8>> = corpus
            .ws
            .iter()
            .map(|f| {
                let mut v: Value = crate::core::json::parse_slice(f).unwrap_or(Value::Null);
                if v.get("subscription_id").is_some() {
                    v["subscription_id"] = json!("sub-1");
                }
                v.to_string().into_bytes()
            })
            .collect();
        let mut changes: Vec<Vec<u8>> = ws_renamed
            .iter()
            .filter(|f| String::from_utf8_lossy(f).contains(r#""type":"change""#))
            .cloned()
            .collect();
        assert!(changes.len() >= 4, "recorded change frames");
        // Valid encodings of the other change shapes (PROTOCOL.md §4.7).
        for frame in [
            r#"{"type":"change","subscription_id":"sub-1","change_type":"insert","rows":[{"id":"7","body":"a","_seq":"900","_deleted":false},{"id":"8","_seq":"901"}]}"#,
            r#"{"type":"change","subscription_id":"sub-1","change_type":"update","rows":[{"id":"9","body":"b","_seq":"902"}],"old_values":[{"id":"7","body":"a","_seq":"900"}]}"#,
            r#"{"type":"change","subscription_id":"sub-1","change_type":"delete","old_values":[{"row_id":"alice:901"}]}"#,
            r#"{"type":"change","subscription_id":"sub-1","change_type":"delete","old_values":[{}]}"#,
            r#"{"type":"change","subscription_id":"sub-2","change_type":"delete","old_values":[{"id":"9","_seq":"903","_deleted":true}]}"#,
        ] {
            changes.push(frame.as_bytes().to_vec());
        }
        let gz = corpus.ws.iter().map(|f| gzip::gzip_for_tests(f)).collect();
        let http_bodies = corpus
            .http
            .iter()
            .chain(&corpus.topics)
            .map(|(_, b)| b.clone().into_bytes())
            .collect();
        Fuzzer {
            rng: Rng(seed),
            corpus,
            ws_renamed,
            changes,
            gz,
            http_bodies,
            core: connected_core(),
            core_uses: 0,
            execs: 0,
            per_target: [0; TARGETS.len()],
            accepted: [0; TARGETS.len()],
            errors: 0,
        }
    }

    fn hit(&mut self, target: usize, accepted: bool) {
        self.accepted[target] += u64::from(accepted);
    }

    /// One input against one target; panics propagate to the caller.
    fn exec(&mut self, target: usize, input: &[u8]) -> bool {
        let text = String::from_utf8_lossy(input);
        match target {
            0 => {
                let a = typed(frames::decode_text(&text));
                let _ = frames::peek_batch(input);
                let decoded = frames::decode_json(input);
                self.hit(target, decoded.is_ok());
                a && typed(decoded)
            }
            1 => {
                let decoded = frames::decode_binary(input, MAX_INFLATED);
                self.hit(target, decoded.is_ok());
                typed(decoded)
            }
            2 => match gzip::gunzip(input, MAX_INFLATED) {
                Ok(out) => {
                    self.hit(target, true);
                    out.len() <= MAX_INFLATED
                }
                Err(e) => e.code == "PROTOCOL",
            },
            3 => {
                if self.rng.chance(3) {
                    let gz = gzip::gzip_for_tests(input);
                    self.core.socket_binary(1, 1, &gz);
                } else {
                    self.core.socket_text(1, 1, &text);
                }
                let mut rows = false;
                loop {
                    let outs = self.core.drain_outputs();
                    if outs.is_empty() {
                        break;
                    }
                    rows |= outs.iter().any(|o| matches!(o, Output::Rows { .. }));
                }
                self.hit(target, rows);
                let _ = self.core.rows("sub-1").map(|rows| rows.count());
                true
            }
            4 => {
                let status = *self.rng.pick(&[
                    200u16, 200, 200, 200, 400, 401, 403, 404, 429, 500, 502, 503,
                ]);
                let table = super::http::sql::TableRef::parse("ns.t").ok();
                let decoded =
                    super::http::envelope::decode_sql_response(status, &text, table.as_ref());
                self.hit(target, decoded.is_ok());
                let a = typed(decoded);
                let e = super::http::envelope::parse_error_body(status, &text);
                a && !e.code.is_empty()
            }
            5 => {
                use super::http::auth;
                let status = *self.rng.pick(&[200u16, 200, 200, 400, 401, 429]);
                let login = auth::parse_login_response(status, &text);
                self.hit(target, login.is_ok());
                let a = typed(login);
                let b = typed(auth::parse_me_response(status, &text));
                let c = typed(auth::jwt_claims(&text));
                let _ = auth::parse_rfc3339_ms(&text);
                let d = typed(auth::Credentials::from_json(&text));
                a && b && c && d
            }
            6 => {
                let status = *self.rng.pick(&[200u16, 200, 200, 400, 403, 404]);
                let batch = super::topics::parse_consume_response(status, &text, "g");
                self.hit(target, batch.is_ok());
                let a = typed(batch);
                let b = typed(super::topics::parse_ack_response(status, &text));
                let _ = super::topics::decode_payload(&text);
                a && b
            }
            7 => {
                let Ok(pair) = crate::core::json::parse_slice(input) else {
                    return true;
                };
                let (ty, cell) = match pair {
                    Value::Array(mut a) if a.len() == 2 => {
                        let cell = a.pop().unwrap();
                        (a.pop().unwrap(), cell)
                    }
                    other => (json!("Text"), other),
                };
                if let Ok(data_type) = DataType::from_wire(&ty) {
                    let decoded =
                        super::cells::decode_cell(&data_type, cell.clone(), Some(("ns", "t")));
                    self.hit(target, decoded.is_ok());
                    let _ = super::cells::decode_cell_ref(&data_type, &cell, None);
                }
                let _ = super::http::files::FileRef::from_value(&cell);
                true
            }
            8 => {
                let _ = SeqId::parse(&text);
                match crate::core::json::parse_slice(input) {
                    Ok(v) => {
                        let seq = SeqId::from_json(&v);
                        self.hit(target, seq.is_ok());
                        typed(seq)
                    }
                    Err(_) => true,
                }
            }
            _ => {
                // Change frames straight into a materializer with odd keys and limits.
                let Ok(frames::ServerMessage::Change(change)) = frames::decode_json(input) else {
                    return true;
                };
                let keys = match self.rng.below(3) {
                    0 => vec![],
                    1 => vec!["id".to_string(), "_seq".to_string()],
                    _ => vec!["row_id".to_string()],
                };
                let mut m = Materializer::new(keys, [None, Some(1), Some(3)][self.rng.below(3)]);
                for _ in 0..3 {
                    let _ = m.apply_change(change.clone());
                    let _ = m.take_delta();
                }
                self.hit(target, !m.is_empty());
                true
            }
        }
    }

    fn input_for(&mut self, target: usize) -> Vec<u8> {
        let r = &mut self.rng;
        match target {
            0 | 3 | 9 => {
                // The live core and the materializer get change frames mostly.
                let pool = if target != 0 && !r.chance(3) {
                    &self.changes
                } else {
                    &self.ws_renamed
                };
                let base = r.pick(pool).clone();
                mutate_json_text(r, &base, &self.ws_renamed)
            }
            1 | 2 => {
                let base = r.pick(&self.gz).clone();
                if target == 1 && r.chance(2) {
                    // Valid gzip around a mutated frame: the decoder behind the inflater.
                    let frame = r.pick(&self.ws_renamed).clone();
                    gzip::gzip_for_tests(&mutate_json_text(r, &frame, &self.ws_renamed))
                } else if r.chance(5) {
                    // A frame whose gzip header lies about its size or sections.
                    let mut g = base;
                    let n = g.len();
                    if n >= 18 {
                        match r.below(3) {
                            0 => g[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes()),
                            1 => g[3] |= 0x04 | 0x08 | 0x10 | 0x02,
                            _ => g.splice(10..10, [0xff, 0xff]).for_each(drop),
                        }
                    }
                    g
                } else {
                    mutate_bytes(r, base, &self.gz)
                }
            }
            4..=6 => {
                let base = r.pick(&self.http_bodies).clone();
                mutate_json_text(r, &base, &self.http_bodies)
            }
            7 => {
                let (ty, cell) = r.pick(&self.corpus.cells).clone();
                let mut pair = json!([ty, cell]);
                let donor = r.pick(&self.corpus.cells).1.clone();
                mutate_value(r, &mut pair, &donor, 0);
                pair.to_string().into_bytes()
            }
            _ => {
                let n = r.next() as i64;
                let base = match r.below(4) {
                    0 => n.to_string(),
                    1 => format!("\"{n}\""),
                    2 => format!("{}", n as f64),
                    _ => format!("\"{}\"", (n as u64)),
                };
                mutate_bytes(r, base.into_bytes(), &[])
            }
        }
    }

    /// One mutated input on a random target. `Err` names a panicking or untyped input.
    fn step(&mut self, seed: u64) -> Result<(), String> {
        let target = self.rng.below(TARGETS.len());
        if target == 3 {
            self.core_uses += 1;
            // Often fresh: a mutated ack or batch sends a subscription back to loading.
            if self.core_uses > 40 {
                self.core = connected_core();
                self.core_uses = 0;
            }
        }
        let input = self.input_for(target);
        self.execs += 1;
        self.per_target[target] += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| self.exec(target, &input)));
        let failure = match outcome {
            Ok(true) => return Ok(()),
            Ok(false) => "an untyped error",
            Err(_) => "a panic",
        };
        self.errors += 1;
        let name = format!("fuzz-{}-{seed}-{}.bin", TARGETS[target], self.execs);
        let dir = format!("{}/tests/output", env!("CARGO_MANIFEST_DIR"));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(format!("{dir}/{name}"), &input);
        Err(format!(
            "{failure} in {} (seed {seed}, exec {}): tests/output/{name}: {:?}",
            TARGETS[target],
            self.execs,
            String::from_utf8_lossy(&input[..input.len().min(400)])
        ))
    }
}

fn run(seed: u64, budget: Budget) -> Fuzzer {
    let mut f = Fuzzer::new(seed);
    let started = Instant::now();
    loop {
        let done = match budget {
            Budget::Execs(n) => f.execs >= n,
            Budget::Time(d) => started.elapsed() >= d,
        };
        if done {
            break;
        }
        if let Err(e) = f.step(seed) {
            panic!("{e}");
        }
    }
    f
}

#[derive(Clone, Copy)]
enum Budget {
    Execs(u64),
    Time(Duration),
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

#[test]
fn fuzz_smoke() {
    let f = run(1, Budget::Execs(3_000));
    assert!(f.per_target.iter().all(|&n| n > 100), "{:?}", f.per_target);
}

#[test]
#[ignore = "time-bounded fuzzing: KALAM_FUZZ_SECS (default 30), run by scripts/test.sh"]
fn fuzz_for_a_while() {
    let secs = env_u64("KALAM_FUZZ_SECS").unwrap_or(30);
    let seed = env_u64("KALAM_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
    });
    let started = Instant::now();
    let f = run(seed, Budget::Time(Duration::from_secs(secs)));
    let elapsed = started.elapsed().as_secs_f64();
    let per: Vec<String> = TARGETS
        .iter()
        .zip(f.per_target.iter().zip(f.accepted))
        .map(|(t, (n, ok))| format!("{t} {n} ({ok} accepted)"))
        .collect();
    eprintln!(
        "fuzz: seed {seed}: {} inputs in {elapsed:.1} s ({:.0}/s), {} findings; {}",
        f.execs,
        f.execs as f64 / elapsed,
        f.errors,
        per.join(", ")
    );
}

/// A tiny frame whose gzip trailer claims 64 MiB is refused before anything is allocated
/// for it (DEFLATE cannot expand more than 1032:1).
#[test]
fn gzip_refuses_sizes_the_stream_cannot_produce() {
    let mut g = gzip::gzip_for_tests(b"{\"type\":\"ping\"}");
    let n = g.len();
    g[n - 4..].copy_from_slice(&(64u32 << 20).to_le_bytes());
    let err = gzip::gunzip(&g, usize::MAX).unwrap_err();
    assert_eq!(err.code, "PROTOCOL");
    assert!(err.message.contains("can produce"), "{}", err.message);
    // An honest highly compressible frame still inflates.
    let zeros = vec![b'0'; 1 << 20];
    let g = gzip::gzip_for_tests(&zeros);
    assert!(g.len() * 1032 >= zeros.len());
    assert_eq!(gzip::gunzip(&g, 2 << 20).unwrap(), zeros);
}
