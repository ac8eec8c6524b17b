//! Retry policy for HTTP calls (PROTOCOL.md §1.7, §8.3).
//!
//! * `TOKEN_EXPIRED` → refresh the token and retry **once**, for any statement (the server
//!   rejected the request before running it).
//! * Other retryable errors (transport: `NETWORK`, `TIMEOUT`; HTTP 429/502/503/504) →
//!   retried only for idempotent reads ([`RequestKind::Read`]: SELECT / SHOW / DESCRIBE /
//!   EXPLAIN, see `sql::is_idempotent`), up to `max_retries`, with capped exponential
//!   backoff and jitter. Never for writes or uploads.
//!
//! The caller supplies the randomness (`Math.random()`), so decisions are deterministic in
//! tests.

use crate::core::backoff::{backoff_ms, Jitter};
use crate::core::error::{codes, KalamError};
use crate::core::http::envelope::is_token_expired;
use crate::core::http::sql;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retries; the token refresh still
    /// happens).
    pub max_retries: u32,
    /// Delay before the first retry, before jitter.
    pub base_delay_ms: u32,
    /// Cap for any delay (also the longest `Retry-After` honoured).
    pub max_delay_ms: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay_ms: 250,
            max_delay_ms: 10_000,
        }
    }
}

/// What is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Idempotent: safe to send again.
    Read,
    /// Anything that may change data (or whose effect is unknown).
    Write,
    /// A multipart upload.
    Upload,
}

impl RequestKind {
    /// `Read` for SELECT / SHOW / DESCRIBE / EXPLAIN statements, else `Write`.
    pub fn for_sql(sql_text: &str) -> RequestKind {
        if sql::is_idempotent(sql_text) {
            RequestKind::Read
        } else {
            RequestKind::Write
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then send again.
    Retry { delay_ms: u32 },
    /// Renew the token (`AuthState::on_token_expired`), then send again at once.
    RefreshAuth,
    /// Report the error.
    GiveUp,
}

/// A numeric client option as JS gave it (`timeoutMs`, `maxRetries`): a whole number in
/// `0..=max`, else `INVALID_ARGUMENT` (a negative or fractional value must not silently turn
/// into 4 294 967 295 ms or 0).
pub fn whole_number_option(name: &str, value: f64, max: u32) -> Result<u32, KalamError> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= f64::from(max) {
        Ok(value as u32)
    } else {
        Err(KalamError::invalid_argument(format!(
            "{name} must be a whole number from 0 to {max}"
        )))
    }
}

/// `min(max, base × 2^attempt)` scaled by a jitter factor in [0.5, 1.0]: "equal jitter"
/// (see `core::backoff`), never zero, never above the cap. `attempt` counts retries from 0;
/// `random` in [0, 1).
pub fn backoff_delay(policy: &RetryPolicy, attempt: u32, random: f64) -> u32 {
    let random = if random.is_finite() {
        random.clamp(0.0, 0.999_999)
    } else {
        0.5
    };
    backoff_ms(
        attempt,
        u64::from(policy.base_delay_ms),
        u64::from(policy.max_delay_ms),
        Jitter::Equal,
        random,
    ) as u32
}

/// Per-call retry bookkeeping: one per logical request, across its attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryState {
    retries: u32,
    refreshed: bool,
}

impl RetryState {
    pub fn new() -> RetryState {
        RetryState::default()
    }

    /// Retries done so far (token refreshes not counted).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Decides after attempt failure `err`. `retry_after_ms`: the `Retry-After` header in
    /// ms when the answer had one (a value above `max_delay_ms` gives up).
    pub fn decide(
        &mut self,
        policy: &RetryPolicy,
        kind: RequestKind,
        err: &KalamError,
        random: f64,
        retry_after_ms: Option<u32>,
    ) -> RetryDecision {
        if is_token_expired(err) {
            if self.refreshed {
                return RetryDecision::GiveUp;
            }
            self.refreshed = true;
            return RetryDecision::RefreshAuth;
        }
        if err.code == codes::ABORTED || !err.retryable || kind != RequestKind::Read {
            return RetryDecision::GiveUp;
        }
        if self.retries >= policy.max_retries {
            return RetryDecision::GiveUp;
        }
        let mut delay_ms = backoff_delay(policy, self.retries, random);
        if let Some(after) = retry_after_ms {
            if after > policy.max_delay_ms {
                return RetryDecision::GiveUp;
            }
            delay_ms = delay_ms.max(after);
        }
        self.retries += 1;
        RetryDecision::Retry { delay_ms }
    }
}

