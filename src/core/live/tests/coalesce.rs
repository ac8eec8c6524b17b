//! Issue 16: bursts of change frames coalesce per window ([`LiveConfig::coalesce_ms`]).

use super::*;

/// Issue 16: a burst of change frames reaches the shell as one delta per coalescing window;
/// a lone change (nothing flushed within the window) is flushed by the drain that follows
/// it, as without coalescing.
#[test]
fn bursts_coalesce_per_window_and_a_lone_change_is_not_delayed() {
    let mut config = test_config();
    config.coalesce_ms = 16;
    let mut h = Harness::new(config);
    let a = h.live(PAGING_SQL);
    h.establish();
    h.empty_snapshot(&a);
    h.drain();
    let change = |n: u64| {
        json!({"type":"change","subscription_id":&a,"change_type":"insert",
        "rows":[{"id":n.to_string(),"_seq":(100 + n).to_string()}]})
        .to_string()
    };
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
