//! The ordered window against a sort-and-slice oracle over the materializer's full set.

use std::cmp::Ordering;

use crate::core::json::{json, Number, Value};

use super::*;
use crate::core::live::materializer::Materializer;
use crate::core::live::sql::split_live_order;
use crate::core::test_rng::Rng;

fn field(name: &str, data_type: DataType, index: u32) -> SchemaField {
    SchemaField {
        name: name.into(),
        data_type,
        index,
        flags: if name == "id" {
            vec!["pk".into()]
        } else {
            vec![]
        },
    }
}

/// The column types under test, with a value generator and an oracle comparator that shares
/// no code with the window (i128 for exact numbers: decimals are scaled by 100).
#[derive(Clone, Copy, Debug)]
enum Col {
    BigInt,
    Decimal,
    Timestamp,
    Text,
    Bool,
    Double,
}

/// DOUBLE texts as the server writes them (shortest round-trip), some values in two
/// spellings, ordered by the oracle as the f64s they parse to.
const DOUBLES: [&str; 14] = [
    "-0.0",
    "0",
    "1e-7",
    "0.0000001",
    "1E-7",
    "-2.5",
    "0.30000000000000004",
    "0.3",
    "5e-324",
    "1.7976931348623157e308",
    "-1.7976931348623157e308",
    "1e21",
    "-3",
    "-0",
];

impl Col {
    fn data_type(self) -> DataType {
        match self {
            Col::BigInt => DataType::BigInt,
            Col::Decimal => DataType::Decimal {
                precision: 20,
                scale: 2,
            },
            Col::Timestamp => DataType::Timestamp,
            Col::Text => DataType::Text,
            Col::Bool => DataType::Boolean,
            Col::Double => DataType::Double,
        }
    }

    fn value(self, rng: &mut Rng) -> Value {
        if rng.below(8) == 0 {
            return Value::Null;
        }
        // A few distinct values so ties (broken by key) are common.
        let pick = rng.below(12) as i64 - 6;
        match self {
            Col::BigInt => {
                let base: i128 = 9_007_199_254_740_992; // 2^53: f64 would merge neighbours
                json!((base * pick.signum() as i128 + pick as i128).to_string())
            }
            Col::Decimal => json!(
                ["10.5", "9.75", "-0.5", "0", "100", "-12.25", "9.7", "10.50"]
                    [rng.below(8) as usize]
            ),
            Col::Timestamp => json!(1_700_000_000_000_000i64 + pick * 1_000_001),
            Col::Text => json!(["b", "a", "B", "é", "ab", "", "z", "Ä"][rng.below(8) as usize]),
            Col::Bool => json!(pick > 0),
            Col::Double => {
                let text = DOUBLES[rng.below(DOUBLES.len() as u64) as usize];
                Value::Number(Number::from_text(text).unwrap())
            }
        }
    }

    fn oracle_cmp(self, a: &Value, b: &Value) -> Ordering {
        let num = |v: &Value| -> i128 {
            match self {
                Col::BigInt => v.as_str().unwrap().parse().unwrap(),
                Col::Decimal => {
                    let s = v.as_str().unwrap();
                    let neg = s.starts_with('-');
                    let s = s.trim_start_matches('-');
                    let (i, f) = s.split_once('.').unwrap_or((s, ""));
                    let f = format!("{f:0<2}");
                    let m = i.parse::<i128>().unwrap() * 100 + f.parse::<i128>().unwrap();
                    if neg {
                        -m
                    } else {
                        m
                    }
                }
                Col::Timestamp => v.as_i64().unwrap() as i128,
                _ => unreachable!(),
            }
        };
        match self {
            Col::Text => a.as_str().unwrap().cmp(b.as_str().unwrap()),
            Col::Bool => a.as_bool().unwrap().cmp(&b.as_bool().unwrap()),
            Col::Double => {
                let f = |v: &Value| v.as_number().unwrap().to_string().parse::<f64>().unwrap();
                f(a).total_cmp(&f(b))
            }
            _ => num(a).cmp(&num(b)),
        }
    }
}