/// Parses a `Retry-After` header given in seconds (HTTP dates are not used by KalamDB).
pub fn parse_retry_after(value: &str) -> Option<u32> {
    let secs: u32 = value.trim().parse().ok()?;
    Some(secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::http::envelope::parse_sql_response;

    fn expired() -> KalamError {
        parse_sql_response(
            401,
            r#"{"error":{"code":"TOKEN_EXPIRED","message":"Invalid credentials"},"results":[],"status":"error","took":0.1}"#,
        )
        .unwrap_err()
    }

    #[test]
    fn numeric_options_are_whole_numbers_in_range() {
        assert_eq!(
            whole_number_option("timeoutMs", 2000.0, u32::MAX).unwrap(),
            2000
        );
        assert_eq!(whole_number_option("timeoutMs", 0.0, u32::MAX).unwrap(), 0);
        for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY, 1e12] {
            let err = whole_number_option("timeoutMs", bad, u32::MAX).unwrap_err();
            assert_eq!(err.code, "INVALID_ARGUMENT");
        }
        assert!(whole_number_option("maxRetries", 101.0, 100).is_err());
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay_ms: 100,
            max_delay_ms: 1000,
        };
        assert_eq!(backoff_delay(&p, 0, 0.0), 50);
        assert_eq!(backoff_delay(&p, 0, 0.999_999), 100);
        assert_eq!(backoff_delay(&p, 2, 0.5), 300);
        assert_eq!(backoff_delay(&p, 5, 0.0), 500);
        assert_eq!(backoff_delay(&p, 60, 0.999), 1000);
        assert_eq!(backoff_delay(&p, 1, f64::NAN), 150);
        assert_eq!(backoff_delay(&p, 1, 7.0), 200);
    }

    #[test]
    fn reads_retry_transport_and_overload_errors() {
        let p = RetryPolicy::default();
        let mut s = RetryState::new();
        let kind = RequestKind::for_sql("SELECT 1");
        assert_eq!(kind, RequestKind::Read);
        for i in 0..3 {
            let d = s.decide(&p, kind, &KalamError::network("reset"), 0.0, None);
            assert_eq!(
                d,
                RetryDecision::Retry {
                    delay_ms: (250 << i) / 2
                }
            );
        }
        assert_eq!(
            s.decide(&p, kind, &KalamError::timeout(5000), 0.0, None),
            RetryDecision::GiveUp
        );
        assert_eq!(s.retries(), 3);

        let mut s = RetryState::new();
        let busy = parse_sql_response(503, r#"{"error":"TOO_MANY_CONNECTIONS","message":"busy"}"#)
            .unwrap_err();
        assert_eq!(
            s.decide(&p, kind, &busy, 0.0, Some(5000)),
            RetryDecision::Retry { delay_ms: 5000 }
        );
        let banned = parse_sql_response(429, r#"{"error":"RATE_LIMIT_EXCEEDED","message":"x"}"#)
            .unwrap_err();
        assert_eq!(
            s.decide(&p, kind, &banned, 0.0, Some(300_000)),
            RetryDecision::GiveUp
        );
        let bad_sql = parse_sql_response(
            400,
            r#"{"status":"error","results":[],"error":{"code":"INVALID_SQL","message":"x"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            s.decide(&p, kind, &bad_sql, 0.0, None),
            RetryDecision::GiveUp
        );
        assert_eq!(
            s.decide(&p, kind, &KalamError::aborted(), 0.0, None),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn writes_and_uploads_are_never_retried_but_refresh_once() {
        let p = RetryPolicy::default();
        for kind in [
            RequestKind::for_sql("INSERT INTO t VALUES (1)"),
            RequestKind::Upload,
        ] {
            let mut s = RetryState::new();
            assert_eq!(
                s.decide(&p, kind, &KalamError::network("reset"), 0.3, None),
                RetryDecision::GiveUp
            );
            assert_eq!(
                s.decide(&p, kind, &expired(), 0.3, None),
                RetryDecision::RefreshAuth
            );
            assert_eq!(
                s.decide(&p, kind, &expired(), 0.3, None),
                RetryDecision::GiveUp
            );
        }
        let mut s = RetryState::new();
        let none = RetryPolicy {
            max_retries: 0,
            ..p
        };
        assert_eq!(
            s.decide(&none, RequestKind::Read, &expired(), 0.3, None),
            RetryDecision::RefreshAuth
        );
        assert_eq!(
            s.decide(
                &none,
                RequestKind::Read,
                &KalamError::network("x"),
                0.3,
                None
            ),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn retry_after_header() {
        assert_eq!(parse_retry_after(" 5 "), Some(5000));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
