//! Reconnect policy: capped exponential backoff with **full jitter**.
//!
//! Attempt `n` (1-based, counted since the last successful authentication) waits a random
//! delay in `[0, min(max_delay_ms, base_delay_ms × 2^(n-1))]` (inclusive), i.e. ceilings of
//! 1 s, 2 s, 4 s, … capped at 30 s with the defaults. After `max_attempts` failed attempts
//! (unlimited by default) the policy gives up. Randomness is injected: [`Backoff::seeded`]
//! uses a SplitMix64 stream from a seed (the shell seeds it from `crypto.getRandomValues`),
//! [`Backoff::with_jitter`] takes any function (tests use a fixed fraction).

use std::fmt;

/// Reconnect settings (`createClient({ reconnect })`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectConfig {
    /// Reconnect automatically after an unexpected close. Default true.
    pub enabled: bool,
    /// Ceiling of the first attempt's delay. Default 1000 ms.
    pub base_delay_ms: u64,
    /// Cap of every ceiling. Default 30 000 ms.
    pub max_delay_ms: u64,
    /// Give up after this many consecutive failed attempts; `None` = never. Default `None`.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectConfig {
    fn default() -> ReconnectConfig {
        ReconnectConfig {
            enabled: true,
            base_delay_ms: 1000,
            max_delay_ms: 30_000,
            max_attempts: None,
        }
    }
}

/// Maps a ceiling to a delay in `[0, ceiling]`.
pub type JitterFn = Box<dyn FnMut(u64) -> u64>;

/// A small deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Full jitter from a seeded PRNG: uniform in `[0, ceiling]`.
pub fn seeded_jitter(seed: u64) -> JitterFn {
    let mut rng = SplitMix64::new(seed);
    Box::new(move |ceiling| {
        if ceiling == u64::MAX {
            rng.next_u64()
        } else {
            rng.next_u64() % (ceiling + 1)
        }
    })
}

/// The backoff state: attempts made since the last success.
pub struct Backoff {
    config: ReconnectConfig,
    attempt: u32,
    jitter: JitterFn,
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("config", &self.config)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Backoff {
    pub fn seeded(config: ReconnectConfig, seed: u64) -> Backoff {
        Backoff::with_jitter(config, seeded_jitter(seed))
    }

    pub fn with_jitter(config: ReconnectConfig, jitter: JitterFn) -> Backoff {
        Backoff {
            config,
            attempt: 0,
            jitter,
        }
    }

    pub fn config(&self) -> &ReconnectConfig {
        &self.config
    }

    /// Attempts scheduled since the last [`Backoff::reset`].
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay ceiling of 1-based attempt `n`: `min(max, base × 2^(n-1))`, saturating.
    pub fn ceiling_ms(&self, attempt: u32) -> u64 {
        // The crate's one backoff formula; the jitter stays injected (deterministic tests).
        crate::core::backoff::ceiling_ms(
            attempt.saturating_sub(1),
            self.config.base_delay_ms,
            self.config.max_delay_ms,
        )
    }

    /// Schedules the next attempt: `Some((attempt, delay_ms))`, or `None` when reconnecting
    /// is disabled or `max_attempts` is used up.
    pub fn next_delay(&mut self) -> Option<(u32, u64)> {
        if !self.config.enabled {
            return None;
        }
        if let Some(max) = self.config.max_attempts {
            if self.attempt >= max {
                return None;
            }
        }
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.ceiling_ms(self.attempt);
        let delay = (self.jitter)(ceiling).min(ceiling);
        Some((self.attempt, delay))
    }

    /// After a successful connection (or an explicit `connect()`).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_and_cap() {
        let b = Backoff::seeded(ReconnectConfig::default(), 1);
        let ceilings: Vec<u64> = (1..=7).map(|n| b.ceiling_ms(n)).collect();
        assert_eq!(ceilings, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(b.ceiling_ms(500), 30000);
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_varies() {
        let mut b = Backoff::seeded(ReconnectConfig::default(), 42);
        let mut seen = std::collections::HashSet::new();
        for n in 1..=40 {
            let (attempt, delay) = b.next_delay().unwrap();
            assert_eq!(attempt, n);
            assert!(delay <= b.ceiling_ms(n));
            seen.insert(delay);
        }
        assert!(seen.len() > 10, "jitter should spread delays");
    }

    #[test]
    fn fixed_jitter_gives_a_deterministic_schedule_and_max_attempts_stops() {
        let config = ReconnectConfig {
            max_attempts: Some(3),
            ..Default::default()
        };
        let mut b = Backoff::with_jitter(config, Box::new(|ceiling| ceiling / 2));
        assert_eq!(b.next_delay(), Some((1, 500)));
        assert_eq!(b.next_delay(), Some((2, 1000)));
        assert_eq!(b.next_delay(), Some((3, 2000)));
        assert_eq!(b.next_delay(), None);
        b.reset();
        assert_eq!(b.next_delay(), Some((1, 500)));
        let mut off = Backoff::seeded(
            ReconnectConfig {
                enabled: false,
                ..Default::default()
            },
            0,
        );
        assert_eq!(off.next_delay(), None);
    }
}
