//! Settings of [`super::LiveCore`]: the connection's [`LiveConfig`] and a subscription's
//! [`SubscribeOptions`], with the limits they are checked against.

use super::frames;
use super::reconnect::ReconnectConfig;
use super::verify::VerifyConfig;
use crate::core::error::KalamError;
use crate::core::seq_id::SeqId;
use crate::core::text;

/// Default rows per snapshot batch: the largest a default server never truncates (it cuts
/// any query at `max_query_limit` = 1000 rows and then reports `has_more: false`, PROTOCOL.md
/// §9.3, 70-limits.json), so a 1k-row snapshot is one round trip. A server with a lower cap
/// is detected and paged below it ([`LiveConfig::check_row_cap`]).
pub const DEFAULT_BATCH_SIZE: u32 = 999;

/// Largest accepted `batch_size`.
pub const MAX_BATCH_SIZE: u32 = 999;

/// A `batchSize` (per subscription or the client default) must be 1..=999: 0 asks for an
/// empty snapshot (the rows would never load), 1000+ is truncated by the server.
pub fn check_batch_size(b: u32) -> Result<(), KalamError> {
    if b == 0 || b > MAX_BATCH_SIZE {
        return Err(KalamError::invalid_argument(format!(
            "batchSize must be 1..={MAX_BATCH_SIZE} (the server truncates batches of 1000+ rows), got {b}"
        )));
    }
    Ok(())
}

/// Connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// `ws(s)://host:port/v1/ws` (the shell derives it from the HTTP base URL).
    pub ws_url: String,
    /// Adds `compress=false` to the URL (the only switch that disables server gzip).
    pub disable_compression: bool,
    /// Send `{"type":"ping"}` when nothing was sent for this long; 0 disables. Default 5000.
    pub ping_interval_ms: u64,
    /// Socket open + authentication deadline per attempt; 0 disables. Default 10 000.
    pub connect_timeout_ms: u64,
    /// `batch_size` when the subscription does not set one. Default [`DEFAULT_BATCH_SIZE`].
    pub default_batch_size: u32,
    /// A server whose `max_query_limit` is below the batch size returns a truncated first
    /// batch with `has_more: false`. So a subscribe whose snapshot could be cut goes out
    /// with one `COUNT(*)` of the live query (an [`super::Output::Verify`], whatever
    /// [`Self::verify`] says), and a snapshot that arrives as one batch completes once that
    /// count shows nothing is missing (at once if it already answered); if rows are missing,
    /// the cap is found and the subscription pages below it ([`super::connection`], row
    /// cap). Default on; the shell turns it off when it cannot run SQL.
    pub check_row_cap: bool,
    /// Bound on one inflated gzip frame. Default 64 MiB.
    pub max_inflated_bytes: usize,
    /// At most this many frames are sent in any `send_window_ms` (0: unlimited). The server
    /// answers more than 50 text messages per second with `RATE_LIMIT_EXCEEDED` and DROPS
    /// them (PROTOCOL.md §4.12), which would silently lose a `subscribe` or `next_batch`;
    /// excess frames wait in order instead. Default 40 per 1100 ms.
    pub send_budget: u32,
    pub send_window_ms: u64,
    pub reconnect: ReconnectConfig,
    /// Liveness (PROTOCOL.md §12.3): after this much inbound silence, send the echo (a
    /// `next_batch` for an unknown id, which the server always answers; pings never are).
    /// 0 disables. Default 7000.
    pub liveness_idle_ms: u64,
    /// No frame within this long after the echo: the path is dead, reconnect. Default 5000.
    pub liveness_timeout_ms: u64,
    /// A `subscribe` or `next_batch` without an answer for this long is retried. 0
    /// disables. Default 20 000.
    pub snapshot_step_timeout_ms: u64,
    /// A subscription that keeps failing (server `error`, no answer) is retried this many
    /// times with backoff, then fails with `fatal: true`. Default 6 (about a minute).
    pub sub_max_retries: u32,
    /// Self-verification of materialized subscriptions ([`super::verify`]).
    pub verify: VerifyConfig,
    /// Coalescing of materialized deltas (issue 16): a delta is flushed at once while fewer
    /// than `coalesce_burst` were flushed in the last `coalesce_ms`; otherwise the changes
    /// of the frames arriving meanwhile are held and flushed together (one delta per
    /// subscription) when the oldest of those flushes leaves the window (the `Flush`
    /// timer). So changes a few ms apart (one per round trip) are never delayed, while a
    /// burst of frames reaches the app as at most `coalesce_burst` deltas per window. 0
    /// disables (every drain flushes: the sans-IO contract the native tests use). The wasm
    /// shell uses [`DEFAULT_COALESCE_MS`].
    pub coalesce_ms: u64,
    /// Deltas flushed at once per coalescing window before the rest are held (at least 1).
    /// Why 3 and not 1: with 1, a change arriving one round trip (~5-10 ms) after the
    /// previous one waited out the window, which put every such change ~16 ms behind a bare
    /// client (bench/live's insert→callback latency); 3 per 16 ms still turns a bulk
    /// UPDATE's hundreds of frames into a handful of deltas.
    pub coalesce_burst: u32,
}

/// The coalescing window of the wasm shell: one display frame, so a UI repaints at most
/// once per frame during a burst and a lone change is not delayed at all.
pub const DEFAULT_COALESCE_MS: u64 = 16;
/// Deltas flushed at once per coalescing window ([`LiveConfig::coalesce_burst`]).
pub const DEFAULT_COALESCE_BURST: u32 = 3;

impl LiveConfig {
    pub fn new(ws_url: impl Into<String>) -> LiveConfig {
        LiveConfig {
            ws_url: ws_url.into(),
            disable_compression: false,
            ping_interval_ms: 5000,
            connect_timeout_ms: 10_000,
            default_batch_size: DEFAULT_BATCH_SIZE,
            check_row_cap: true,
            max_inflated_bytes: frames::DEFAULT_MAX_INFLATED_BYTES,
            send_budget: 40,
            send_window_ms: 1100,
            reconnect: ReconnectConfig::default(),
            liveness_idle_ms: 7000,
            liveness_timeout_ms: 5000,
            snapshot_step_timeout_ms: 20_000,
            sub_max_retries: 6,
            verify: VerifyConfig::default(),
            coalesce_ms: 0,
            coalesce_burst: DEFAULT_COALESCE_BURST,
        }
    }

    /// The URL to open.
    pub fn socket_url(&self) -> String {
        if !self.disable_compression {
            return self.ws_url.clone();
        }
        let sep = if text::has(&self.ws_url, b'?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}compress=false", self.ws_url)
    }
}

/// `live(sql, …, options)` / `liveEvents(…)` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Rows per snapshot batch, 0..=999. Default [`LiveConfig::default_batch_size`] (raised
    /// to `last_rows` when that is larger).
    pub batch_size: Option<u32>,
    /// Snapshot = the newest N rows (single batch; must be ≤ the batch size).
    pub last_rows: Option<u32>,
    /// Snapshot only rows with `_seq > from` (sent as a JSON integer).
    pub from: Option<SeqId>,
    /// Materialized key columns; empty = the schema's primary key, else `id`.
    pub key_columns: Vec<String>,
    /// Materialized row cap (oldest evicted); must be ≥ 1.
    pub limit: Option<usize>,
    /// Self-verification for this subscription; `None` = the client's setting.
    pub verify: Option<bool>,
}
