//! The subscription registry: a [`Subscription`]'s state, `subscribe`/`unsubscribe`, the
//! server frames addressed to a subscription (ack, snapshot batches, changes, errors; resume
//! replays dropped by [`replay`]), its retries, and the flush of its deltas to the shell
//! (coalesced per [`LiveConfig::coalesce_ms`]).

use super::*;
use crate::core::json::quote;

#[derive(Debug)]
pub(super) struct Subscription {
    pub(super) id: String,
    pub(super) sql: String,
    pub(super) mode: SubscriptionMode,
    pub(super) options: SubscribeOptions,
    /// Where the subscription stands on the current socket.
    pub(super) phase: SubPhase,
    /// Acknowledged at least once on any socket (exists server-side).
    pub(super) ever_acked: bool,
    /// The active materializer holds a complete snapshot.
    pub(super) snapshot_done: bool,
    pub(super) initial_emitted: bool,
    pub(super) resync_pending: bool,
    pub(super) rows: Materializer,
    /// Live `ORDER BY … LIMIT`: the window the subscriber sees over `rows` (which holds
    /// the full filtered set; resync and self-verification work on that).
    pub(super) window: Option<OrderedWindow>,
    pub(super) staging: Option<Materializer>,
    pub(super) checkpoint: Option<SeqId>,
    /// Max `_seq` loaded into `staging`; becomes the checkpoint when the staging is swapped in.
    pub(super) staging_checkpoint: Option<SeqId>,
    pub(super) emitted_checkpoint: Option<SeqId>,
    /// Events mode: drop rows with `_seq <=` this (the checkpoint at resubscribe).
    pub(super) resume_from: Option<SeqId>,
    /// The schema of the latest `subscription_ack` (empty before the first one).
    pub(super) schema: Vec<SchemaField>,
    /// `next_batch` already sent for a batch with this `last_seq_id` (see [`DeferredFrame`]).
    pub(super) prefetched: Option<SeqId>,
    /// Part of the first snapshot being loaded was emitted (`loading: true` deltas).
    pub(super) parts_emitted: bool,
    /// The snapshot being loaded must make progress by then, else it is retried.
    pub(super) deadline: Option<u64>,
    /// Consecutive failed attempts (reset when a snapshot completes).
    pub(super) retries: u32,
    /// Next self-verification (live subscriptions only).
    pub(super) verify_due: Option<u64>,
    /// The checksum request in flight: `(request, sent at, floor)`.
    pub(super) verify_inflight: Option<(u64, u64, Option<SeqId>)>,
    /// A check was asked for while one was in flight.
    pub(super) verify_again: bool,
    /// Consecutive checksum mismatches.
    pub(super) mismatches: u32,
    /// Consecutive failed checksum queries.
    pub(super) verify_failures: u32,
    /// The row-cap check of its snapshots ([`super::cap`]).
    pub(super) cap: super::cap::SubCap,
}

/// A subscription's progress on the current socket. History that outlives a socket
/// (`ever_acked`, `snapshot_done`) stays in [`Subscription`]; a resync is `Loading` with a
/// staging materializer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SubPhase {
    /// Not subscribed on this socket: sent after the next `auth_success`, or at `retry_at`
    /// after a failed attempt.
    Unsent { retry_at: Option<u64> },
    /// `subscribe` sent, no `subscription_ack` yet.
    Subscribing,
    /// Acknowledged; snapshot batches are being paged in.
    Loading,
    /// Acknowledged with the snapshot complete: changes apply as they arrive.
    Live,
}

impl Subscription {
    /// `subscribe` was sent on the current socket (frames for this id are ours).
    pub(super) fn is_sent(&self) -> bool {
        !matches!(self.phase, SubPhase::Unsent { .. })
    }

    /// `subscription_ack` received on the current socket (the server holds it).
    pub(super) fn is_acked(&self) -> bool {
        matches!(self.phase, SubPhase::Loading | SubPhase::Live)
    }

    /// When a failed subscription is subscribed again.
    pub(super) fn retry_at(&self) -> Option<u64> {
        match self.phase {
            SubPhase::Unsent { retry_at } => retry_at,
            _ => None,
        }
    }

    pub(super) fn advance(&mut self, seq: Option<SeqId>) {
        if self.staging.is_some() {
            self.staging_checkpoint = self.staging_checkpoint.max(seq);
        } else if seq > self.checkpoint {
            self.checkpoint = seq;
        }
    }

    pub(super) fn batch_size(&self, default: u32) -> u32 {
        self.options
            .batch_size
            .unwrap_or_else(|| default.max(self.options.last_rows.unwrap_or(0)))
    }
}

/// Error codes after which retrying a subscription cannot help.
pub(super) fn permanent_error(code: &str) -> bool {
    matches!(
        code,
        "UNAUTHORIZED" | "NOT_FOUND" | "INVALID_SQL" | "INVALID_SUBSCRIPTION_ID"
    )
}

/// Backoff of subscription retries: 1 s, 2 s, 4 s … capped at 30 s.
pub(super) fn retry_delay_ms(attempt: u32) -> u64 {
    crate::core::backoff::ceiling_ms(attempt.saturating_sub(1), 1000, 30_000)
}

impl LiveCore {
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
            phase: SubPhase::Unsent { retry_at: None },
            ever_acked: false,
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
            retries: 0,
            verify_due: None,
            verify_inflight: None,
            verify_again: false,
            mismatches: 0,
            verify_failures: 0,
            cap: Default::default(),
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

