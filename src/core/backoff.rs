//! The one backoff formula of the crate: capped exponential delays with jitter.
//!
//! `retry` counts the retries already made (0 for the first retry). The ceiling of retry `n`
//! is `min(cap, base × 2^n)`; the jitter picks a delay under it from `random` in `[0, 1]`
//! (the caller supplies it: `Math.random()`, a seeded PRNG, or a constant in tests), so every
//! schedule is deterministic under test. Pure functions; no state.

/// How a delay is picked under its ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// The ceiling itself.
    None,
    /// Uniform in `[0, ceiling]`: spreads reconnecting clients the most.
    Full,
    /// Uniform in `[ceiling / 2, ceiling]`: never zero, so a retry always waits.
    Equal,
}

/// `min(cap_ms, base_ms × 2^retry)`, saturating.
pub fn ceiling_ms(retry: u32, base_ms: u64, cap_ms: u64) -> u64 {
    base_ms.saturating_mul(1u64 << retry.min(63)).min(cap_ms)
}

/// The delay before retry number `retry` (0-based): the ceiling with `jitter` applied.
/// A `random` outside `[0, 1]` is clamped, a NaN counts as 0.5.
pub fn backoff_ms(retry: u32, base_ms: u64, cap_ms: u64, jitter: Jitter, random: f64) -> u64 {
    let ceiling = ceiling_ms(retry, base_ms, cap_ms);
    let r = unit(random);
    let ceiling_f = ceiling as f64;
    let delay = match jitter {
        Jitter::None => return ceiling,
        Jitter::Full => r * ceiling_f,
        Jitter::Equal => ceiling_f / 2.0 + r * ceiling_f / 2.0,
    };
    (delay.round() as u64).min(ceiling)
}

/// The configurable variant (topic consumers take floats from JS): `initial ×
/// multiplier^retry`, at most `max`, scaled by a factor in `[1 - spread, 1 + spread]` from
/// `random` and capped again. Non-finite settings fall back to harmless values (no delay
/// growth, no jitter).
pub fn scaled_backoff_ms(
    retry: u32,
    initial: f64,
    max: f64,
    multiplier: f64,
    spread: f64,
    random: f64,
) -> f64 {
    let initial = finite_or(initial, 0.0).max(0.0);
    let max = finite_or(max, initial).max(0.0);
    let multiplier = finite_or(multiplier, 1.0).max(1.0);
    let spread = finite_or(spread, 0.0).clamp(0.0, 1.0);
    let grown = (initial * multiplier.powi(retry.min(64) as i32)).min(max);
    (grown * (1.0 + spread * (unit(random) * 2.0 - 1.0)))
        .min(max)
        .round()
}

fn finite_or(value: f64, fallback: f64) -> f64 {
    if value.is_finite() {
        value
    } else {
        fallback
    }
}

fn unit(random: f64) -> f64 {
    if random.is_nan() {
        0.5
    } else {
        random.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_from_the_base_and_saturate_at_the_cap() {
        let ceilings: Vec<u64> = (0..7).map(|n| ceiling_ms(n, 1000, 30_000)).collect();
        assert_eq!(ceilings, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(ceiling_ms(u32::MAX, 1000, 30_000), 30_000);
        assert_eq!(ceiling_ms(70, u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn jitter_kinds_stay_in_their_ranges() {
        assert_eq!(backoff_ms(2, 100, 1000, Jitter::None, 0.0), 400);
        assert_eq!(backoff_ms(2, 100, 1000, Jitter::Full, 0.0), 0);
        assert_eq!(backoff_ms(2, 100, 1000, Jitter::Full, 1.0), 400);
        assert_eq!(backoff_ms(2, 100, 1000, Jitter::Full, 0.25), 100);
        assert_eq!(backoff_ms(2, 100, 1000, Jitter::Equal, 0.0), 200);
        assert_eq!(backoff_ms(2, 100, 1000, Jitter::Equal, 1.0), 400);
        assert_eq!(backoff_ms(2, 100, 1000, Jitter::Equal, 0.5), 300);
        assert_eq!(backoff_ms(9, 100, 1000, Jitter::Equal, 0.999), 1000);
        // Out-of-range randomness is clamped; NaN is the middle.
        assert_eq!(backoff_ms(1, 100, 1000, Jitter::Equal, 7.0), 200);
        assert_eq!(backoff_ms(1, 100, 1000, Jitter::Equal, -3.0), 100);
        assert_eq!(backoff_ms(1, 100, 1000, Jitter::Equal, f64::NAN), 150);
    }

    #[test]
    fn scaled_variant_grows_by_its_multiplier_and_spreads_both_ways() {
        assert_eq!(scaled_backoff_ms(0, 300.0, 5_000.0, 2.0, 0.0, 0.9), 300.0);
        assert_eq!(scaled_backoff_ms(2, 300.0, 5_000.0, 2.0, 0.0, 0.1), 1_200.0);
        assert_eq!(
            scaled_backoff_ms(29, 300.0, 5_000.0, 2.0, 0.0, 0.5),
            5_000.0
        );
        assert_eq!(scaled_backoff_ms(0, 1_000.0, 5_000.0, 2.0, 0.2, 0.0), 800.0);
        assert_eq!(
            scaled_backoff_ms(0, 1_000.0, 5_000.0, 2.0, 0.2, 1.0),
            1_200.0
        );
        assert_eq!(
            scaled_backoff_ms(9, 1_000.0, 5_000.0, 2.0, 0.5, 1.0),
            5_000.0
        );
        assert_eq!(scaled_backoff_ms(u32::MAX, 1.0, 10.0, 1e9, 0.0, 0.5), 10.0);
        assert_eq!(
            scaled_backoff_ms(1, f64::NAN, -1.0, f64::NAN, f64::NAN, f64::NAN),
            0.0
        );
    }
}
