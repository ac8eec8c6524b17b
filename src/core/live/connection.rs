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
//! acknowledged is fatal (`fatal: true`, the subscription is dropped: it
//! does not exist server-side); other subscription errors are reported and the
//! subscription stays registered (a failed resubscribe is retried on the next reconnect).
//! `unsubscribe` and `disconnect` always succeed locally; `disconnect` keeps the
//! subscriptions (with their rows) for `connect()` or a later `subscribe`, which reconnect;
//! `shutdown` forgets everything and refuses further use (`CLOSED`).

use serde::Serialize;

use super::frames::{
    self, BatchControl, ChangeEvent, ChangeType, ClientMessage, InitialDataBatch, Row, ServerError,
    ServerMessage, SubscriptionAck, SubscriptionRequest, WireSubscribeOptions,
};
use super::materializer::{self, row_seq, Materializer, RowsDelta};
use super::reconnect::{Backoff, JitterFn, ReconnectConfig};
use super::sql::validate_live_sql;
use crate::core::error::{codes, KalamError};
use crate::core::schema::{primary_key_columns, SchemaField};
use crate::core::seq_id::SeqId;

/// Default rows per snapshot batch. Must stay below 1000: a default server truncates a batch
/// of 1000+ rows to its query limit and reports `has_more: false` (70-limits.json).
pub const DEFAULT_BATCH_SIZE: u32 = 500;
/// Largest accepted `batch_size`.
pub const MAX_BATCH_SIZE: u32 = 999;

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
}

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
}

impl TimerId {
    pub const ALL: [TimerId; 4] = [
        TimerId::Ping,
        TimerId::Reconnect,
        TimerId::ConnectTimeout,
        TimerId::Throttle,
    ];

    pub fn as_u32(self) -> u32 {
        self as u32
    }

    pub fn from_u32(n: u32) -> Option<TimerId> {
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
    timers: [bool; 4],
    /// Send times within the current budget window (oldest first).
    sent_at: std::collections::VecDeque<u64>,
    /// Frames for the current socket waiting for budget.
    send_queue: std::collections::VecDeque<String>,
    last_sent_ms: u64,
    /// A snapshot batch whose `next_batch` went out before its rows were decoded.
    deferred: Option<DeferredFrame>,
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
            timers: [false; 4],
            sent_at: std::collections::VecDeque::new(),
            send_queue: std::collections::VecDeque::new(),
            last_sent_ms: 0,
            deferred: None,
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

    pub fn is_shut_down(&self) -> bool {
        self.shut_down
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
        for i in 0..self.subs.len() {
            self.flush_sub(i);
        }
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
        if self.shut_down {
            return Err(KalamError::closed("the client was shut down"));
        }
        validate_live_sql(sql)?;
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
            staging: None,
            resume_from: None,
            schema: Vec::new(),
            prefetched: None,
            parts_emitted: false,
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
            if b > MAX_BATCH_SIZE {
                return Err(KalamError::invalid_argument(format!(
                    "batch_size must be at most {MAX_BATCH_SIZE} (the server truncates batches of 1000+ rows), got {b}"
                )));
            }
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
    pub fn connect(&mut self, _now_ms: u64) {
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
    pub fn disconnect(&mut self, _now_ms: u64) {
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
        self.token = None;
        self.shut_down = true;
    }

    // ----- auth provider -------------------------------------------------------------

    /// A token from the auth provider (requested or not).
    pub fn token_ready(&mut self, now_ms: u64, token: String) {
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
    pub fn token_failed(&mut self, _now_ms: u64, error: KalamError) {
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
        self.settle_deferred();
        if self.is_current(socket) {
            self.on_json(now_ms, socket, std::borrow::Cow::Borrowed(text.as_bytes()));
        }
    }

    pub fn socket_binary(&mut self, now_ms: u64, socket: u64, bytes: &[u8]) {
        self.settle_deferred();
        if !self.is_current(socket) {
            return;
        }
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

    pub fn socket_closed(&mut self, _now_ms: u64, socket: u64, code: u16, reason: &str) {
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
        if !std::mem::replace(&mut self.timers[id as usize], false) {
            return; // cancelled or never armed
        }
        match (id, self.phase) {
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
            // Probe a socket that may have died while the page slept.
            Phase::Connected { socket } => self.send(now_ms, socket, ClientMessage::Ping.to_json()),
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
            last_rows: sub.options.last_rows,
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
            ServerMessage::SubscriptionAck(ack) => self.on_ack(ack),
            ServerMessage::InitialDataBatch(batch) => self.on_batch(now_ms, batch),
            ServerMessage::Change(change) => self.on_change(change),
            ServerMessage::Error(error) => self.on_server_error(error),
        }
    }

    /// The subscription a frame is for, if registered and subscribed on this socket.
    fn active_sub(&self, id: &str) -> Option<usize> {
        self.find(id).filter(|&i| self.subs[i].sent)
    }

    fn on_ack(&mut self, ack: SubscriptionAck) {
        let Some(i) = self.active_sub(&ack.subscription_id) else {
            return;
        };
        let sub = &mut self.subs[i];
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
        let sub = &mut self.subs[i];
        sub.loading = false;
        if sub.mode == SubscriptionMode::Materialized {
            if let Some(staging) = sub.staging.take() {
                sub.rows.resync_from(staging);
                sub.resync_pending = true;
                let loaded = sub.staging_checkpoint.take();
                sub.advance(loaded);
            }
            sub.snapshot_done = true;
        }
    }

    fn on_change(&mut self, mut change: ChangeEvent) {
        let Some(i) = self.active_sub(&change.subscription_id) else {
            return;
        };
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
        match self.find(&error.subscription_id) {
            Some(i) => {
                let fatal = !self.subs[i].ever_acked;
                let acked_here = self.subs[i].acked;
                self.sub_error(i, error.to_error(), fatal);
                if fatal {
                    self.subs.remove(i);
                } else if !acked_here {
                    // A failed resubscribe: not live on this socket; retried on reconnect.
                    let sub = &mut self.subs[i];
                    sub.sent = false;
                    sub.loading = false;
                    sub.staging = None;
                }
            }
            None => self.out.push(Output::ConnectionError(error.to_error())),
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
            (!delta.is_empty()).then_some(delta)
        } else {
            let mut delta = sub.rows.take_delta();
            delta.initial = true;
            delta.reset = !sub.parts_emitted;
            sub.initial_emitted = true;
            sub.resync_pending = false;
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
