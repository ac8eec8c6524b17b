//! [`LiveCore`]: the subscription registry and connection state machine for ONE WebSocket
//! multiplexing every live subscription. Sans-IO: the shell feeds inputs (API calls, socket
//! events, token results, timer firings, page-lifecycle hints), each with `now_ms`, and
//! executes the [`Output`]s returned by [`LiveCore::drain_outputs`].
//!
//! # Shell contract
//! - `OpenSocket { socket, url }`: open a WebSocket (`binaryType = "arraybuffer"`) and report
//!   its events with the same `socket` number: `socket_opened`, `socket_text`,
//!   `socket_binary`, `socket_closed` (also when construction fails: code 1006). Events of
//!   older sockets are ignored by the core, so late events are harmless.
//! - `SendText { socket, text }`: `ws.send(text)` on that socket (drop it if that socket is
//!   gone). `CloseSocket { socket, code, reason }`: `ws.close(code, reason)` (codes are 1000
//!   or 3000–4999); the core already considers that socket gone.
//! - `RequestToken`: run the auth provider, then call `token_ready(jwt)` or
//!   `token_failed(err)` (`retryable: true` for transient failures). `token_ready` may also
//!   be called unsolicited (e.g. after a login) and is then used for the next connection.
//! - `SetTimer { id, delay_ms }` (re)arms the one timer of that id; `CancelTimer { id }`
//!   disarms it; when it fires call `timer_fired(id)`. Stale firings are ignored.
//! - `Verify { subscription_id, request, sql }`: run `sql` over HTTP SQL as the socket's
//!   user and call `verify_result` with the figures or the error (self-verification,
//!   [`super::verify`]).
//! - Call `online()`, `visible()` (visibilitychange to visible) and `pageshow()` from the
//!   page events: they retry immediately when waiting to reconnect.
//! - Call [`LiveCore::drain_outputs`] after each input (or after a burst of socket frames:
//!   materialized deltas coalesce until drained, so one drain = one delta per
//!   subscription), and again until it returns nothing: a snapshot batch with more to come
//!   yields its `next_batch` first and its rows on the following call, so the shell sends
//!   the request before the rows are decoded and the server pages ahead meanwhile.
//!
//! # Connection lifecycle
//! Lazy: the first `subscribe` (or `connect`) requests a token and opens the socket in
//! parallel; `authenticate` (with the full `protocol` object) is sent once both are there;
//! after `auth_success` every registered subscription is (re)subscribed and `{"type":"ping"}`
//! is sent whenever nothing was sent for `ping_interval_ms` (default 5000; the server closes
//! after 10 s without a frame). Socket open + authentication must finish within
//! `connect_timeout_ms` (default 10 000) or the attempt counts as failed.
//!
//! # Reconnect
//! Any close we did not ask for (anything but `disconnect`/`shutdown`) schedules a reconnect
//! with capped exponential backoff and full jitter ([`super::reconnect`]), emitting
//! `Reconnecting { attempt, delay_ms }`; `online`/`visible`/`pageshow` skip the wait. Each
//! attempt requests a fresh token. Attempts reset after `auth_success`. An `auth_error` /
//! close 1008 "Authentication failed" goes to `NeedsAuth` and requests a token once; a
//! token then reconnects; a second consecutive auth failure waits in `NeedsAuth` for
//! `connect()`, a page hint or an unsolicited `token_ready`. "Too many authentication
//! attempts" is treated as an ordinary failure (backoff).
//!
//! # Resume / resync policy
//! - **Materialized** subscriptions whose snapshot was complete resubscribe with their
//!   original options (no `from`: a `from`-resume never replays deletes) and load the new
//!   snapshot into a *staging* materializer, paging with `next_batch`. When it is complete
//!   it is merged into the live set as ONE delta (`resync: true`): keys gone from the new
//!   snapshot are removed (rows deleted or filtered out while away), rows whose `_seq`
//!   changed are updated in place, new keys are appended; unchanged rows are not reported.
//!   Until then the old rows stay as they were: no empty flash, no duplicates. A snapshot
//!   interrupted before completion is simply reloaded (nothing had been emitted).
//! - **Events** subscriptions resubscribe with `from` = the last applied `_seq` (the
//!   checkpoint) and drop replayed rows/events with `_seq <= checkpoint`.
//! - A user `from` is sent as a JSON integer on the first subscribe (and on materialized
//!   resyncs).
//!
//! # Subscriptions
//! Ids are `sub-1`, `sub-2`, … (unique per `LiveCore`, never derived from the SQL). A first
//! snapshot reaches the shell batch by batch as `loading` deltas (the first with `reset`:
//! clear the mirror, a reload starts over) that the app must not see; the delta that
//! completes it (`initial: true`, not `loading`, possibly empty) is the app's first; then
//! one delta per drained burst of changes, each followed by a `Checkpoint` when the max
//! applied `_seq` advanced. A server `error` for a subscription that was never
//! acknowledged is fatal (`fatal: true`, the subscription is dropped: it does not exist
//! server-side), and so is one that cannot change (`UNAUTHORIZED`, `NOT_FOUND`,
//! `INVALID_SQL`). Any other `error` for an acknowledged subscription (while paging, during
//! a resync, later, or refusing a resubscribe), and a `subscribe`/`next_batch` without an
//! answer within `snapshot_step_timeout_ms`, is reported (`fatal: false`) and the
//! subscription is subscribed again after 1, 2, 4 … 30 s (its rows stay; a resync swaps in
//! the next snapshot); after `sub_max_retries` failures in a row it is fatal.
//!
//! # Liveness
//! The server answers nothing on an idle socket, not even `{"type":"ping"}`. After
//! `liveness_idle_ms` without an inbound frame the core sends the echo of PROTOCOL.md §12.3
//! (`next_batch` for the unknown id `kalam-wasm-echo-N`, answered by `BATCH_FETCH_FAILED`);
//! without any frame within `liveness_timeout_ms` the socket counts as dead: it is closed
//! (4000), a `TIMEOUT` connection error is reported and the reconnect policy takes over.
//! A page hint (`visible`, …) on a connected socket sends the echo at once.
//!
//! # Self-verification
//! Materialized subscriptions compare the checksum of §12.2 with their rows after bursts
//! and periodically, and resync on a confirmed mismatch ([`super::verify`]).
//! `unsubscribe` and `disconnect` always succeed locally; `disconnect` keeps the
//! subscriptions (with their rows) for `connect()` or a later `subscribe`, which reconnect;
//! `shutdown` forgets everything and refuses further use (`CLOSED`).

use serde::Serialize;

use super::frames::{
    self, BatchControl, ChangeEvent, ChangeType, ClientMessage, InitialDataBatch, Row, ServerError,
    ServerMessage, SubscriptionAck, SubscriptionRequest, WireSubscribeOptions,
};
use super::materializer::{self, row_seq, Materializer, RowsDelta};
use super::ordered::OrderedWindow;
use super::reconnect::{Backoff, JitterFn, ReconnectConfig};
use super::sql::split_live_order;
use super::verify::{self, Checksum, VerifyConfig, BURST_GAP_MS, BURST_MAX_DEFER_MS};
use crate::core::error::{codes, KalamError};
use crate::core::schema::{primary_key_columns, SchemaField};
use crate::core::seq_id::SeqId;

/// A liveness deadline timer this late gets one more look before the socket counts as dead.
const LATE_TIMER_MS: u64 = 1000;

/// Checks after a burst start this far apart, subscription by subscription.
const BURST_CHECK_STAGGER_MS: u64 = 25;

/// A checksum query without an answer for this long is asked again.
const VERIFY_ANSWER_MS: u64 = 60_000;

/// Default rows per snapshot batch. Must stay below 1000: a default server truncates a batch
/// of 1000+ rows to its query limit and reports `has_more: false` (70-limits.json).
pub const DEFAULT_BATCH_SIZE: u32 = 500;
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
    /// `batch_size` when the subscription does not set one. Default 500 (< 1000).
    pub default_batch_size: u32,
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
    /// Coalescing of materialized deltas (issue 16): a delta is flushed at once when none
    /// was flushed in the last `coalesce_ms`; otherwise the changes of the frames arriving
    /// meanwhile are held and flushed together (one delta per subscription) when that
    /// window ends (the `Flush` timer). A lone change is never delayed; a burst of N
    /// frames over T ms reaches the app as about `1 + T / coalesce_ms` deltas. 0 disables
    /// (every drain flushes: the sans-IO contract the native tests use). The wasm shell
    /// uses [`DEFAULT_COALESCE_MS`].
    pub coalesce_ms: u64,
}

/// The coalescing window of the wasm shell: one display frame, so a UI repaints at most
/// once per frame during a burst and a lone change is not delayed at all.
pub const DEFAULT_COALESCE_MS: u64 = 16;