    pub(super) fn validate_options(
        &self,
        mut o: SubscribeOptions,
    ) -> Result<SubscribeOptions, KalamError> {
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
        if let (Phase::Connected { socket }, true) = (self.phase, sub.is_sent()) {
            let text = ClientMessage::Unsubscribe {
                subscription_id: &sub.id,
            }
            .to_json();
            self.send(now_ms, socket, text);
        }
        true
    }

    pub(super) fn find(&self, id: &str) -> Option<usize> {
        self.subs.iter().position(|s| s.id == id)
    }

    pub(super) fn send_subscribe(&mut self, now_ms: u64, i: usize) {
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
        wire.batch_size = wire
            .batch_size
            .map(|b| sub.cap.batch(&self.row_cap, b, wire.last_rows.is_some()));
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
        sub.phase = SubPhase::Subscribing;
        sub.prefetched = None;
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
        self.count_with_subscribe(i);
    }

    pub(super) fn on_frame(&mut self, now_ms: u64, decoded: Result<ServerMessage, KalamError>) {
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
    pub(super) fn active_sub(&self, id: &str) -> Option<usize> {
        self.find(id).filter(|&i| self.subs[i].is_sent())
    }

    pub(super) fn on_ack(&mut self, now_ms: u64, ack: SubscriptionAck) {
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
                    "live ORDER BY column {} is not a column of the query's result",
                    quote(&k.column)
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
        if sub.phase == SubPhase::Subscribing {
            sub.phase = SubPhase::Loading; // a repeated ack leaves a live subscription live
        }
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

    pub(super) fn on_batch(&mut self, now_ms: u64, mut batch: InitialDataBatch) {
        let Some(i) = self.active_sub(&batch.subscription_id) else {
            return;
        };
        if self.subs[i].phase != SubPhase::Loading {
            return; // a batch of an earlier subscribe of this id (before a retry or heal)
        }
        self.subs[i].deadline = self.step_deadline(now_ms);
        let batch_rows = batch.rows.len();
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
                    replay::drop_replayed_rows(&mut batch.rows, from);
                }
                sub.advance(max_seq);
                self.emit_event(i, LiveEvent::Batch(batch));
            }
        }
        if control.has_more {
            self.note_paged(i);
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
        if self.hold_for_row_count(now_ms, i, batch_rows) {
            return;
        }
        self.complete_snapshot(now_ms, i);
    }

    /// Subscription `i`'s snapshot is complete: it goes live (a resync's staging is swapped
    /// in), and the next drain emits it.
    pub(super) fn complete_snapshot(&mut self, now_ms: u64, i: usize) {
        let verify_due = self.verifies(i).then_some(()).and_then(|()| {
            let interval = self.config.verify.interval_ms;
            (interval > 0).then_some(now_ms + interval)
        });
        let sub = &mut self.subs[i];
        sub.phase = SubPhase::Live;
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

    pub(super) fn on_change(&mut self, now_ms: u64, mut change: ChangeEvent) {
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
                    if !replay::drop_replayed_change(&mut change, from) {
                        return; // already delivered before the resubscribe
                    }
                }
                sub.advance(max_seq);
                self.emit_event(i, LiveEvent::Change(change));
            }
        }
    }

    pub(super) fn on_server_error(&mut self, error: ServerError) {
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
    pub(super) fn drop_sub_fatal(&mut self, i: usize, error: KalamError) {
        self.sub_error(i, error, true);
        let sub = self.subs.remove(i);
        if let (Phase::Connected { socket }, true) = (self.phase, sub.is_acked()) {
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
    pub(super) fn retry_sub(&mut self, i: usize, error: KalamError) {
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
        sub.phase = SubPhase::Unsent {
            retry_at: Some(now + retry_delay_ms(sub.retries)),
        };
        sub.staging = None;
        sub.staging_checkpoint = None;
        sub.prefetched = None;
        sub.deadline = None;
        sub.verify_inflight = None;
        sub.verify_due = None;
        self.sub_error(i, error, false);
    }

    pub(super) fn sub_error(&mut self, i: usize, error: KalamError, fatal: bool) {
        self.flush_sub(i);
        self.out.push(Output::SubscriptionError {
            subscription_id: self.subs[i].id.clone(),
            error,
            fatal,
        });
    }

    /// Emits subscription `i`'s checkpoint when it advanced since the last one emitted.
    pub(super) fn emit_checkpoint(&mut self, i: usize) {
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

    pub(super) fn emit_event(&mut self, i: usize, event: LiveEvent) {
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
    pub(super) fn flush_rows(&mut self) {
        if self.rows_held {
            return;
        }
        let window = self.config.coalesce_ms;
        // Only deltas the app hears of count: a first snapshot's `loading` parts (no
        // callback) neither wait for a window nor open one, so they cannot hold its end.
        let seen = |s: &Subscription| s.snapshot_done && s.rows.has_pending_delta();
        if window > 0 && self.subs.iter().any(seen) {
            let now = self.now;
            while self
                .recent_flushes
                .front()
                .is_some_and(|&t| now.saturating_sub(t) >= window)
            {
                self.recent_flushes.pop_front();
            }
            if self.recent_flushes.len() >= self.config.coalesce_burst.max(1) as usize {
                let due = self.recent_flushes[0] + window;
                self.rows_held = true;
                self.set_timer(TimerId::Flush, due - now);
                return;
            }
            self.recent_flushes.push_back(now);
        }
        for i in 0..self.subs.len() {
            self.flush_sub(i);
        }
    }

    /// Emits a materialized subscription's pending delta (and checkpoint), unless its
    /// snapshot is still loading or staging.
    pub(super) fn flush_sub(&mut self, i: usize) {
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
