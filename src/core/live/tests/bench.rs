//! `cargo test -p kalam-wasm --release --lib snapshot_bench -- --ignored --nocapture`: the
//! snapshot hot path on 1,000- and 20,000-row `initial_data_batch` frames shaped like the
//! recorded ones (40-ws-live.json: ten columns, the server's per-row key order or one fixed
//! order): the frame decode alone, then decode + materialize + the JS payload written.
//! Best of several runs (the machine is shared).

use std::time::Instant;

use super::*;
use crate::core::cells::RowDecoder;
use crate::core::live::payload::Items;

const SCHEMA: &str = r#"[{"name":"id","data_type":"BigInt","index":0,"flags":["pk","nn","uq"]},{"name":"room","data_type":"Text","index":1,"flags":["nn"]},{"name":"body","data_type":"Text","index":2,"flags":["nn"]},{"name":"score","data_type":"Double","index":3},{"name":"n","data_type":"Int","index":4},{"name":"flag","data_type":"Boolean","index":5},{"name":"meta","data_type":"Json","index":6},{"name":"created_at","data_type":"Timestamp","index":7,"flags":["nn"]},{"name":"_seq","data_type":"BigInt","index":8,"flags":["nn"]},{"name":"_deleted","data_type":"Boolean","index":9,"flags":["nn"]}]"#;

/// One recorded-style row; `shuffled`: its columns in a per-row order, as the server sends.
fn row_text(i: u64, shuffled: bool) -> String {
    let cells = [
        format!(r#""id":"{}""#, 7_530_642_528_823_934_977u64 + i),
        r#""room":"paging""#.to_string(),
        format!(r#""body":"hello world {i} \u00e9\n""#),
        if i % 3 == 0 {
            r#""score":null"#.to_string()
        } else {
            format!(r#""score":{}.25"#, i % 1000)
        },
        format!(r#""n":{i}"#),
        if i % 2 == 0 {
            r#""flag":true"#.to_string()
        } else {
            r#""flag":null"#.to_string()
        },
        if i % 4 == 0 {
            format!(r#""meta":"{{\"a\":{i},\"tags\":[\"x\",\"y\"]}}""#)
        } else {
            r#""meta":null"#.to_string()
        },
        format!(r#""created_at":{}"#, 1_795_445_091_443_210u64 + i),
        format!(r#""_seq":"{}""#, 383_266_655_601_266_688u64 + i * 4096),
        r#""_deleted":false"#.to_string(),
    ];
    let mut order: Vec<usize> = (0..cells.len()).collect();
    if shuffled {
        let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for k in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(k, (state % (k as u64 + 1)) as usize);
        }
    }
    let parts: Vec<&str> = order.iter().map(|&k| cells[k].as_str()).collect();
    format!("{{{}}}", parts.join(","))
}

fn batch_frame(id: &str, n: u64, shuffled: bool) -> String {
    let rows: Vec<String> = (0..n).map(|i| row_text(i, shuffled)).collect();
    let last = 383_266_655_601_266_688u64 + (n - 1) * 4096;
    format!(
        r#"{{"type":"initial_data_batch","subscription_id":"{id}","rows":[{}],"batch_control":{{"batch_num":0,"has_more":false,"status":"ready","last_seq_id":{last}}}}}"#,
        rows.join(",")
    )
}

fn best_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// A connected core with the subscription acknowledged; returns it and the id.
fn acked_core() -> (LiveCore, String) {
    let mut core = LiveCore::with_jitter(test_config(), Box::new(|c| c / 2));
    let id = core
        .subscribe(
            0,
            PAGING_SQL,
            SubscribeOptions::default(),
            SubscriptionMode::Materialized,
        )
        .unwrap();
    core.drain_outputs();
    core.token_ready(0, "jwt".into());
    core.socket_opened(0, 1);
    core.socket_text(0, 1, r#"{"type":"auth_success","user":"alice","role":"user","protocol":{"serialization":"json","compression":"gzip"}}"#);
    core.socket_text(0, 1, &format!(r#"{{"type":"subscription_ack","subscription_id":"{id}","total_rows":0,"batch_control":{{"batch_num":0,"has_more":true,"status":"loading","last_seq_id":null}},"schema":{SCHEMA}}}"#));
    while !core.drain_outputs().is_empty() {}
    (core, id)
}

#[test]
#[ignore]
fn snapshot_bench() {
    for (n, runs) in [(1_000u64, 40usize), (20_000, 6)] {
        for shuffled in [true, false] {
            let frame = batch_frame("sub-1", n, shuffled);
            let decode = best_ms(runs, || {
                let msg = frames::decode_json(frame.as_bytes()).unwrap();
                std::hint::black_box(msg);
            });
            let mut payload_len = 0;
            let mut full = f64::INFINITY;
            for _ in 0..runs {
                let (mut core, id) = acked_core();
                let frame = batch_frame(&id, n, shuffled);
                let start = Instant::now();
                core.socket_text(0, 1, &frame);
                let decoder = RowDecoder::new(core.subscription_schema(&id).unwrap(), None);
                let mut items = Items::default();
                loop {
                    let outs = core.drain_outputs();
                    if outs.is_empty() {
                        break;
                    }
                    for out in outs {
                        if let Output::Rows {
                            subscription_id,
                            delta,
                        } = out
                        {
                            items.rows(&subscription_id, delta, Some(&decoder), None);
                        }
                    }
                }
                let json = items.finish().unwrap();
                full = full.min(start.elapsed().as_secs_f64() * 1e3);
                payload_len = json.len();
                std::hint::black_box(json);
            }
            eprintln!(
                "{n:>6} rows {}: frame {:>5} KB, decode {decode:7.2} ms ({:6.0} rows/ms); decode+materialize+payload ({} KB) {full:7.2} ms",
                if shuffled { "server order" } else { "fixed order " },
                frame.len() / 1024,
                n as f64 / decode,
                payload_len / 1024,
            );
        }
    }
}