impl LiveConfig {
    pub fn new(ws_url: impl Into<String>) -> LiveConfig {
        LiveConfig {
            ws_url: ws_url.into(),
            disable_compression: false,
            ping_interval_ms: 5000,
            connect_timeout_ms: 10_000,
            default_batch_size: DEFAULT_BATCH_SIZE,
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
        }
    }

    /// The URL to open.
    pub fn socket_url(&self) -> String {
        if !self.disable_compression {
            return self.ws_url.clone();
        }
        let sep = if self.ws_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}compress=false", self.ws_url)
    }
}

/// How a subscription reports to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionMode {
    /// `live()`: a materialized row set, reported as [`RowsDelta`]s.
    Materialized,
    /// `liveEvents()`: raw [`LiveEvent`]s.
    Events,
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

/// Public connection state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Disconnected,
    Connecting,
    Connected,
    Reconnecting { attempt: u32, delay_ms: u64 },
    NeedsAuth,
}

/// Timers the core asks the shell to run (one of each at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerId {
    Ping,
    Reconnect,
    ConnectTimeout,
    /// Sends frames held back by the send budget ([`LiveConfig::send_budget`]).
    Throttle,
    /// The liveness echo: when to send it, and its deadline.
    Liveness,
    /// Per-subscription deadlines, retries and self-verification (the earliest of them).
    Subs,
    /// The end of a coalescing window: held deltas are flushed ([`LiveConfig::coalesce_ms`]).
    Flush,
}

impl TimerId {
    pub const ALL: [TimerId; 7] = [
        TimerId::Ping,
        TimerId::Reconnect,
        TimerId::ConnectTimeout,
        TimerId::Throttle,
        TimerId::Liveness,
        TimerId::Subs,
        TimerId::Flush,
    ];

    pub fn as_u32(self) -> u32 {
        self as u32
    }

    #[cfg(test)]
    pub(super) fn from_u32(n: u32) -> Option<TimerId> {
        TimerId::ALL.get(n as usize).copied()
    }
}

/// A raw event of an `Events`-mode subscription (replays after a resume removed).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    Ack(SubscriptionAck),
    Batch(InitialDataBatch),
    Change(ChangeEvent),
}

/// A command or notification for the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    OpenSocket {
        socket: u64,
        url: String,
    },
    SendText {
        socket: u64,
        text: String,
    },
    CloseSocket {
        socket: u64,
        code: u16,
        reason: String,
    },
    RequestToken,
    SetTimer {
        id: TimerId,
        delay_ms: u64,
    },
    CancelTimer {
        id: TimerId,
    },
    /// A materialized subscription's change set (see [`RowsDelta`]).
    Rows {
        subscription_id: String,
        delta: RowsDelta,
    },
    /// An `Events`-mode subscription's raw event.
    Event {
        subscription_id: String,
        event: LiveEvent,
    },
    /// The max applied `_seq` advanced (after the delta/event it belongs to).
    Checkpoint {
        subscription_id: String,
        last_seq_id: SeqId,
    },
    /// A subscription-scoped error (server code verbatim, or ours). `fatal`: the
    /// subscription is gone from the registry.
    SubscriptionError {
        subscription_id: String,
        error: KalamError,
        fatal: bool,
    },
    StateChanged(ConnectionState),
    /// Run `sql` (the checksum of [`super::verify`]) over HTTP as the socket's user and call
    /// [`LiveCore::verify_result`] with `request` and its figures or error.
    Verify {
        subscription_id: String,
        request: u64,
        sql: String,
    },
    /// A connection-level error (close, timeout, auth failure, malformed frame, server
    /// error with a synthetic id such as `protocol` or `rate_limit`).
    ConnectionError(KalamError),
}

/// What `getSubscriptions()` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionInfo {
    pub id: String,
    pub sql: String,
    pub mode: SubscriptionMode,
    /// The checkpoint: max `_seq` applied.
    pub last_seq_id: Option<SeqId>,
    /// Acknowledged on the current socket with its snapshot loaded.
    pub live: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No socket and none wanted right now.
    Idle,
    /// Waiting for the reconnect timer.
    Backoff,
    /// Authentication failed; waiting for a token.
    NeedsAuth,
    Connecting {
        socket: u64,
        opened: bool,
        authenticating: bool,
    },
    Connected {
        socket: u64,
    },
}

#[derive(Debug)]
struct Subscription {
    id: String,
    sql: String,
    mode: SubscriptionMode,
    options: SubscribeOptions,
    /// `subscribe` sent on the current socket.
    sent: bool,
    /// `subscription_ack` received on the current socket.
    acked: bool,
    /// Acknowledged at least once on any socket (exists server-side).
    ever_acked: bool,
    /// Snapshot paging in progress on the current socket.
    loading: bool,
    /// The active materializer holds a complete snapshot.
    snapshot_done: bool,
    initial_emitted: bool,
    resync_pending: bool,
    rows: Materializer,
    /// Live `ORDER BY … LIMIT`: the window the subscriber sees over `rows` (which holds
    /// the full filtered set; resync and self-verification work on that).
    window: Option<OrderedWindow>,
    staging: Option<Materializer>,
    checkpoint: Option<SeqId>,
    /// Max `_seq` loaded into `staging`; becomes the checkpoint when the staging is swapped in.
    staging_checkpoint: Option<SeqId>,
    emitted_checkpoint: Option<SeqId>,
    /// Events mode: drop rows with `_seq <=` this (the checkpoint at resubscribe).
    resume_from: Option<SeqId>,
    /// The schema of the latest `subscription_ack` (empty before the first one).
    schema: Vec<SchemaField>,
    /// `next_batch` already sent for a batch with this `last_seq_id` (see [`DeferredFrame`]).
    prefetched: Option<SeqId>,
    /// Part of the first snapshot being loaded was emitted (`loading: true` deltas).
    parts_emitted: bool,
    /// The snapshot being loaded must make progress by then, else it is retried.
    deadline: Option<u64>,
    /// A failed subscription is subscribed again at this time.
    retry_at: Option<u64>,
    /// Consecutive failed attempts (reset when a snapshot completes).
    retries: u32,
    /// Next self-verification (live subscriptions only).
    verify_due: Option<u64>,
    /// The checksum request in flight: `(request, sent at, floor)`.
    verify_inflight: Option<(u64, u64, Option<SeqId>)>,
    /// A check was asked for while one was in flight.
    verify_again: bool,
    /// Consecutive checksum mismatches.
    mismatches: u32,
    /// Consecutive failed checksum queries.
    verify_failures: u32,
}

impl Subscription {
    fn advance(&mut self, seq: Option<SeqId>) {
        if self.staging.is_some() {
            self.staging_checkpoint = self.staging_checkpoint.max(seq);
        } else if seq > self.checkpoint {
            self.checkpoint = seq;
        }
    }

    fn batch_size(&self, default: u32) -> u32 {
        self.options
            .batch_size
            .unwrap_or_else(|| default.max(self.options.last_rows.unwrap_or(0)))
    }
}

/// The realtime state machine for one WebSocket multiplexing every subscription (details
/// and the shell contract in the module documentation).
///
/// - Inputs are methods taking `now_ms`; outputs are collected with
///   [`LiveCore::drain_outputs`]. Deterministic: time and jitter are injected.
/// - **Snapshots** page with `next_batch` until `has_more` is false; a materialized
///   subscription's app-visible first delta (`initial`, not `loading`) comes only then (no
///   empty flash); the batches before it arrive as `loading` parts.
/// - **Reconnect**: any unexpected close → capped exponential backoff with full jitter,
///   fresh token per attempt, immediate retry on `online`/`visible`/`pageshow`; 1008
///   "Authentication failed" → `NeedsAuth` + `RequestToken`.
/// - **Resync**: materialized subscriptions reload a full snapshot into a staging
///   materializer and swap it in as ONE delta (`resync`: removed / changed-`_seq` updated /
///   inserted), so rows deleted while away disappear and nothing flashes or duplicates.
///   Events subscriptions resume with `from` = checkpoint and drop replays.
pub struct LiveCore {
    config: LiveConfig,
    backoff: Backoff,
    phase: Phase,
    state: ConnectionState,
    want_connected: bool,
    shut_down: bool,
    token: Option<String>,
    token_wanted: bool,
    auth_failures: u32,
    auth_error: Option<String>,
    next_socket: u64,
    next_sub: u64,
    subs: Vec<Subscription>,
    out: Vec<Output>,
    timers: [bool; TimerId::ALL.len()],
    /// Send times within the current budget window (oldest first).
    sent_at: std::collections::VecDeque<u64>,
    /// Frames for the current socket waiting for budget.
    send_queue: std::collections::VecDeque<String>,
    last_sent_ms: u64,
    /// A snapshot batch whose `next_batch` went out before its rows were decoded.
    deferred: Option<DeferredFrame>,
    /// The latest `now_ms` of any input.
    now: u64,
    /// When the current socket last delivered a frame.
    last_recv_ms: u64,
    /// The liveness echo is out and must be answered by then.
    probe_deadline: Option<u64>,
    /// The deadline was already extended once because its timer fired late.
    probe_grace: bool,
    next_probe: u64,
    /// The current run of change frames (see [`VerifyConfig::after_burst`]).
    burst_count: u32,
    burst_first_ms: u64,
    last_change_ms: u64,
    /// Every subscription is checked at this time (after a burst).
    burst_check: Option<u64>,
    next_request: u64,
    /// What the `Subs` timer is armed for.
    subs_timer_due: Option<u64>,
    /// When deltas were last flushed (coalescing window start; `None`: no window open).
    last_flush_ms: Option<u64>,
    /// Deltas are held until the `Flush` timer fires.
    rows_held: bool,
}

