//! Issue 16: bursts of change frames coalesce per window ([`LiveConfig::coalesce_ms`]).

use super::*;
use crate::core::live::connection::DEFAULT_COALESCE_BURST;

/// A harness with a 16 ms coalescing window allowing `burst` flushes, and one materialized
/// subscription with its (empty) snapshot done.
fn coalescing(burst: u32) -> (Harness, String) {
    let mut config = test_config();
    config.coalesce_ms = 16;
    config.coalesce_burst = burst;
    let mut h = Harness::new(config);
    let a = h.live(PAGING_SQL);
    h.establish();
    h.empty_snapshot(&a);
    h.drain();
    (h, a)
}

/// A `change` frame inserting row `n` into subscription `sub`.
fn insert_frame(sub: &str, n: u64) -> String {
    json!({"type":"change","subscription_id":sub,"change_type":"insert",
    "rows":[{"id":n.to_string(),"_seq":(100 + n).to_string()}]})
    .to_string()
}

/// Issue 16: a burst of change frames reaches the shell as one delta per coalescing window;
/// a lone change (nothing flushed within the window) is flushed by the drain that follows
/// it, as without coalescing.
#[test]
fn bursts_coalesce_per_window_and_a_lone_change_is_not_delayed() {
    // The window's mechanics: one flush per window.
    let (mut h, a) = coalescing(1);
    let change = |n: u64| insert_frame(&a, n);
    h.now += 100;
    h.text(&change(1));
    let outs = h.drain();
    assert_eq!(deltas(&outs).len(), 1, "a lone change is flushed at once");
    assert!(!outs.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            id: TimerId::Flush,
            ..
        }
    )));
    // The burst that follows within the window is held, then flushed as one delta.
    let mut timers: Vec<u64> = Vec::new();
    for n in 2..=40 {
        h.now += if n % 4 == 0 { 1 } else { 0 };
        h.text(&change(n));
        let outs = h.drain();
        assert!(
            deltas(&outs).is_empty(),
            "frame {n} flushed inside the window"
        );
        let flush: Vec<u64> =
            pick!(outs, Output::SetTimer { id: TimerId::Flush, delay_ms } => *delay_ms);
        timers.extend(flush);
    }
    assert_eq!(timers, [16], "one Flush timer, for the end of the window");
    h.now = 1_000 + 100 + 16;
    h.core.timer_fired(h.now, TimerId::Flush);
    let outs = h.drain();
    let held = deltas(&outs);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].inserted.len(), 39, "the union of the held frames");
    assert_eq!(checkpoints(&outs), [seq("140")]);
    // A frame right after that flush opens the next window; one long after it does not.
    h.now += 5;
    h.text(&change(41));
    let outs = h.drain();
    assert!(deltas(&outs).is_empty());
    let flush: Vec<u64> =
        pick!(outs, Output::SetTimer { id: TimerId::Flush, delay_ms } => *delay_ms);
    assert_eq!(flush, [11]);
    h.now += 11;
    h.core.timer_fired(h.now, TimerId::Flush);
    assert_eq!(deltas(&h.drain())[0].inserted.len(), 1);
    h.now += 1_000;
    h.text(&change(42));
    assert_eq!(
        deltas(&h.drain()).len(),
        1,
        "a lone change after a quiet second"
    );
    assert_eq!(h.core.rows(&a).unwrap().len(), 42);
}

/// Without a window (`coalesce_ms: 0`, the core's default) every drain flushes.
#[test]
fn without_a_coalescing_window_every_drain_flushes() {
    let mut h = Harness::new(test_config());
    let a = h.live(PAGING_SQL);
    h.establish();
    h.empty_snapshot(&a);
    h.drain();
    for n in 1..=3 {
        h.text(
            &json!({"type":"change","subscription_id":&a,"change_type":"insert",
            "rows":[{"id":n.to_string(),"_seq":(100 + n).to_string()}]})
            .to_string(),
        );
        let outs = h.drain();
        assert_eq!(deltas(&outs).len(), 1);
        assert!(!outs.iter().any(|o| matches!(
            o,
            Output::SetTimer {
                id: TimerId::Flush,
                ..
            }
        )));
    }
}