fn oracle_window(
    m: &Materializer,
    order: &LiveOrder,
    cols: &[(String, Col)],
) -> Vec<(RowKey, Row)> {
    let mut all: Vec<(RowKey, Row)> = m.iter().map(|(k, r)| (k.clone(), r.clone())).collect();
    all.sort_by(|(ka, ra), (kb, rb)| {
        for k in &order.keys {
            let col = cols.iter().find(|(n, _)| *n == k.column).unwrap().1;
            let (a, b) = (&ra[k.column.as_str()], &rb[k.column.as_str()]);
            let o = match (a.is_null(), b.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if k.nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, true) => {
                    if k.nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, false) if k.desc => col.oracle_cmp(b, a),
                (false, false) => col.oracle_cmp(a, b),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        ka.as_str().cmp(kb.as_str())
    });
    all.into_iter()
        .skip(order.offset)
        .take(order.limit.unwrap_or(usize::MAX))
        .collect()
}

/// Applies a window delta to a mirror as the JS shell does, checking that it is exact.
fn apply_checked(mirror: &mut Vec<(RowKey, Row)>, d: &RowsDelta, step: usize) {
    if d.reset {
        mirror.clear();
    }
    for key in &d.removed {
        let at = mirror.iter().position(|(k, _)| k == key);
        let at = at.unwrap_or_else(|| panic!("step {step}: removed {key} was not shown"));
        mirror.remove(at);
    }
    for KeyedRow { key, row } in &d.updated {
        let held = mirror.iter_mut().find(|(k, _)| k == key);
        let held = held.unwrap_or_else(|| panic!("step {step}: updated {key} was not shown"));
        assert_ne!(
            held.1, **row,
            "step {step}: {key} reported updated, unchanged"
        );
        held.1 = (**row).clone();
    }
    for KeyedRow { key, row } in &d.inserted {
        assert!(
            !mirror.iter().any(|(k, _)| k == key),
            "step {step}: inserted {key} already shown"
        );
        mirror.push((key.clone(), (**row).clone()));
    }
    if let Some(order) = &d.order {
        assert_eq!(order.len(), mirror.len(), "step {step}: order length");
        let mut next = Vec::with_capacity(order.len());
        for key in order {
            let at = mirror.iter().position(|(k, _)| k == key).unwrap();
            next.push(mirror.swap_remove(at));
        }
        *mirror = next;
    }
}

fn make_row(rng: &mut Rng, seq: &mut i64, cols: &[(String, Col)], id: u64) -> Row {
    *seq += 1;
    let mut row = Row::new();
    row.insert("id", json!(id.to_string()));
    for (name, col) in cols {
        row.insert(name.as_str(), col.value(rng));
    }
    row.insert("_seq", json!(seq.to_string()));
    row
}

fn run(seed: u64, sql: &str, cols: &[(&str, Col)], steps: usize, keys: u64) -> usize {
    let (_, order) = split_live_order(sql).unwrap();
    let order = order.unwrap();
    let cols: Vec<(String, Col)> = cols.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    let mut schema = vec![field("id", DataType::BigInt, 0)];
    for (i, (name, col)) in cols.iter().enumerate() {
        schema.push(field(name, col.data_type(), i as u32 + 1));
    }
    schema.push(field("_seq", DataType::BigInt, 99));
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut seq = 0i64;
    let mut m = Materializer::new(vec!["id".into()], None);
    let mut w = OrderedWindow::new(order.clone());
    w.set_schema(&schema);
    let mut mirror: Vec<(RowKey, Row)> = Vec::new();
    let mut nonempty = 0;
    for step in 0..steps {
        let mut reset = false;
        match rng.below(100) {
            0..=39 => {
                let r = {
                    let id = rng.below(keys);
                    make_row(&mut rng, &mut seq, &cols, id)
                };
                m.upsert(r).unwrap();
            }
            40..=69 => {
                // Updates of held rows: sort key changes (incl. to and from NULL) or not.
                let held: Vec<RowKey> = m.iter().map(|(k, _)| k.clone()).collect();
                if let Some(key) = held.get(rng.below(held.len().max(1) as u64) as usize) {
                    let mut r = m.get(key).unwrap().clone();
                    let (name, col) = &cols[rng.below(cols.len() as u64) as usize];
                    if rng.below(3) > 0 {
                        r.insert(name.as_str(), col.value(&mut rng));
                    }
                    seq += 1;
                    r.insert("_seq", json!(seq.to_string()));
                    m.upsert(r).unwrap();
                }
            }
            70..=89 => {
                let id = rng.below(keys).to_string();
                let key = m.key_of(&Row::from(json!({"id": id}).as_object().unwrap().clone()));
                m.remove(&key.unwrap());
            }
            90..=94 => {
                // A snapshot batch of several rows at once.
                let rows = (0..rng.below(20) + 1)
                    .map(|_| {
                        let id = rng.below(keys);
                        make_row(&mut rng, &mut seq, &cols, id)
                    })
                    .collect();
                m.apply_snapshot_rows(rows).unwrap();
            }
            95..=97 => {
                // A resync: a staged snapshot with some rows gone and some changed.
                let mut staging = Materializer::new(vec!["id".into()], None);
                staging.set_tracking(false);
                let mut rows = Vec::new();
                for (_, r) in m.iter() {
                    match rng.below(4) {
                        0 => {}
                        1 => rows.push(make_row(
                            &mut rng,
                            &mut seq,
                            &cols,
                            r["id"].as_str().unwrap().parse().unwrap(),
                        )),
                        _ => rows.push(r.clone()),
                    }
                }
                for _ in 0..rng.below(5) {
                    rows.push({
                        let id = rng.below(keys);
                        make_row(&mut rng, &mut seq, &cols, id)
                    });
                }
                staging.apply_snapshot_rows(rows).unwrap();
                m.resync_from(staging);
            }
            _ => {
                // A reloaded snapshot: a fresh set, reported with `reset`.
                m = Materializer::new(vec!["id".into()], None);
                let rows = (0..rng.below(keys))
                    .map(|_| {
                        let id = rng.below(keys);
                        make_row(&mut rng, &mut seq, &cols, id)
                    })
                    .collect();
                m.apply_snapshot_rows(rows).unwrap();
                reset = true;
            }
        }
        let mut delta = m.take_delta();
        delta.reset = reset;
        let d = w.apply(delta);
        apply_checked(&mut mirror, &d, step);
        let want = oracle_window(&m, &order, &cols);
        assert_eq!(mirror, want, "seed {seed} step {step}: {sql}");
        assert_eq!(w.len(), m.len());
        nonempty += usize::from(!d.is_empty() || d.order.is_some());
    }
    nonempty
}

#[test]
fn window_matches_a_sort_and_slice_oracle() {
    let cases: &[(&str, &[(&str, Col)])] = &[
        (
            "SELECT * FROM app.t ORDER BY a DESC, b LIMIT 7",
            &[("a", Col::BigInt), ("b", Col::Text)],
        ),
        (
            "SELECT * FROM app.t WHERE x = 1 ORDER BY t.a NULLS FIRST LIMIT 5 OFFSET 3",
            &[("a", Col::Decimal)],
        ),
        (
            "SELECT * FROM app.t ORDER BY a DESC NULLS LAST, b ASC OFFSET 2 LIMIT 6;",
            &[("a", Col::Timestamp), ("b", Col::Bool)],
        ),
        (
            "SELECT * FROM app.t ORDER BY b, a DESC",
            &[("a", Col::Decimal), ("b", Col::Text)],
        ),
        (
            "SELECT * FROM app.t ORDER BY \"a\" LIMIT 1",
            &[("a", Col::BigInt)],
        ),
        (
            "SELECT * FROM app.t ORDER BY a DESC, b LIMIT 6 OFFSET 1",
            &[("a", Col::Double), ("b", Col::Text)],
        ),
    ];
    let mut total = 0;
    for (sql, cols) in cases {
        for seed in 1..=4 {
            let changed = run(seed, sql, cols, 1500, 40);
            assert!(
                changed > 100,
                "{sql} seed {seed}: only {changed} steps changed the window"
            );
            total += 1500;
        }
    }
    assert_eq!(total, 36_000);
}

#[test]
fn exact_numbers_and_text_order() {
    let e = |s: &str| {
        let (neg, digits, exp) = Decimal::parse(s, false).unwrap();
        Decimal::exact(neg, digits, exp)
    };
    assert!(e("10.5") > e("9.75"));
    assert!(e("-10.5") < e("-9.75"));
    assert!(e("9007199254740993") > e("9007199254740992"));
    assert_eq!(e("10.50"), e("010.5"));
    assert_eq!(e("-0"), e("0.000"));
    assert!(e("-0.01") < e("0"));
    assert!(Decimal::parse("1e5", false).is_none() && Decimal::parse("-", false).is_none());
    // Text by code point: uppercase before lowercase, 'é' (U+00E9) after 'z'.
    let t = |s: &str| Cell::Text(s.into());
    assert!(t("B") < t("a") && t("z") < t("é") && t("") < t("a"));
}

/// A rule that ignores the order: the window's own result is not trusted; the oracle is.
#[test]
fn a_row_that_does_not_change_never_moves_and_ties_go_by_key() {
    let (_, order) = split_live_order("SELECT * FROM app.t ORDER BY a LIMIT 3").unwrap();
    let mut w = OrderedWindow::new(order.unwrap());
    w.set_schema(&[
        field("id", DataType::BigInt, 0),
        field("a", DataType::BigInt, 1),
    ]);
    let mut m = Materializer::new(vec!["id".into()], None);
    for (id, a, seq) in [("1", "5", 1), ("2", "5", 2), ("3", "1", 3), ("4", "9", 4)] {
        m.upsert(Row::from(
            json!({"id": id, "a": a, "_seq": seq})
                .as_object()
                .unwrap()
                .clone(),
        ))
        .unwrap();
    }
    let d = w.apply(m.take_delta());
    let keys = |d: &RowsDelta| {
        d.order
            .clone()
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&d), [r#""3""#, r#""1""#, r#""2""#]);
    // Row 1 changes a column that is not the sort key: updated in place, no order.
    m.upsert(Row::from(
        json!({"id": "1", "a": "5", "x": 1, "_seq": 5})
            .as_object()
            .unwrap()
            .clone(),
    ))
    .unwrap();
    let d = w.apply(m.take_delta());
    assert_eq!(
        (d.updated.len(), d.inserted.len(), d.removed.len()),
        (1, 0, 0)
    );
    assert!(d.order.is_none());
    // Row 3 moves past the window: it leaves, row 4 (outside, held locally) enters.
    m.upsert(Row::from(
        json!({"id": "3", "a": "10", "_seq": 6})
            .as_object()
            .unwrap()
            .clone(),
    ))
    .unwrap();
    let d = w.apply(m.take_delta());
    assert_eq!(
        d.removed,
        [RowKey::of(
            &Row::from(json!({"id":"3"}).as_object().unwrap().clone()),
            &["id".into()]
        )
        .unwrap()]
    );
    assert_eq!(d.inserted.len(), 1);
    assert_eq!(keys(&d), [r#""1""#, r#""2""#, r#""4""#]);
}

#[test]
fn per_change_work_does_not_grow_with_the_row_count() {
    let per_change = |n: u64| {
        let (_, order) = split_live_order("SELECT * FROM app.t ORDER BY a DESC LIMIT 50").unwrap();
        let mut w = OrderedWindow::new(order.unwrap());
        w.set_schema(&[
            field("id", DataType::BigInt, 0),
            field("a", DataType::BigInt, 1),
        ]);
        let mut m = Materializer::new(vec!["id".into()], None);
        let mut rng = Rng(7);
        let rows = (0..n)
            .map(|id| {
                let a = rng.below(1_000_000).to_string();
                Row::from(
                    json!({"id": id.to_string(), "a": a, "_seq": id + 1})
                        .as_object()
                        .unwrap()
                        .clone(),
                )
            })
            .collect();
        m.apply_snapshot_rows(rows).unwrap();
        w.apply(m.take_delta());
        let before = w.work_counter();
        let changes = 500;
        for i in 0..changes {
            let id = rng.below(n).to_string();
            let a = rng.below(1_000_000).to_string();
            let r = Row::from(
                json!({"id": id, "a": a, "_seq": n + 1 + i})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            m.upsert(r).unwrap();
            w.apply(m.take_delta());
        }
        (w.work_counter() - before) / changes
    };
    let (small, large) = (per_change(1_000), per_change(100_000));
    eprintln!("ordered window work per change, LIMIT 50: 1k rows {small}, 100k rows {large}");
    // O(log n + limit): 100x the rows adds a few tree levels, not 100x the work.
    assert!(large < small * 2, "1k: {small}, 100k: {large}");
}

/// Through the connection: ORDER BY/LIMIT never reach the server, deltas are window deltas,
/// the materializer (and so the checksum of self-verification) holds the full set.
#[test]
fn live_core_subscribes_without_order_and_reports_the_window() {
    use crate::core::live::connection::{LiveConfig, LiveCore, Output, SubscribeOptions};
    use crate::core::live::SubscriptionMode;
    let config = LiveConfig {
        check_row_cap: false, // the snapshot is not held for a count (tests/cap.rs)
        ..LiveConfig::new("ws://127.0.0.1:8080/v1/ws")
    };
    let mut core = LiveCore::new(config, 1);
    let sql = "SELECT * FROM app.t WHERE n > 0 ORDER BY n DESC LIMIT 2";
    for (mode, limit) in [
        (SubscriptionMode::Events, None),
        (SubscriptionMode::Materialized, Some(5)),
    ] {
        let options = SubscribeOptions {
            limit,
            ..Default::default()
        };
        let err = core.subscribe(0, sql, options, mode).unwrap_err();
        assert_eq!(err.code, "INVALID_ARGUMENT");
    }
    let id = core
        .subscribe(
            0,
            sql,
            SubscribeOptions::default(),
            SubscriptionMode::Materialized,
        )
        .unwrap();
    let drain = |core: &mut LiveCore| {
        let mut all = Vec::new();
        loop {
            let outs = core.drain_outputs();
            if outs.is_empty() {
                return all;
            }
            all.extend(outs);
        }
    };
    let socket = drain(&mut core)
        .iter()
        .find_map(|o| match o {
            Output::OpenSocket { socket, .. } => Some(*socket),
            _ => None,
        })
        .unwrap();
    core.token_ready(0, "jwt".into());
    core.socket_opened(0, socket);
    drain(&mut core);
    core.socket_text(0, socket, r#"{"type":"auth_success","user":"alice","role":"user","protocol":{"serialization":"json","compression":"gzip"}}"#);
    let sent: Vec<String> = drain(&mut core)
        .into_iter()
        .filter_map(|o| match o {
            Output::SendText { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    let subscribe = sent.iter().find(|t| t.contains("\"subscribe\"")).unwrap();
    assert!(
        subscribe.contains("WHERE n > 0")
            && !subscribe.contains("ORDER")
            && !subscribe.contains("LIMIT"),
        "{subscribe}"
    );
    assert_eq!(
        core.subscriptions()[0].sql,
        "SELECT * FROM app.t WHERE n > 0"
    );
    let schema = r#"[{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]},{"name":"n","data_type":"BigInt","index":1}]"#;
    let ctl = r#"{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":"3"}"#;
    core.socket_text(0, socket, &format!(r#"{{"type":"subscription_ack","subscription_id":"{id}","total_rows":3,"batch_control":{ctl},"schema":{schema}}}"#));
    core.socket_text(0, socket, &format!(r#"{{"type":"initial_data_batch","subscription_id":"{id}","rows":[{{"id":"1","n":"9007199254740993","_seq":"1"}},{{"id":"2","n":"9007199254740992","_seq":"2"}},{{"id":"3","n":"5","_seq":"3"}}],"batch_control":{ctl}}}"#));
    let rows = |outs: Vec<Output>| -> Vec<RowsDelta> {
        outs.into_iter()
            .filter_map(|o| match o {
                Output::Rows { delta, .. } => Some(delta),
                _ => None,
            })
            .collect()
    };
    let ids = |d: &RowsDelta| -> Vec<String> {
        d.order
            .as_ref()
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect()
    };
    let d = rows(drain(&mut core));
    let last = d.last().unwrap();
    assert!(last.initial);
    assert_eq!(ids(last), [r#""1""#, r#""2""#]);
    // A row entering at the top pushes row 2 out; row 3 (outside the window) changes: nothing.
    core.socket_text(0, socket, &format!(r#"{{"type":"change","subscription_id":"{id}","change_type":"insert","rows":[{{"id":"4","n":"9007199254740994","_seq":"4"}}]}}"#));
    let d = rows(drain(&mut core));
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].inserted.len(), d[0].removed.len()), (1, 1));
    assert_eq!(d[0].removed[0].to_string(), r#""2""#);
    assert_eq!(ids(&d[0]), [r#""4""#, r#""1""#]);
    core.socket_text(0, socket, &format!(r#"{{"type":"change","subscription_id":"{id}","change_type":"update","rows":[{{"id":"3","n":"6","_seq":"5"}}],"old_values":[{{"id":"3","n":"5","_seq":"3"}}]}}"#));
    assert!(rows(drain(&mut core)).is_empty());
    // The materializer holds the full set: the self-verification checksum compares that.
    assert_eq!(core.materializer(&id).unwrap().len(), 4);
}

/// `cargo test --release -p kalam-wasm --lib ordered_bench -- --ignored --nocapture`: core
/// time per change with `ORDER BY a DESC LIMIT 50` at 1k/20k/100k rows (materializer +
/// window), against a baseline that re-sorts and slices the full set per change.
#[test]
#[ignore]
fn ordered_bench_cost_per_change() {
    use std::time::Instant;
    for n in [1_000u64, 20_000, 100_000] {
        let (_, order) = split_live_order("SELECT * FROM app.t ORDER BY a DESC LIMIT 50").unwrap();
        let order = order.unwrap();
        let schema = [
            field("id", DataType::BigInt, 0),
            field("a", DataType::BigInt, 1),
        ];
        let mut w = OrderedWindow::new(order.clone());
        w.set_schema(&schema);
        let mut m = Materializer::new(vec!["id".into()], None);
        let mut rng = Rng(11);
        let row = |rng: &mut Rng, id: u64, seq: u64| {
            let a = (rng.below(2_000_000) as i64 - 1_000_000).to_string();
            Row::from(
                json!({"id": id.to_string(), "a": a, "_seq": seq})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
        };
        let rows = (0..n).map(|id| row(&mut rng, id, id + 1)).collect();
        m.apply_snapshot_rows(rows).unwrap();
        w.apply(m.take_delta());
        let changes = 2_000u64;
        let start = Instant::now();
        for i in 0..changes {
            let id = rng.below(n);
            m.upsert(row(&mut rng, id, n + 1 + i)).unwrap();
            w.apply(m.take_delta());
        }
        let ours = start.elapsed().as_secs_f64() * 1e6 / changes as f64;
        let cols = [("a".to_string(), Col::BigInt)];
        let base_changes = 20u64;
        let start = Instant::now();
        for i in 0..base_changes {
            let id = rng.below(n);
            m.upsert(row(&mut rng, id, n + 10_000 + i)).unwrap();
            m.take_delta();
            std::hint::black_box(oracle_window(&m, &order, &cols));
        }
        let base = start.elapsed().as_secs_f64() * 1e6 / base_changes as f64;
        eprintln!("ORDER BY a DESC LIMIT 50, {n:>6} rows: {ours:8.1} µs per change (re-sort baseline {base:10.1} µs)");
    }
}

fn float_cell(text: &str, as_number: bool) -> Cell {
    let v = if as_number {
        Value::Number(Number::from_text(text).unwrap())
    } else {
        Value::String(text.into())
    };
    cell_of(Kind::Float, &v).unwrap()
}

/// Finite doubles (random bit patterns, their neighbours, edge values) spelled the ways
/// Rust and the server write them: FLOAT/DOUBLE cells order exactly as `f64::total_cmp`
/// of the parsed texts, as JSON numbers and as strings.
#[test]
fn float_cells_order_as_f64_total_order() {
    let mut rng = Rng(0x5eed_f10a);
    let mut values: Vec<f64> = vec![
        0.0,
        -0.0,
        1e-7,
        -1e-7,
        0.1,
        0.2,
        0.3,
        0.1 + 0.2,
        1.0,
        -1.0,
        2.5,
        -2.5,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        9_007_199_254_740_992.0,
        9_007_199_254_740_994.0,
        1e21,
        1e22,
        1e-5,
        123_456_789.012_345_67,
        1.0 / 3.0,
    ];
    for _ in 0..120 {
        let f = f64::from_bits(rng.next());
        if f.is_finite() {
            values.push(f);
            values.push(f64::from_bits(f.to_bits() + 1)); // the next double of the same sign
        }
        // Doubles of human scale (the exponent range values mostly live in).
        let g = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let scale = 10f64.powi(rng.below(40) as i32 - 20);
        values.push(if rng.below(2) == 0 {
            g * scale
        } else {
            -g * scale
        });
        // FLOAT (f32) columns: the f32's shortest text, and its widened double's.
        let h = f32::from_bits(rng.next() as u32);
        if h.is_finite() {
            values.push(f64::from(h));
            values.push(format!("{h}").parse::<f64>().unwrap());
        }
    }
    let mut texts: Vec<String> = Vec::new();
    for f in values.iter().filter(|f| f.is_finite()) {
        texts.push(format!("{f}"));
        texts.push(format!("{f:?}"));
        texts.push(format!("{f:e}"));
        texts.push(format!("{f:E}"));
    }
    let cells: Vec<(f64, Cell, Cell)> = texts
        .iter()
        .map(|t| {
            (
                t.parse().unwrap(),
                float_cell(t, true),
                float_cell(t, false),
            )
        })
        .collect();
    let mut pairs = 0;
    for (i, (fa, na, sa)) in cells.iter().enumerate() {
        for (j, (fb, nb, sb)) in cells.iter().enumerate() {
            let want = fa.total_cmp(fb);
            assert_eq!(na.cmp(nb), want, "numbers {} vs {}", texts[i], texts[j]);
            assert_eq!(sa.cmp(sb), want, "strings {} vs {}", texts[i], texts[j]);
            pairs += 1;
        }
    }
    assert!(pairs > 500_000, "{pairs}");
}

/// Strings in a FLOAT column take `f64::from_str`'s grammar, non-finite words included,
/// and order as it parses them (cells are trimmed first).
#[test]
fn float_strings_read_as_f64_from_str() {
    let texts = [
        "1",
        "+1",
        "-1",
        ".5",
        "5.",
        "-.5",
        "1.e5",
        "1e+5",
        "1E-5",
        "007.50",
        "-0",
        "+0.0",
        "inf",
        "-inf",
        "+Infinity",
        "-INFINITY",
        "NaN",
        "-nan",
        "nan",
        "1e400",
        "-1e400",
        "1e-400",
        "-1e-400",
        "",
        ".",
        "-",
        "e5",
        "1e",
        "1e+",
        "1.2.3",
        "0x10",
        "1_0",
        "in",
        "nana",
        "1 ",
        "--1",
        "+-1",
        "1e5.5",
        "infinity!",
    ];
    let parsed: Vec<(&str, Option<f64>, Cell)> = texts
        .iter()
        .map(|t| (*t, t.trim().parse::<f64>().ok(), float_cell(t, false)))
        .collect();
    for (t, f, cell) in &parsed {
        assert_eq!(f.is_some(), matches!(cell, Cell::Float(_)), "{t:?}");
    }
    for (ta, fa, ca) in &parsed {
        for (tb, fb, cb) in &parsed {
            if let (Some(fa), Some(fb)) = (fa, fb) {
                let want = fa.total_cmp(fb);
                // Beyond the double range (±1e±400) the exact order refines the rounded one.
                let beyond = |t: &str| t.contains("e4") || t.contains("e-4");
                if want != Ordering::Equal || !(beyond(ta) || beyond(tb)) {
                    assert_eq!(ca.cmp(cb), want, "{ta} vs {tb}");
                }
            }
        }
    }
}

/// Decimal texts with more digits than a double holds (up to 40, exponents across the whole
/// range and beyond it): the exact order never contradicts the double order, it only tells
/// apart values that round to one double.
#[test]
fn long_mantissas_refine_the_f64_order() {
    let mut rng = Rng(0x10c4_11ab);
    let mut texts: Vec<String> = Vec::new();
    for _ in 0..600 {
        let n = 1 + rng.below(40) as usize;
        let mut t = String::new();
        if rng.below(2) == 0 {
            t.push('-');
        }
        let dot = rng.below(n as u64 + 1) as usize;
        for k in 0..n {
            if k == dot && k > 0 {
                t.push('.');
            }
            t.push(char::from(b'0' + rng.below(10) as u8));
        }
        if rng.below(3) > 0 {
            t.push_str(&format!("e{}", rng.below(700) as i64 - 350));
        }
        texts.push(t.clone());
        // A near twin: the same digits with one more at the end.
        texts.push(format!("{}1", t.split('e').next().unwrap()));
    }
    let cells: Vec<(f64, Cell)> = texts
        .iter()
        .map(|t| (t.parse().unwrap(), float_cell(t, false)))
        .collect();
    let mut told_apart = 0;
    for (i, (fa, ca)) in cells.iter().enumerate() {
        for (j, (fb, cb)) in cells.iter().enumerate() {
            let (want, got) = (fa.total_cmp(fb), ca.cmp(cb));
            if want == Ordering::Equal {
                told_apart += usize::from(got != Ordering::Equal);
            } else {
                assert_eq!(got, want, "{} vs {}", texts[i], texts[j]);
            }
        }
    }
    assert!(told_apart > 0);
}