/// Subscription ids of liveness echoes (never a registered id: those are `sub-N`).
pub const ECHO_ID_PREFIX: &str = "kalam-wasm-echo-";

/// Error codes after which retrying a subscription cannot help.
fn permanent_error(code: &str) -> bool {
    matches!(
        code,
        "UNAUTHORIZED" | "NOT_FOUND" | "INVALID_SQL" | "INVALID_SUBSCRIPTION_ID"
    )
}

/// Backoff of subscription retries: 1 s, 2 s, 4 s … capped at 30 s.
fn retry_delay_ms(attempt: u32) -> u64 {
    (1000u64 << attempt.saturating_sub(1).min(5)).min(30_000)
}

fn min_due(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A JSON frame decoded on the next drain, after the outputs queued before it were
/// executed: the server prepares the next page while this one is parsed.
#[derive(Debug)]
struct DeferredFrame {
    now_ms: u64,
    socket: u64,
    json: Vec<u8>,
}

impl LiveCore {
    /// A core whose reconnect jitter comes from a SplitMix64 stream seeded with `seed`.
    pub fn new(config: LiveConfig, seed: u64) -> LiveCore {
        let backoff = Backoff::seeded(config.reconnect.clone(), seed);
        LiveCore::with_backoff(config, backoff)
    }

    /// A core with an injected jitter function (ceiling → delay in `[0, ceiling]`).
    pub fn with_jitter(config: LiveConfig, jitter: JitterFn) -> LiveCore {
        let backoff = Backoff::with_jitter(config.reconnect.clone(), jitter);
        LiveCore::with_backoff(config, backoff)
    }

    fn with_backoff(config: LiveConfig, backoff: Backoff) -> LiveCore {
        LiveCore {
            config,
            backoff,
            phase: Phase::Idle,
            state: ConnectionState::Disconnected,
            want_connected: false,
            shut_down: false,
            token: None,
            token_wanted: false,
            auth_failures: 0,
            auth_error: None,
            next_socket: 1,
            next_sub: 1,
            subs: Vec::new(),
            out: Vec::new(),
            timers: [false; TimerId::ALL.len()],
            sent_at: std::collections::VecDeque::new(),
            send_queue: std::collections::VecDeque::new(),
            last_sent_ms: 0,
            deferred: None,
            now: 0,
            last_recv_ms: 0,
            probe_deadline: None,
            probe_grace: false,
            next_probe: 0,
            burst_count: 0,
            burst_first_ms: 0,
            last_change_ms: 0,
            burst_check: None,
            next_request: 0,
            subs_timer_due: None,
            last_flush_ms: None,
            rows_held: false,
        }
    }

    // ----- queries -------------------------------------------------------------------

    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected { .. })
    }

    /// Registered subscriptions in creation order.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.subs
            .iter()
            .map(|s| SubscriptionInfo {
                id: s.id.clone(),
                sql: s.sql.clone(),
                mode: s.mode,
                last_seq_id: s.checkpoint,
                live: s.acked && !s.loading,
            })
            .collect()
    }

    /// The current materialized rows of a subscription (what the emitted deltas add up
    /// to, plus anything not yet drained).
    pub fn rows(&self, subscription_id: &str) -> Option<materializer::Iter<'_>> {
        self.materializer(subscription_id).map(Materializer::iter)
    }

    /// The column schema of a subscription's latest `subscription_ack` (empty until its
    /// first ack; a projection's schema lacks `_seq`). Shells decode row values with it.
    pub fn subscription_schema(&self, subscription_id: &str) -> Option<&[SchemaField]> {
        self.subs
            .iter()
            .find(|s| s.id == subscription_id)
            .map(|s| s.schema.as_slice())
    }

    pub fn materializer(&self, subscription_id: &str) -> Option<&Materializer> {
        self.subs
            .iter()
            .find(|s| s.id == subscription_id && s.mode == SubscriptionMode::Materialized)
            .map(|s| &s.rows)
    }

    /// Everything produced since the last call, materialized deltas flushed per
    /// subscription that has changes to report. Call it until it returns nothing: a
    /// snapshot batch's `next_batch` is returned first and its rows on the next call, so
    /// the server pages ahead while the rows are decoded.
    pub fn drain_outputs(&mut self) -> Vec<Output> {
        if self.out.is_empty() {
            self.settle_deferred();
        }
        self.flush_rows();
        self.rearm_subs_timer();
        std::mem::take(&mut self.out)
    }

    // ----- API calls -----------------------------------------------------------------

    /// Registers a subscription and returns its id. Invalid live SQL or options fail here
    /// with `INVALID_ARGUMENT`; after `shutdown` with `CLOSED`. Connects lazily.
    pub fn subscribe(
        &mut self,
        now_ms: u64,
        sql: &str,
        options: SubscribeOptions,
        mode: SubscriptionMode,
    ) -> Result<String, KalamError> {
        self.tick(now_ms);
        if self.shut_down {
            return Err(KalamError::closed("the client was shut down"));
        }
        // ORDER BY / LIMIT / OFFSET are applied here, never sent (PROTOCOL.md §4.8).
        let (server_sql, order) = split_live_order(sql)?;
        let sql = server_sql.as_str();
        if order.is_some() && mode == SubscriptionMode::Events {
            return Err(KalamError::invalid_argument(
                "liveEvents() delivers raw events and cannot apply ORDER BY/LIMIT; use live()",
            ));
        }
        if order.is_some() && options.limit.is_some() {
            return Err(KalamError::invalid_argument(
                "the limit option cannot be combined with ORDER BY in the live SQL; use LIMIT in the SQL",
            ));
        }
        let options = self.validate_options(options)?;
        let id = format!("sub-{}", self.next_sub);
        let probe = ClientMessage::Subscribe {
            subscription: SubscriptionRequest {
                id: &id,
                sql,
                options: Some(WireSubscribeOptions {
                    batch_size: Some(MAX_BATCH_SIZE),
                    last_rows: options.last_rows,
                    from: Some(SeqId::new(i64::MAX)),
                }),
            },
        }
        .to_json();
        if probe.len() > frames::MAX_CLIENT_FRAME_BYTES {
            return Err(KalamError::invalid_argument(
                "live SQL is too long: a subscribe frame must stay below 64 KiB",
            ));
        }
        self.next_sub += 1;
        let rows = Materializer::new(options.key_columns.clone(), options.limit);
        self.subs.push(Subscription {
            id: id.clone(),
            sql: sql.to_string(),
            mode,
            checkpoint: options.from,
            staging_checkpoint: None,
            emitted_checkpoint: options.from,
            options,
            sent: false,
            acked: false,
            ever_acked: false,
            loading: false,
            snapshot_done: false,
            initial_emitted: false,
            resync_pending: false,
            rows,
            window: order.map(OrderedWindow::new),
            staging: None,
            resume_from: None,
            schema: Vec::new(),
            prefetched: None,
            parts_emitted: false,
            deadline: None,
            retry_at: None,
            retries: 0,
            verify_due: None,
            verify_inflight: None,
            verify_again: false,
            mismatches: 0,
            verify_failures: 0,
        });
        match self.phase {
            Phase::Connected { .. } => self.send_subscribe(now_ms, self.subs.len() - 1),
            Phase::Idle => {
                self.want_connected = true;
                self.backoff.reset();
                self.start_attempt(true);
            }
            _ => {} // sent after auth_success
        }
        Ok(id)
    }

    fn validate_options(&self, mut o: SubscribeOptions) -> Result<SubscribeOptions, KalamError> {
        if let Some(b) = o.batch_size {
            check_batch_size(b)?;
        }
        if self.config.default_batch_size > MAX_BATCH_SIZE && o.batch_size.is_none() {
            o.batch_size = Some(MAX_BATCH_SIZE);
        }
        if let Some(n) = o.last_rows {
            let effective = o
                .batch_size
                .unwrap_or_else(|| self.config.default_batch_size.max(n));
            if n > MAX_BATCH_SIZE || n > effective {
                return Err(KalamError::invalid_argument(format!(
                    "last_rows ({n}) must not exceed batch_size ({effective}, at most {MAX_BATCH_SIZE})"
                )));
            }
        }
        if o.limit == Some(0) {
            return Err(KalamError::invalid_argument("limit must be at least 1"));
        }
        let mut keys: Vec<String> = Vec::new();
        for k in &o.key_columns {
            let k = k.trim();
            if k.is_empty() {
                return Err(KalamError::invalid_argument(
                    "key column names must not be empty",
                ));
            }
            if !keys.iter().any(|have| have == k) {
                keys.push(k.to_string());
            }
        }
        o.key_columns = keys;
        Ok(o)
    }

    /// Removes a subscription locally (always succeeds) and tells the server if connected.
    /// Returns whether the id was registered.
    pub fn unsubscribe(&mut self, now_ms: u64, subscription_id: &str) -> bool {
        self.tick(now_ms);
        let Some(i) = self.find(subscription_id) else {
            return false;
        };
        let sub = self.subs.remove(i);
        if let (Phase::Connected { socket }, true) = (self.phase, sub.sent) {
            let text = ClientMessage::Unsubscribe {
                subscription_id: &sub.id,
            }
            .to_json();
            self.send(now_ms, socket, text);
        }
        true
    }

    /// Connects now (no-op when connecting or connected). Resets the backoff.
    pub fn connect(&mut self, now_ms: u64) {
        self.tick(now_ms);
        if self.shut_down {
            self.out.push(Output::ConnectionError(KalamError::closed(
                "the client was shut down",
            )));
            return;
        }
        self.want_connected = true;
        match self.phase {
            Phase::Idle | Phase::Backoff | Phase::NeedsAuth => {
                self.backoff.reset();
                self.auth_failures = 0;
                self.start_attempt(true);
            }
            Phase::Connecting { .. } | Phase::Connected { .. } => {}
        }
    }

    /// Closes the socket and stops reconnecting; subscriptions (and their rows) are kept
    /// and resume on `connect()` or the next `subscribe`.
    pub fn disconnect(&mut self, now_ms: u64) {
        self.tick(now_ms);
        self.want_connected = false;
        if let Some(socket) = self.socket() {
            self.out.push(Output::CloseSocket {
                socket,
                code: 1000,
                reason: "client disconnect".into(),
            });
        }
        self.lose_socket();
        self.cancel_timer(TimerId::Reconnect);
        self.phase = Phase::Idle;
        self.token_wanted = false;
        self.auth_failures = 0;
        self.backoff.reset();
        self.set_state(ConnectionState::Disconnected);
    }

    /// Disconnects and forgets every subscription and the token; later calls fail with
    /// `CLOSED`.
    pub fn shutdown(&mut self, now_ms: u64) {
        self.disconnect(now_ms);
        self.subs.clear();
        self.cancel_timer(TimerId::Flush);
        self.rows_held = false;
        self.token = None;
        self.shut_down = true;
    }

    // ----- auth provider -------------------------------------------------------------

    /// A token from the auth provider (requested or not).
    pub fn token_ready(&mut self, now_ms: u64, token: String) {
        self.tick(now_ms);
        if self.shut_down {
            return;
        }
        self.token = Some(token);
        self.token_wanted = false;
        match self.phase {
            Phase::NeedsAuth => self.start_attempt(false),
            Phase::Connecting { .. } => self.maybe_authenticate(now_ms),
            _ => {}
        }
    }

    /// The auth provider failed. Retryable errors count as a failed attempt (backoff);
    /// others park the connection in `NeedsAuth`.
    pub fn token_failed(&mut self, now_ms: u64, error: KalamError) {
        self.tick(now_ms);
        let wanted = std::mem::replace(&mut self.token_wanted, false);
        self.out.push(Output::ConnectionError(error.clone()));
        if !wanted || self.shut_down {
            return;
        }
        if let Phase::Connecting { socket, .. } = self.phase {
            self.out.push(Output::CloseSocket {
                socket,
                code: 1000,
                reason: "no token".into(),
            });
            self.lose_socket();
            if error.retryable {
                self.schedule_reconnect();
            } else {
                self.phase = Phase::NeedsAuth;
                self.set_state(ConnectionState::NeedsAuth);
            }
        }
    }

    // ----- socket events -------------------------------------------------------------

    pub fn socket_opened(&mut self, now_ms: u64, socket: u64) {
        self.tick(now_ms);
        if let Phase::Connecting {
            socket: s,
            ref mut opened,
            ..
        } = self.phase
        {
            if s == socket {
                *opened = true;
                self.maybe_authenticate(now_ms);
            }
        }
    }

    pub fn socket_text(&mut self, now_ms: u64, socket: u64, text: &str) {
        self.tick(now_ms);
        self.settle_deferred();
        if self.is_current(socket) {
            self.on_recv(now_ms);
            self.on_json(now_ms, socket, std::borrow::Cow::Borrowed(text.as_bytes()));
        }
    }

    pub fn socket_binary(&mut self, now_ms: u64, socket: u64, bytes: &[u8]) {
        self.tick(now_ms);
        self.settle_deferred();
        if !self.is_current(socket) {
            return;
        }
        self.on_recv(now_ms);
        match frames::binary_json(bytes, self.config.max_inflated_bytes) {
            Ok(json) => self.on_json(now_ms, socket, json),
            Err(error) => self.out.push(Output::ConnectionError(error)),
        }
    }

    /// A JSON frame: a snapshot batch with more to come gets its `next_batch` now and is
    /// decoded on the next drain; anything else is decoded at once.
    fn on_json(&mut self, now_ms: u64, socket: u64, json: std::borrow::Cow<'_, [u8]>) {
        if let Some(peek) = frames::peek_batch(&json) {
            if self.prefetch_next_batch(now_ms, &peek) {
                self.deferred = Some(DeferredFrame {
                    now_ms,
                    socket,
                    json: json.into_owned(),
                });
                return;
            }
        }
        let decoded = frames::decode_json(&json);
        self.on_frame(now_ms, decoded);
    }

    /// Sends `next_batch` for a batch that says `has_more`, before its rows are decoded.
    fn prefetch_next_batch(&mut self, now_ms: u64, peek: &frames::BatchPeek) -> bool {
        let Some(i) = self.active_sub(&peek.subscription_id) else {
            return false;
        };
        let (true, Some(last), Phase::Connected { socket }) = (
            peek.batch_control.has_more,
            peek.batch_control.last_seq_id,
            self.phase,
        ) else {
            return false;
        };
        let text = ClientMessage::NextBatch {
            subscription_id: &self.subs[i].id,
            last_seq_id: Some(last),
        }
        .to_json();
        self.subs[i].prefetched = Some(last);
        self.subs[i].deadline = self.step_deadline(now_ms);
        self.send(now_ms, socket, text);
        true
    }

    /// Decodes the deferred frame, if its socket is still the current one.
    fn settle_deferred(&mut self) {
        if let Some(frame) = self.deferred.take() {
            if self.is_current(frame.socket) {
                let decoded = frames::decode_json(&frame.json);
                self.on_frame(frame.now_ms, decoded);
            }
        }
    }

    pub fn socket_closed(&mut self, now_ms: u64, socket: u64, code: u16, reason: &str) {
        self.tick(now_ms);
        self.settle_deferred();
        if !self.is_current(socket) {
            return;
        }
        let auth_message = self.auth_error.take();
        self.lose_socket();
        let rate_limited = auth_message
            .as_deref()
            .is_some_and(|m| m.starts_with("Too many"));
        let timed_out = auth_message
            .as_deref()
            .is_some_and(|m| m.starts_with("Authentication timeout"))
            || reason.eq_ignore_ascii_case("Authentication timeout");
        let auth_failed = !rate_limited
            && !timed_out
            && (auth_message.is_some()
                || (code == 1008 && reason.eq_ignore_ascii_case("Authentication failed")));
        if auth_failed {
            let message = auth_message.unwrap_or_else(|| reason.to_string());
            self.enter_needs_auth(message);
            return;
        }
        let detail = match auth_message {
            Some(m) => format!("WebSocket closed ({code} {reason}): {m}"),
            None if reason.is_empty() => format!("WebSocket closed ({code})"),
            None => format!("WebSocket closed ({code} {reason})"),
        };
        self.out
            .push(Output::ConnectionError(KalamError::network(detail)));
        self.schedule_reconnect();
    }

    // ----- timers and page hints ------------------------------------------------------

    pub fn timer_fired(&mut self, now_ms: u64, id: TimerId) {
        self.tick(now_ms);
        if !std::mem::replace(&mut self.timers[id as usize], false) {
            return; // cancelled or never armed
        }
        match (id, self.phase) {
            (TimerId::Liveness, Phase::Connected { socket }) => self.liveness_check(now_ms, socket),
            (TimerId::Flush, _) => {
                self.rows_held = false;
                self.last_flush_ms = None; // the window is over: the next drain flushes
            }
            (TimerId::Subs, _) => {
                self.subs_timer_due = None;
                self.run_sub_timers(now_ms);
            }
            (TimerId::Ping, Phase::Connected { socket }) => {
                let interval = self.config.ping_interval_ms;
                let idle = now_ms.saturating_sub(self.last_sent_ms);
                if idle >= interval {
                    self.send(now_ms, socket, ClientMessage::Ping.to_json());
                    self.set_timer(TimerId::Ping, interval);
                } else {
                    self.set_timer(TimerId::Ping, interval - idle);
                }
            }
            (TimerId::Reconnect, Phase::Backoff) => self.start_attempt(true),
            (TimerId::Throttle, Phase::Connecting { .. } | Phase::Connected { .. }) => {
                self.flush_send_queue(now_ms)
            }
            (TimerId::ConnectTimeout, Phase::Connecting { socket, .. }) => {
                self.out.push(Output::CloseSocket {
                    socket,
                    code: 1000,
                    reason: "connect timeout".into(),
                });
                self.lose_socket();
                self.out.push(Output::ConnectionError(
                    KalamError::timeout(self.config.connect_timeout_ms.min(u32::MAX as u64) as u32)
                        .with_details("WebSocket open and authentication"),
                ));
                self.schedule_reconnect();
            }
            _ => {}
        }
    }

    /// `online` event: retry now if waiting.
    pub fn online(&mut self, now_ms: u64) {
        self.page_hint(now_ms);
    }

    /// `visibilitychange` to visible: retry now if waiting.
    pub fn visible(&mut self, now_ms: u64) {
        self.page_hint(now_ms);
    }

    /// `pageshow` (e.g. back/forward cache restore): retry now if waiting.
    pub fn pageshow(&mut self, now_ms: u64) {
        self.page_hint(now_ms);
    }

    fn page_hint(&mut self, now_ms: u64) {
        self.tick(now_ms);
        if self.shut_down {
            return;
        }
        match self.phase {
            Phase::Backoff => self.start_attempt(true),
            Phase::NeedsAuth if !self.token_wanted => self.request_token(),
            Phase::Idle if self.want_connected => {
                self.backoff.reset();
                self.start_attempt(true);
            }
            // Probe a socket that may have died while the page slept (only the echo is
            // answered, §12.3).
            Phase::Connected { socket } if self.probe_deadline.is_none() => {
                self.send_probe(now_ms, socket)
            }
            _ => {}
        }
    }

    // ----- connection internals -------------------------------------------------------

    fn socket(&self) -> Option<u64> {
        match self.phase {
            Phase::Connecting { socket, .. } | Phase::Connected { socket } => Some(socket),
            _ => None,
        }
    }

    fn is_current(&self, socket: u64) -> bool {
        self.socket() == Some(socket)
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state.clone();
            self.out.push(Output::StateChanged(state));
        }
    }

    fn set_timer(&mut self, id: TimerId, delay_ms: u64) {
        self.timers[id as usize] = true;
        self.out.push(Output::SetTimer { id, delay_ms });
    }

    fn cancel_timer(&mut self, id: TimerId) {
        if std::mem::replace(&mut self.timers[id as usize], false) {
            self.out.push(Output::CancelTimer { id });
        }
    }

    fn send(&mut self, now_ms: u64, socket: u64, text: String) {
        self.last_sent_ms = now_ms;
        if self.config.send_budget == 0 {
            self.out.push(Output::SendText { socket, text });
            return;
        }
        self.prune_sent(now_ms);
        if self.send_queue.is_empty() && self.sent_at.len() < self.config.send_budget as usize {
            self.sent_at.push_back(now_ms);
            self.out.push(Output::SendText { socket, text });
        } else {
            self.send_queue.push_back(text);
            self.arm_throttle(now_ms);
        }
    }

    fn prune_sent(&mut self, now_ms: u64) {
        let window = self.config.send_window_ms;
        while let Some(&t) = self.sent_at.front() {
            if now_ms.saturating_sub(t) >= window {
                self.sent_at.pop_front();
            } else {
                break;
            }
        }
    }

    fn arm_throttle(&mut self, now_ms: u64) {
        if self.timers[TimerId::Throttle as usize] {
            return;
        }
        let delay = self.sent_at.front().map_or(1, |&oldest| {
            (oldest + self.config.send_window_ms)
                .saturating_sub(now_ms)
                .max(1)
        });
        self.set_timer(TimerId::Throttle, delay);
    }

    /// Sends queued frames as the budget allows, in order.
    fn flush_send_queue(&mut self, now_ms: u64) {
        let Some(socket) = self.socket() else {
            self.send_queue.clear();
            return;
        };
        self.prune_sent(now_ms);
        while self.sent_at.len() < self.config.send_budget as usize {
            let Some(text) = self.send_queue.pop_front() else {
                break;
            };
            self.sent_at.push_back(now_ms);
            self.last_sent_ms = now_ms;
            self.out.push(Output::SendText { socket, text });
        }
        if !self.send_queue.is_empty() {
            self.arm_throttle(now_ms);
        }
    }

    fn request_token(&mut self) {
        self.token_wanted = true;
        self.out.push(Output::RequestToken);
    }

    fn start_attempt(&mut self, fresh_token: bool) {
        self.cancel_timer(TimerId::Reconnect);
        let socket = self.next_socket;
        self.next_socket += 1;
        self.phase = Phase::Connecting {
            socket,
            opened: false,
            authenticating: false,
        };
        self.auth_error = None;
        self.set_state(ConnectionState::Connecting);
        if fresh_token {
            self.request_token();
        }
        self.out.push(Output::OpenSocket {
            socket,
            url: self.config.socket_url(),
        });
        if self.config.connect_timeout_ms > 0 {
            self.set_timer(TimerId::ConnectTimeout, self.config.connect_timeout_ms);
        }
    }

    fn maybe_authenticate(&mut self, now_ms: u64) {
        if let Phase::Connecting {
            socket,
            opened: true,
            authenticating: false,
        } = self.phase
        {
            if self.token_wanted {
                return;
            }
            let Some(token) = self.token.as_deref() else {
                return;
            };
            let text = ClientMessage::authenticate(token).to_json();
            self.phase = Phase::Connecting {
                socket,
                opened: true,
                authenticating: true,
            };
            self.send(now_ms, socket, text);
        }
    }

    /// Forgets the current socket: timers off, every subscription unsent.
    fn lose_socket(&mut self) {
        self.cancel_timer(TimerId::Ping);
        self.cancel_timer(TimerId::ConnectTimeout);
        self.cancel_timer(TimerId::Throttle);
        self.cancel_timer(TimerId::Liveness);
        self.probe_deadline = None;
        self.burst_count = 0;
        self.burst_check = None;
        self.send_queue.clear();
        self.sent_at.clear();
        self.auth_error = None;
        self.phase = Phase::Idle;
        for sub in &mut self.subs {
            sub.sent = false;
            sub.acked = false;
            sub.loading = false;
            sub.staging = None;
            sub.staging_checkpoint = None;
            sub.deadline = None;
            sub.retry_at = None;
            sub.verify_inflight = None;
            sub.verify_due = None;
        }
    }

    fn schedule_reconnect(&mut self) {
        match self.backoff.next_delay() {
            Some((attempt, delay_ms)) => {
                self.phase = Phase::Backoff;
                self.set_timer(TimerId::Reconnect, delay_ms);
                self.set_state(ConnectionState::Reconnecting { attempt, delay_ms });
            }
            None => {
                self.phase = Phase::Idle;
                if self.backoff.config().enabled {
                    self.out
                        .push(Output::ConnectionError(KalamError::network(format!(
                            "gave up reconnecting after {} attempts",
                            self.backoff.attempt()
                        ))));
                }
                self.set_state(ConnectionState::Disconnected);
            }
        }
    }

    fn enter_needs_auth(&mut self, message: String) {
        self.auth_failures += 1;
        self.token = None;
        self.phase = Phase::NeedsAuth;
        self.set_state(ConnectionState::NeedsAuth);
        self.out.push(Output::ConnectionError(KalamError::new(
            codes::AUTH_FAILED,
            format!("WebSocket authentication failed: {message}"),
        )));
        if self.auth_failures <= 1 {
            self.request_token();
        } else {
            self.token_wanted = false;
        }
    }

    fn on_auth_success(&mut self, now_ms: u64) {
        let Phase::Connecting {
            socket,
            authenticating: true,
            ..
        } = self.phase
        else {
            return; // a duplicate auth_success
        };
        self.phase = Phase::Connected { socket };
        self.cancel_timer(TimerId::ConnectTimeout);
        self.backoff.reset();
        self.auth_failures = 0;
        self.auth_error = None;
        self.set_state(ConnectionState::Connected);
        if self.config.ping_interval_ms > 0 {
            self.set_timer(TimerId::Ping, self.config.ping_interval_ms);
        }
        self.last_recv_ms = now_ms;
        self.probe_deadline = None;
        if self.config.liveness_idle_ms > 0 {
            self.set_timer(TimerId::Liveness, self.config.liveness_idle_ms);
        }
        for i in 0..self.subs.len() {
            self.send_subscribe(now_ms, i);
        }
    }

    // ----- subscription internals -----------------------------------------------------

    fn find(&self, id: &str) -> Option<usize> {
        self.subs.iter().position(|s| s.id == id)
    }

    fn send_subscribe(&mut self, now_ms: u64, i: usize) {
        let Phase::Connected { socket } = self.phase else {
            return;
        };
        let default_batch = self.config.default_batch_size.min(MAX_BATCH_SIZE);
        let sub = &mut self.subs[i];
        let mut wire = WireSubscribeOptions {
            batch_size: Some(sub.batch_size(default_batch)),
            // `lastRows` shapes only the first snapshot: a resync after a reconnect must
            // hold every row that still matches, not the newest N (rows would vanish).
            last_rows: match (sub.mode, sub.snapshot_done) {
                (SubscriptionMode::Materialized, true) => None,
                _ => sub.options.last_rows,
            },
            from: sub.options.from,
        };
        match sub.mode {
            SubscriptionMode::Materialized => {
                sub.staging = None;
                sub.staging_checkpoint = None;
                if !sub.snapshot_done {
                    sub.rows.clear(); // an interrupted first snapshot: reload it
                }
            }
            SubscriptionMode::Events => {
                if sub.checkpoint.is_some() {
                    wire.from = sub.checkpoint;
                }
                sub.resume_from = sub.checkpoint;
            }
        }
        sub.sent = true;
        sub.acked = false;
        sub.loading = true;
        sub.prefetched = None;
        sub.retry_at = None;
        sub.verify_inflight = None;
        sub.verify_due = None;
        let deadline = self.step_deadline(now_ms);
        let sub = &mut self.subs[i];
        sub.deadline = deadline;
        let text = ClientMessage::Subscribe {
            subscription: SubscriptionRequest {
                id: &sub.id,
                sql: &sub.sql,
                options: Some(wire),
            },
        }
        .to_json();
        self.send(now_ms, socket, text);
    }

    fn on_frame(&mut self, now_ms: u64, decoded: Result<ServerMessage, KalamError>) {
        let msg = match decoded {
            Ok(msg) => msg,
            Err(error) => {
                self.out.push(Output::ConnectionError(error));
                return;
            }
        };
        match msg {
            ServerMessage::AuthSuccess(_) => self.on_auth_success(now_ms),
            ServerMessage::AuthError { message } => self.auth_error = Some(message),
            ServerMessage::SubscriptionAck(ack) => self.on_ack(now_ms, ack),
            ServerMessage::InitialDataBatch(batch) => self.on_batch(now_ms, batch),
            ServerMessage::Change(change) => self.on_change(now_ms, change),
            ServerMessage::Error(error) => self.on_server_error(error),
        }
    }

    /// The subscription a frame is for, if registered and subscribed on this socket.
    fn active_sub(&self, id: &str) -> Option<usize> {
        self.find(id).filter(|&i| self.subs[i].sent)
    }

    fn on_ack(&mut self, now_ms: u64, ack: SubscriptionAck) {
        let Some(i) = self.active_sub(&ack.subscription_id) else {
            return;
        };
        let deadline = self.step_deadline(now_ms);
        if let Some(w) = &self.subs[i].window {
            let missing =
                w.order().keys.iter().find(|k| {
                    !ack.schema.is_empty() && !ack.schema.iter().any(|f| f.name == k.column)
                });
            if let Some(k) = missing {
                let error = KalamError::invalid_argument(format!(
                    "live ORDER BY column {:?} is not a column of the query's result",
                    k.column
                ));
                self.drop_sub_fatal(i, error);
                return;
            }
        }
        let sub = &mut self.subs[i];
        if let Some(w) = &mut sub.window {
            w.set_schema(&ack.schema);
        }
        sub.deadline = deadline;
        sub.acked = true;
        sub.ever_acked = true;
        if sub.schema != ack.schema {
            sub.schema = ack.schema.clone();
        }
        match sub.mode {
            SubscriptionMode::Materialized => {
                let keys = if !sub.options.key_columns.is_empty() {
                    sub.options.key_columns.clone()
                } else {
                    primary_key_columns(&ack.schema)
                };
                let mut m = Materializer::new(keys, sub.options.limit);
                m.set_columns(ack.schema.iter().map(|f| f.name.clone()).collect());
                if sub.snapshot_done {
                    m.set_tracking(false);
                    sub.staging = Some(m);
                } else {
                    // The first snapshot reaches the shell batch by batch (`loading`
                    // deltas, starting with `reset`), so only the last batch's work is
                    // left when it completes.
                    sub.rows = m;
                    sub.parts_emitted = false;
                }
            }
            SubscriptionMode::Events => self.emit_event(i, LiveEvent::Ack(ack)),
        }
    }

    fn on_batch(&mut self, now_ms: u64, mut batch: InitialDataBatch) {
        let Some(i) = self.active_sub(&batch.subscription_id) else {
            return;
        };
        if !self.subs[i].acked || !self.subs[i].loading {
            return; // a batch of an earlier subscribe of this id (before a retry or heal)
        }
        self.subs[i].deadline = self.step_deadline(now_ms);
        let control: BatchControl = batch.batch_control.clone();
        let max_seq = batch
            .rows
            .iter()
            .filter_map(row_seq)
            .max()
            .max(control.last_seq_id);
        let sub = &mut self.subs[i];
        match sub.mode {
            SubscriptionMode::Materialized => {
                let target = sub.staging.as_mut().unwrap_or(&mut sub.rows);
                let result = target.apply_snapshot_rows(std::mem::take(&mut batch.rows));
                sub.advance(max_seq);
                if let Err(error) = result {
                    self.sub_error(i, error, false);
                }
            }
            SubscriptionMode::Events => {
                if let Some(from) = sub.resume_from {
                    batch.rows.retain(|r| row_seq(r).is_none_or(|s| s > from));
                }
                sub.advance(max_seq);
                self.emit_event(i, LiveEvent::Batch(batch));
            }
        }
        if control.has_more {
            if let (Some(last), Phase::Connected { socket }) = (control.last_seq_id, self.phase) {
                if self.subs[i].prefetched.take() == Some(last) {
                    return; // requested when the frame arrived
                }
                let text = ClientMessage::NextBatch {
                    subscription_id: &self.subs[i].id,
                    last_seq_id: Some(last),
                }
                .to_json();
                self.send(now_ms, socket, text);
                return;
            }
            // Cannot page without a cursor: settle for what arrived and say so.
            let error = KalamError::protocol(
                "snapshot batch has has_more=true but no last_seq_id; the snapshot may be incomplete",
            );
            self.sub_error(i, error, false);
        }
        let verify_due = self.verifies(i).then_some(()).and_then(|()| {
            let interval = self.config.verify.interval_ms;
            (interval > 0).then_some(now_ms + interval)
        });
        let sub = &mut self.subs[i];
        sub.loading = false;
        sub.deadline = None;
        sub.retries = 0;
        sub.verify_due = verify_due;
        sub.mismatches = 0;
        if sub.mode == SubscriptionMode::Materialized {
            if let Some(staging) = sub.staging.take() {
                sub.rows.resync_from(staging);
                sub.resync_pending = true;
                let loaded = sub.staging_checkpoint.take();
                sub.advance(loaded);
            } else if !sub.snapshot_done && sub.options.last_rows.is_some() {
                // `lastRows` shapes only this first snapshot (see `set_resync_floor`).
                sub.rows.set_resync_floor();
            }
            sub.snapshot_done = true;
        }
    }

    fn on_change(&mut self, now_ms: u64, mut change: ChangeEvent) {
        let Some(i) = self.active_sub(&change.subscription_id) else {
            return;
        };
        self.note_change(now_ms);
        let versions = match change.change_type {
            ChangeType::Insert | ChangeType::Update => &change.rows,
            ChangeType::Delete => &change.old_values,
        };
        let max_seq = versions.iter().filter_map(row_seq).max();
        let sub = &mut self.subs[i];
        match sub.mode {
            SubscriptionMode::Materialized => {
                let target = sub.staging.as_mut().unwrap_or(&mut sub.rows);
                let result = target.apply_change(change);
                sub.advance(max_seq);
                if let Err(error) = result {
                    self.sub_error(i, error, false);
                }
            }
            SubscriptionMode::Events => {
                if let Some(from) = sub.resume_from {
                    let fresh = |r: &Row| row_seq(r).is_none_or(|s| s > from);
                    match change.change_type {
                        ChangeType::Insert => change.rows.retain(fresh),
                        ChangeType::Update => {
                            if !change.rows.iter().any(fresh) {
                                change.rows.clear();
                            }
                        }
                        ChangeType::Delete => change.old_values.retain(fresh),
                    }
                    let replay = match change.change_type {
                        ChangeType::Insert | ChangeType::Update => change.rows.is_empty(),
                        ChangeType::Delete => change.old_values.is_empty(),
                    };
                    if replay {
                        return;
                    }
                }
                sub.advance(max_seq);
                self.emit_event(i, LiveEvent::Change(change));
            }
        }
    }

    fn on_server_error(&mut self, error: ServerError) {
        if error.subscription_id.starts_with(ECHO_ID_PREFIX) {
            return; // the answer to a liveness echo (its arrival already counted)
        }
        let Some(i) = self.find(&error.subscription_id) else {
            self.out.push(Output::ConnectionError(error.to_error()));
            return;
        };
        let err = error.to_error();
        if !self.subs[i].ever_acked || permanent_error(&err.code) {
            // Never accepted (it does not exist server-side), or refused for good.
            self.drop_sub_fatal(i, err);
        } else {
            // After an ack (paging, resync, live) or a refused resubscribe: retry with
            // backoff, then fail loudly.
            self.retry_sub(i, err);
        }
    }

    /// Reports `error` as fatal and forgets the subscription (telling the server if it
    /// may still hold it).
    fn drop_sub_fatal(&mut self, i: usize, error: KalamError) {
        self.sub_error(i, error, true);
        let sub = self.subs.remove(i);
        if let (Phase::Connected { socket }, true) = (self.phase, sub.acked) {
            let text = ClientMessage::Unsubscribe {
                subscription_id: &sub.id,
            }
            .to_json();
            let now = self.now;
            self.send(now, socket, text);
        }
    }

    /// A failed attempt of subscription `i`: reported (not fatal) and subscribed again after
    /// a backoff; after [`LiveConfig::sub_max_retries`] failures in a row, fatal. Rows
    /// already shown stay (a resync swaps in the next snapshot as one delta).
    fn retry_sub(&mut self, i: usize, error: KalamError) {
        let max = self.config.sub_max_retries;
        let now = self.now;
        let sub = &mut self.subs[i];
        sub.retries += 1;
        if sub.retries > max {
            let message = format!("{} (gave up after {} attempts)", error.message, sub.retries);
            let fatal = KalamError { message, ..error };
            self.drop_sub_fatal(i, fatal);
            return;
        }
        sub.sent = false;
        sub.acked = false;
        sub.loading = false;
        sub.staging = None;
        sub.staging_checkpoint = None;
        sub.prefetched = None;
        sub.deadline = None;
        sub.verify_inflight = None;
        sub.verify_due = None;
        sub.retry_at = Some(now + retry_delay_ms(sub.retries));
        self.sub_error(i, error, false);
    }

    fn tick(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
    }

    /// The progress deadline of a snapshot step sent now (queued frames wait for budget).
    fn step_deadline(&self, now_ms: u64) -> Option<u64> {
        let step = self.config.snapshot_step_timeout_ms;
        (step > 0).then(|| now_ms + step + self.queue_delay_ms())
    }

    /// How long frames queued now wait for the send budget.
    fn queue_delay_ms(&self) -> u64 {
        let budget = u64::from(self.config.send_budget.max(1));
        self.send_queue.len() as u64 * self.config.send_window_ms / budget
    }

    fn on_recv(&mut self, now_ms: u64) {
        self.last_recv_ms = now_ms;
        self.probe_deadline = None;
    }

    // ----- liveness -------------------------------------------------------------------

    fn liveness_check(&mut self, now_ms: u64, socket: u64) {
        let idle_ms = self.config.liveness_idle_ms;
        if idle_ms == 0 {
            return;
        }
        if let Some(deadline) = self.probe_deadline {
            if now_ms >= deadline + LATE_TIMER_MS && !self.probe_grace {
                // The timer fired late (a blocked main thread, a throttled background tab):
                // an answer may be waiting behind it in the task queue. Look once more.
                self.probe_grace = true;
                self.probe_deadline = Some(now_ms + LATE_TIMER_MS);
                self.set_timer(TimerId::Liveness, LATE_TIMER_MS);
            } else if now_ms >= deadline {
                self.socket_dead(socket);
            } else {
                self.set_timer(TimerId::Liveness, deadline - now_ms);
            }
            return;
        }
        let idle = now_ms.saturating_sub(self.last_recv_ms);
        if idle >= idle_ms {
            self.send_probe(now_ms, socket);
        } else {
            self.set_timer(TimerId::Liveness, idle_ms - idle);
        }
    }

    /// Sends the echo (§12.3) and arms its deadline.
    fn send_probe(&mut self, now_ms: u64, socket: u64) {
        if self.config.liveness_idle_ms == 0 {
            self.send(now_ms, socket, ClientMessage::Ping.to_json());
            return;
        }
        self.next_probe += 1;
        let id = format!("{ECHO_ID_PREFIX}{}", self.next_probe);
        let text = ClientMessage::NextBatch {
            subscription_id: &id,
            last_seq_id: Some(SeqId::new(1)),
        }
        .to_json();
        let wait = self.config.liveness_timeout_ms + self.queue_delay_ms();
        self.send(now_ms, socket, text);
        self.probe_deadline = Some(now_ms + wait);
        self.probe_grace = false;
        self.set_timer(TimerId::Liveness, wait);
    }

    /// The echo went unanswered: the path is dead although the socket looks open.
    fn socket_dead(&mut self, socket: u64) {
        self.out.push(Output::CloseSocket {
            socket,
            code: 4000,
            reason: "liveness echo unanswered".into(),
        });
        self.lose_socket();
        let wait = self.config.liveness_timeout_ms.min(u64::from(u32::MAX)) as u32;
        self.out.push(Output::ConnectionError(
            KalamError::timeout(wait).with_details(
                "the liveness echo got no answer: the connection is dead (no frame arrives)",
            ),
        ));
        self.schedule_reconnect();
    }

    // ----- per-subscription timers and self-verification --------------------------------

    /// Whether subscription `i` checks itself.
    fn verifies(&self, i: usize) -> bool {
        let sub = &self.subs[i];
        sub.mode == SubscriptionMode::Materialized
            && self.config.verify.enabled
            && sub.options.verify != Some(false)
    }

    /// Acknowledged on the current socket with a complete snapshot and nothing staging.
    fn is_live(&self, i: usize) -> bool {
        let sub = &self.subs[i];
        sub.sent && sub.acked && !sub.loading && sub.staging.is_none() && self.is_connected()
    }

    /// A change frame arrived: track runs that may have overflowed the server's queue.
    fn note_change(&mut self, now_ms: u64) {
        let after = self.config.verify.after_burst;
        if after == 0 || !self.config.verify.enabled {
            return;
        }
        if self.burst_count == 0 || now_ms.saturating_sub(self.last_change_ms) > BURST_GAP_MS {
            self.burst_count = 0;
            self.burst_first_ms = now_ms;
        }
        self.burst_count += 1;
        self.last_change_ms = now_ms;
        if self.burst_count >= after {
            let at = (now_ms + self.config.verify.settle_ms)
                .min(self.burst_first_ms + BURST_MAX_DEFER_MS)
                .max(now_ms);
            self.burst_check = Some(at);
        }
    }

    fn rearm_subs_timer(&mut self) {
        let mut due = self.burst_check;
        for s in &self.subs {
            due = min_due(due, s.deadline);
            due = min_due(due, s.retry_at);
            due = min_due(due, s.verify_due);
        }
        if due != self.subs_timer_due || (due.is_some() && !self.timers[TimerId::Subs as usize]) {
            self.subs_timer_due = due;
            match due {
                Some(at) => self.set_timer(TimerId::Subs, at.saturating_sub(self.now)),
                None => self.cancel_timer(TimerId::Subs),
            }
        }
    }

    /// Everything per subscription that is due: stalled snapshots, retries, checks. Each
    /// due time that passed is consumed (set again only by what happens next).
    fn run_sub_timers(&mut self, now_ms: u64) {
        if self.burst_check.is_some_and(|t| t <= now_ms) {
            self.burst_check = None;
            self.burst_count = 0;
            // Staggered: many subscriptions must not hit the server's per-user SQL rate
            // limit (100/s) with their checks all at once.
            let mut next = now_ms;
            for i in 0..self.subs.len() {
                if self.verifies(i) && self.is_live(i) {
                    let sub = &mut self.subs[i];
                    if sub.verify_inflight.is_some() {
                        sub.verify_again = true;
                    } else {
                        sub.verify_due = Some(next);
                        next += BURST_CHECK_STAGGER_MS;
                    }
                }
            }
        }
        let mut i = 0;
        while i < self.subs.len() {
            let before = self.subs.len();
            self.run_sub_timer(now_ms, i);
            if self.subs.len() == before {
                i += 1;
            }
        }
    }

    fn run_sub_timer(&mut self, now_ms: u64, i: usize) {
        if self.subs[i].deadline.is_some_and(|t| t <= now_ms) {
            self.subs[i].deadline = None;
            let step = self
                .config
                .snapshot_step_timeout_ms
                .min(u64::from(u32::MAX)) as u32;
            let error = KalamError::timeout(step)
                .with_details("the server did not answer a subscribe or next_batch");
            self.retry_sub(i, error);
            return;
        }
        if self.subs[i].retry_at.is_some_and(|t| t <= now_ms) {
            self.subs[i].retry_at = None;
            // The server may still hold the failed subscription: replace it cleanly. Offline,
            // every subscription is sent after the next auth_success.
            self.replace_on_server(now_ms, i);
        }
        let sub = &self.subs[i];
        if sub.verify_due.is_some_and(|t| t <= now_ms) {
            self.subs[i].verify_due = None;
            if let Some((_, sent_at, _)) = self.subs[i].verify_inflight {
                if now_ms.saturating_sub(sent_at) < VERIFY_ANSWER_MS {
                    self.subs[i].verify_due = Some(sent_at + VERIFY_ANSWER_MS);
                    return;
                }
                self.subs[i].verify_inflight = None; // never answered: ask again
            }
            if self.verifies(i) && self.is_live(i) {
                self.start_verify(now_ms, i);
            }
        }
    }

    fn start_verify(&mut self, now_ms: u64, i: usize) {
        let sub = &self.subs[i];
        let figures = sub.rows.seq_figures(verify::CHECKSUM_MODULUS, None);
        let limit_full = sub.options.limit.is_some_and(|l| sub.rows.len() >= l);
        // A `from` set holds what was written after `from`; a `lastRows` set what was
        // written from its oldest row on (updates of older rows enter it).
        let after = |s: SeqId| SeqId::new(s.as_i64().saturating_add(1));
        let floor = if limit_full {
            None
        } else if let Some(from) = sub.options.from {
            Some(after(from))
        } else if sub.options.last_rows.is_some() {
            figures.and_then(|f| f.min).or(sub.checkpoint.map(after))
        } else {
            None
        };
        let Some(sql) = figures.and(verify::checksum_sql(&sub.sql, floor)) else {
            return; // rows without `_seq`: nothing to compare
        };
        self.next_request += 1;
        let request = self.next_request;
        let sub = &mut self.subs[i];
        sub.verify_inflight = Some((request, now_ms, floor));
        sub.verify_again = false;
        sub.verify_due = Some(now_ms + VERIFY_ANSWER_MS);
        self.out.push(Output::Verify {
            subscription_id: sub.id.clone(),
            request,
            sql,
        });
    }

    /// The answer to an [`Output::Verify`]: the server's checksum figures, or why the query
    /// failed. Compared with the same figures over the materialized rows; two mismatches in
    /// a row ([`VerifyConfig::confirm_ms`] apart) resync the subscription.
    pub fn verify_result(
        &mut self,
        now_ms: u64,
        subscription_id: &str,
        request: u64,
        result: Result<Checksum, KalamError>,
    ) {
        self.tick(now_ms);
        let Some(i) = self.find(subscription_id) else {
            return;
        };
        let Some((req, _, floor)) = self.subs[i].verify_inflight else {
            return;
        };
        if req != request {
            return;
        }
        self.subs[i].verify_inflight = None;
        self.subs[i].verify_due = None;
        if !self.is_live(i) {
            return; // resyncing or reconnecting: checked again once live
        }
        let cfg = self.config.verify.clone();
        let again = std::mem::take(&mut self.subs[i].verify_again);
        let server = match result {
            Ok(figures) => figures,
            Err(error) => {
                let sub = &mut self.subs[i];
                sub.verify_failures += 1;
                let backoff =
                    cfg.interval_ms.max(cfg.confirm_ms) * u64::from(sub.verify_failures.min(10));
                sub.verify_due = Some(now_ms + backoff.max(1000));
                if sub.verify_failures == 1 {
                    self.sub_error(i, verify::query_error(error), false);
                }
                return;
            }
        };
        let sub = &mut self.subs[i];
        sub.verify_failures = 0;
        // A `limit` set holds the newest keys only when the table holds more than `limit`
        // rows: then only the newest `_seq` can be compared.
        let limited = sub
            .options
            .limit
            .is_some_and(|l| sub.rows.len() >= l || server.count > l as u64);
        let Some(local) = sub.rows.seq_figures(verify::CHECKSUM_MODULUS, floor) else {
            return;
        };
        let same = if limited {
            local.max == server.max
        } else {
            local.count == server.count && local.sum == server.sum && local.max == server.max
        };
        if same {
            sub.mismatches = 0;
            let next = if again {
                cfg.settle_ms
            } else {
                cfg.interval_ms
            };
            sub.verify_due = (next > 0).then_some(now_ms + next);
            return;
        }
        sub.mismatches += 1;
        if sub.mismatches < 2 {
            sub.verify_due = Some(now_ms + cfg.confirm_ms);
            return;
        }
        // Confirmed: notifications were lost. Resync in the background (staging).
        sub.mismatches = 0;
        self.replace_on_server(now_ms, i);
    }

    /// Unsubscribes and subscribes `subs[i]` again on the open socket (nothing when offline:
    /// the next auth_success sends every subscription).
    fn replace_on_server(&mut self, now_ms: u64, i: usize) {
        if let Phase::Connected { socket } = self.phase {
            let text = ClientMessage::Unsubscribe {
                subscription_id: &self.subs[i].id,
            }
            .to_json();
            self.send(now_ms, socket, text);
            self.send_subscribe(now_ms, i);
        }
    }

    fn sub_error(&mut self, i: usize, error: KalamError, fatal: bool) {
        self.flush_sub(i);
        self.out.push(Output::SubscriptionError {
            subscription_id: self.subs[i].id.clone(),
            error,
            fatal,
        });
    }

    /// Emits subscription `i`'s checkpoint when it advanced since the last one emitted.
    fn emit_checkpoint(&mut self, i: usize) {
        let sub = &mut self.subs[i];
        if sub.checkpoint != sub.emitted_checkpoint {
            sub.emitted_checkpoint = sub.checkpoint;
            if let Some(last_seq_id) = sub.checkpoint {
                self.out.push(Output::Checkpoint {
                    subscription_id: sub.id.clone(),
                    last_seq_id,
                });
            }
        }
    }

    fn emit_event(&mut self, i: usize, event: LiveEvent) {
        let sub = &mut self.subs[i];
        self.out.push(Output::Event {
            subscription_id: sub.id.clone(),
            event,
        });
        self.emit_checkpoint(i);
    }

    /// Flushes every subscription's pending delta, unless a coalescing window is open
    /// ([`LiveConfig::coalesce_ms`]): then the `Flush` timer is armed for its end and the
    /// changes meanwhile add up in the materializers.
    fn flush_rows(&mut self) {
        if self.rows_held {
            return;
        }
        let window = self.config.coalesce_ms;
        if window > 0 && self.subs.iter().any(|s| s.rows.has_pending_delta()) {
            if let Some(due) = self.last_flush_ms.map(|t| t + window) {
                if self.now < due {
                    self.rows_held = true;
                    self.set_timer(TimerId::Flush, due - self.now);
                    return;
                }
            }
            self.last_flush_ms = Some(self.now);
        }
        for i in 0..self.subs.len() {
            self.flush_sub(i);
        }
    }

    /// Emits a materialized subscription's pending delta (and checkpoint), unless its
    /// snapshot is still loading or staging.
    fn flush_sub(&mut self, i: usize) {
        let sub = &mut self.subs[i];
        if sub.mode != SubscriptionMode::Materialized || sub.staging.is_some() {
            return;
        }
        if !sub.snapshot_done {
            // First snapshot still loading: hand over what arrived, without a checkpoint
            // (the app sees nothing until the snapshot is complete).
            if sub.rows.has_pending_delta() {
                let mut delta = sub.rows.take_delta();
                delta.initial = true;
                delta.loading = true;
                delta.reset = !std::mem::replace(&mut sub.parts_emitted, true);
                if let Some(w) = &mut sub.window {
                    delta = w.apply(delta);
                }
                self.out.push(Output::Rows {
                    subscription_id: sub.id.clone(),
                    delta,
                });
            }
            return;
        }
        let delta = if sub.initial_emitted {
            let mut delta = sub.rows.take_delta();
            delta.resync = std::mem::take(&mut sub.resync_pending);
            if let Some(w) = &mut sub.window {
                delta = w.apply(delta);
            }
            (!delta.is_empty() || delta.order.is_some()).then_some(delta)
        } else {
            let mut delta = sub.rows.take_delta();
            delta.initial = true;
            delta.reset = !sub.parts_emitted;
            sub.initial_emitted = true;
            sub.resync_pending = false;
            if let Some(w) = &mut sub.window {
                delta = w.apply(delta);
            }
            Some(delta)
        };
        if let Some(delta) = delta {
            self.out.push(Output::Rows {
                subscription_id: sub.id.clone(),
                delta,
            });
        }
        self.emit_checkpoint(i);
    }
}