/// A first snapshot's `loading` parts reach no callback, so they do not open a window: the
/// delta that completes the snapshot (the app's first callback) is not held behind them.
#[test]
fn loading_parts_do_not_hold_the_end_of_a_snapshot() {
    let mut config = test_config();
    config.coalesce_ms = 16;
    config.coalesce_burst = 1; // the window's mechanics, one flush per window
    let mut h = Harness::new(config);
    let a = h.paging();
    h.establish();
    let ctl = |more: bool, last: u64| json!({"batch_num":0,"has_more":more,"status":if more {"loading"} else {"ready"},"last_seq_id":last});
    h.text(
        &json!({"type":"subscription_ack","subscription_id":&a,"total_rows":0,"batch_control":ctl(true, 102),
        "schema":[{"name":"id","data_type":"BigInt","index":0,"flags":["pk"]}]})
        .to_string(),
    );
    let rows = |ids: &[u64]| -> Vec<Value> {
        ids.iter()
            .map(|n| json!({"id": n.to_string(), "_seq": (100 + n).to_string()}))
            .collect()
    };
    h.text(
        &json!({"type":"initial_data_batch","subscription_id":&a,"rows":rows(&[1, 2]),"batch_control":ctl(true, 102)})
            .to_string(),
    );
    assert!(deltas(&h.drain()).is_empty(), "a loading part only");
    h.now += 3;
    h.text(
        &json!({"type":"initial_data_batch","subscription_id":&a,"rows":rows(&[3]),"batch_control":ctl(false, 103)})
            .to_string(),
    );
    let outs = h.drain();
    let d = deltas(&outs);
    assert_eq!(d.len(), 1, "the snapshot completes at once: {outs:?}");
    assert!(d[0].initial && d[0].inserted.len() == 3);
    // The app's first delta opens the window: a change right after it is held.
    h.now += 1;
    h.text(
        &json!({"type":"change","subscription_id":&a,"change_type":"insert","rows":rows(&[4])})
            .to_string(),
    );
    assert!(deltas(&h.drain()).is_empty());
}

/// With the default allowance ([`DEFAULT_COALESCE_BURST`] flushes per window), changes one
/// round trip apart (7 ms: bench/live inserts the next row when the previous callback fires)
/// are flushed at once, every one; a burst of frames within a millisecond still reaches the
/// app as the allowance plus one held delta.
#[test]
fn changes_a_round_trip_apart_are_never_held_and_a_burst_still_coalesces() {
    assert_eq!(test_config().coalesce_burst, DEFAULT_COALESCE_BURST);
    assert_eq!(DEFAULT_COALESCE_BURST, 3);
    let (mut h, a) = coalescing(DEFAULT_COALESCE_BURST);
    let change = |n: u64| insert_frame(&a, n);
    h.now += 100;
    for n in 1..=30 {
        h.now += 7;
        h.text(&change(n));
        let outs = h.drain();
        assert_eq!(deltas(&outs).len(), 1, "change {n} flushed at once");
        assert!(!outs.iter().any(|o| matches!(
            o,
            Output::SetTimer {
                id: TimerId::Flush,
                ..
            }
        )));
    }
    // A burst: 40 frames within one millisecond, a second after.
    h.now += 1_000;
    let mut flushed = 0;
    let mut timers: Vec<u64> = Vec::new();
    for n in 31..=70 {
        h.text(&change(n));
        let outs = h.drain();
        flushed += deltas(&outs).len();
        let flush: Vec<u64> =
            pick!(outs, Output::SetTimer { id: TimerId::Flush, delay_ms } => *delay_ms);
        timers.extend(flush);
    }
    assert_eq!(flushed, 3, "the allowance is flushed at once");
    assert_eq!(
        timers,
        [16],
        "the rest wait for the oldest flush to leave the window"
    );
    h.now += 16;
    h.core.timer_fired(h.now, TimerId::Flush);
    let held = deltas(&h.drain());
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].inserted.len(), 37, "the union of the held frames");
    assert_eq!(h.core.rows(&a).unwrap().len(), 70);
}
