//! The ordered window against a sort-and-slice oracle over the materializer's full set.

use std::cmp::Ordering;

use serde_json::{json, Value};

use super::*;
use crate::core::live::materializer::Materializer;
use crate::core::live::sql::split_live_order;

/// xorshift64*: deterministic per seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

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
}

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
    assert_eq!(total, 30_000);
}

#[test]
fn exact_numbers_and_text_order() {
    let e = |s: &str| Exact::parse(s).unwrap();
    assert!(e("10.5") > e("9.75"));
    assert!(e("-10.5") < e("-9.75"));
    assert!(e("9007199254740993") > e("9007199254740992"));
    assert_eq!(e("10.50"), e("010.5"));
    assert_eq!(e("-0"), e("0.000"));
    assert!(e("-0.01") < e("0"));
    assert!(Exact::parse("1e5").is_none() && Exact::parse("-").is_none());
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
