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
//!   [`super::verify`], and the row-cap check, [`cap`]).
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
//! # Row cap
//! A server cuts a first batch at its `max_query_limit` and says `has_more: false`, so a
//! materialized snapshot that arrives in one batch completes only after a `COUNT(*)` shows
//! nothing is missing; a cap found that way is paged below from then on ([`cap`]).
//!
//! # Self-verification
//! Materialized subscriptions compare the checksum of §12.2 with their rows after bursts
//! and periodically, and resync on a confirmed mismatch ([`super::verify`]).
//! `unsubscribe` and `disconnect` always succeed locally; `disconnect` keeps the
//! subscriptions (with their rows) for `connect()` or a later `subscribe`, which reconnect;
//! `shutdown` forgets everything and refuses further use (`CLOSED`).

use super::frames::{
    self, BatchControl, ChangeEvent, ChangeType, ClientMessage, InitialDataBatch, ServerError,
    ServerMessage, SubscriptionAck, SubscriptionRequest, WireSubscribeOptions,
};
use super::materializer::{self, row_seq, Materializer};
use super::ordered::OrderedWindow;
use super::reconnect::{Backoff, JitterFn};
use super::sql::split_live_order;
use super::verify::{self, Checksum, BURST_GAP_MS, BURST_MAX_DEFER_MS};
use crate::core::error::{codes, KalamError};
use crate::core::schema::{primary_key_columns, SchemaField};
use crate::core::seq_id::SeqId;

pub use super::config::{
    check_batch_size, LiveConfig, SubscribeOptions, DEFAULT_BATCH_SIZE, DEFAULT_COALESCE_BURST,
    DEFAULT_COALESCE_MS, MAX_BATCH_SIZE,
};
pub use super::output::{
    ConnectionState, LiveEvent, Output, SubscriptionInfo, SubscriptionMode, TimerId,
};
use subscription::{SubPhase, Subscription};

mod cap;
mod link;
mod replay;
mod selfcheck;
mod subscription;
mod throttle;

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
    /// When deltas were flushed within the last coalescing window, oldest first.
    recent_flushes: std::collections::VecDeque<u64>,
    /// Deltas are held until the `Flush` timer fires.
    rows_held: bool,
    /// What snapshots showed of the server's row cap ([`cap`]).
    row_cap: cap::RowCap,
}

/// Subscription ids of liveness echoes (never a registered id: those are `sub-N`).
pub const ECHO_ID_PREFIX: &str = "kalam-wasm-echo-";

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
            recent_flushes: std::collections::VecDeque::new(),
            rows_held: false,
            row_cap: Default::default(),
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
                live: s.phase == SubPhase::Live,
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

    // ----- API calls (`subscribe`/`unsubscribe`: [`subscription`]) ----------------------

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
                self.rows_held = false; // the oldest flush left the window: the next drain flushes
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
}
