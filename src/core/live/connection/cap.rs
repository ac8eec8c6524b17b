//! The server's row cap (issue 15). A KalamDB server returns at most `max_query_limit` rows
//! (default 1000) from any query, its live snapshot query included, with no error or flag:
//! a `batch_size` B at or above the cap L gets L rows with `has_more: false` (PROTOCOL.md
//! §9.3), which looks like a complete snapshot. Only a first batch can be cut (a batch with
//! `has_more: true` proves B < L, so every later page fits), so only a materialized snapshot
//! that arrives as ONE batch of n rows is in doubt:
//!
//! - one `COUNT(*)` of the live query runs over HTTP (the self-verification query, as an
//!   [`Output::Verify`], whether or not verification is on). It goes out WITH the subscribe
//!   (how many batches the snapshot takes is not known yet), so it usually answers while the
//!   snapshot loads: a snapshot that pages ignores it, a one-batch one is settled at once;
//!   if the count is still out, the snapshot is held for it (the app sees nothing yet; a
//!   resync keeps the old rows). A probe (below) and a subscribe that waits for the send
//!   budget are counted only once their one-batch snapshot is in, so the counts of many
//!   subscribes follow the subscribes' pace instead of meeting the server's SQL rate limit
//!   all at once;
//! - the server holds no more than n rows: the snapshot completes. That holds whether the
//!   count ran before or after the snapshot: rows written after the snapshot arrive as
//!   changes, and rows deleted between a count taken first and the snapshot only raise the
//!   count (a probe). Not covered: inserts between a count taken first and the
//!   subscription's registration on the server that take the table past the cap in that
//!   moment; self-verification (on by default) finds those rows missing and resyncs;
//! - it holds more: the cap is n, or rows were inserted since the snapshot. The subscription
//!   is subscribed again with `batch_size` n (the probe): a cap of n cuts it at n rows with
//!   `has_more: false` again and is confirmed; otherwise it pages and completes as usual.
//!   (Taking every such count as a cap would let a concurrent insert into a 3-row table
//!   page every later snapshot 2 rows at a time.) A confirmed cap holds for every later
//!   subscribe of this core (other subscriptions, retries, resyncs): `batch_size` at most
//!   cap − 1 (a batch equal to the cap reports `has_more: false` too), starting with this
//!   subscription's next subscribe.
//!
//! Every subscribe starts a new snapshot and drops the previous one's count, in flight or
//! answered (answers are matched by request id), so a retry, resync or probe never uses a
//! stale one. Batch sizes up to one whose snapshot paged, or below a confirmed cap, cannot be
//! cut: those subscribes are not counted, so a client counts only until its first
//! multi-batch snapshot. A count that fails or gets no answer completes a one-batch snapshot
//! as it is and is reported (not fatal); a snapshot that pages ignores it. An empty snapshot
//! is never held: no cap cuts a snapshot to nothing. Not covered: `lastRows` snapshots (one
//! batch by definition: a cap below `lastRows` gives the newest `cap` rows), `liveEvents()`
//! (its batches reach the app as they arrive), and shells that cannot run SQL
//! ([`LiveConfig::check_row_cap`] off).

use super::*;

/// What the snapshots of this core showed about the server's row cap.
#[derive(Debug, Default)]
pub(super) struct RowCap {
    /// The cap a probe confirmed (at least 2).
    cap: Option<u32>,
    /// Batch sizes up to this are known not to be cut.
    safe: u32,
}

/// A subscription's side of the check.
#[derive(Debug, Default)]
pub(super) struct SubCap {
    /// `batch_size` of the current subscribe; `None` for a `lastRows` snapshot.
    sent: Option<u32>,
    /// A batch of the current snapshot said `has_more: true`.
    paged: bool,
    check: Check,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Check {
    #[default]
    None,
    /// The count `request` of the current snapshot is in flight; `held`: the snapshot
    /// arrived as one batch of that many rows and waits for it.
    Counting { request: u64, held: Option<u32> },
    /// The current snapshot's count answered before its last batch arrived.
    Counted(Result<u64, KalamError>),
    /// The server held more rows than the `rows` that arrived: subscribed with
    /// `batch_size` = `rows` to tell a cap from concurrent inserts.
    Probing { rows: u32 },
}

impl SubCap {
    /// The `batch_size` to send instead of `wanted` (the probe's, or below a confirmed cap);
    /// starts a new snapshot (a count in flight or answered was for the previous one).
    pub(super) fn batch(&mut self, cap: &RowCap, wanted: u32, last_rows: bool) -> u32 {
        self.paged = false;
        let batch = match (&self.check, cap.cap) {
            _ if last_rows => wanted,
            (Check::Probing { rows }, _) => *rows,
            (_, Some(cap)) => wanted.min(cap - 1),
            _ => wanted,
        };
        if last_rows || !matches!(self.check, Check::Probing { .. }) {
            self.check = Check::None;
        }
        self.sent = (!last_rows).then_some(batch);
        batch
    }

    /// The count `request` is this subscription's.
    pub(super) fn counting(&self, request: u64) -> bool {
        matches!(self.check, Check::Counting { request: r, .. } if r == request)
    }

    /// The snapshot is held for a count still in flight.
    pub(super) fn held(&self) -> bool {
        matches!(self.check, Check::Counting { held: Some(_), .. })
    }
}

impl LiveCore {
    /// Subscription `i`'s `subscribe` just went out: when its snapshot could be cut, its
    /// count goes out with it, so a one-batch snapshot need not wait a round trip for it.
    /// Not while probing (a probe cut again is the cap, without a count), nor when the
    /// subscribe waits for the send budget: those snapshots are counted when they arrive,
    /// so the counts of many subscribes follow the subscribes' pace instead of meeting the
    /// server's SQL rate limit all at once.
    pub(super) fn count_with_subscribe(&mut self, i: usize) {
        if !self.send_queue.is_empty() || matches!(self.subs[i].cap.check, Check::Probing { .. }) {
            return;
        }
        if let Some(request) = self.start_count(i) {
            self.subs[i].cap.check = Check::Counting {
                request,
                held: None,
            };
        }
    }

    /// Emits the count of subscription `i`'s snapshot if it could be cut: its request.
    fn start_count(&mut self, i: usize) -> Option<u64> {
        let sub = &self.subs[i];
        let sent = sub.cap.sent?;
        if sub.mode != SubscriptionMode::Materialized
            || !self.config.check_row_cap
            || sent <= self.row_cap.safe
        {
            return None;
        }
        // A `from` snapshot holds the rows after `from`.
        let floor = sub
            .options
            .from
            .map(|f| SeqId::new(f.as_i64().saturating_add(1)));
        let sql = verify::checksum_sql(&sub.sql, floor)?;
        self.next_request += 1;
        let request = self.next_request;
        self.out.push(Output::Verify {
            subscription_id: sub.id.clone(),
            request,
            sql,
        });
        Some(request)
    }

    /// A batch of subscription `i`'s snapshot said `has_more: true`: its batch size fits,
    /// and the snapshot's count (in flight or answered) says nothing.
    pub(super) fn note_paged(&mut self, i: usize) {
        let cap = &mut self.subs[i].cap;
        cap.paged = true;
        if matches!(cap.check, Check::Counting { .. } | Check::Counted(_)) {
            cap.check = Check::None; // a late answer matches no request
        }
        self.row_cap.safe = self.row_cap.safe.max(cap.sent.unwrap_or(0));
    }

    /// The last batch of subscription `i`'s snapshot arrived with `rows` rows: whether the
    /// snapshot is taken care of here (held for a count or a new subscribe, or settled by
    /// a count that already answered) instead of completing now.
    pub(super) fn hold_for_row_count(&mut self, now_ms: u64, i: usize, rows: usize) -> bool {
        let check = std::mem::take(&mut self.subs[i].cap.check);
        let sub = &self.subs[i];
        let Some(sent) = sub.cap.sent else {
            return false;
        };
        if sub.mode != SubscriptionMode::Materialized || !self.config.check_row_cap || sub.cap.paged
        {
            return false;
        }
        if rows == 0 {
            // No cap cuts a snapshot to nothing (a count would only see rows inserted
            // since, which arrive as changes).
            return false;
        }
        let rows = u32::try_from(rows).unwrap_or(u32::MAX);
        if check == (Check::Probing { rows }) && sent == rows {
            // Cut at `rows` again although the server holds more: that is its cap.
            if rows < 2 {
                let error = KalamError::new(
                    codes::PROTOCOL,
                    "the server returns at most 1 row per query (max_query_limit): the snapshot cannot be paged and holds 1 row",
                );
                self.sub_error(i, error, false);
                return false;
            }
            self.row_cap.cap = Some(rows);
            self.row_cap.safe = self.row_cap.safe.max(rows - 1);
            self.replace_on_server(now_ms, i);
            return true;
        }
        if sent <= self.row_cap.safe {
            return false; // proven safe since the subscribe: its count says nothing
        }
        let request = match check {
            Check::Counted(count) => {
                self.settle_count(now_ms, i, rows, count);
                return true;
            }
            Check::Counting { request, .. } => request,
            // Not counted with the subscribe (send budget, a probe that came back short).
            _ => match self.start_count(i) {
                Some(request) => request,
                None => return false,
            },
        };
        self.subs[i].cap.check = Check::Counting {
            request,
            held: Some(rows),
        };
        true // the snapshot's step deadline stays armed for the answer
    }

    /// The answer to subscription `i`'s row count (or its timeout, as an error).
    pub(super) fn row_counted(
        &mut self,
        now_ms: u64,
        i: usize,
        result: Result<Checksum, KalamError>,
    ) {
        let Check::Counting { held, .. } = std::mem::take(&mut self.subs[i].cap.check) else {
            return;
        };
        let count = result.map(|c| c.count);
        let Some(rows) = held else {
            // Before the snapshot's last batch: kept for it (the next subscribe of this
            // subscription drops it).
            self.subs[i].cap.check = Check::Counted(count);
            return;
        };
        if self.subs[i].phase != SubPhase::Loading || !self.is_connected() {
            return; // the snapshot it counted is gone; the next one is checked again
        }
        self.settle_count(now_ms, i, rows, count);
    }

    /// Subscription `i`'s one-batch snapshot of `rows` rows and the server's `count`: it
    /// completes, or is probed (more rows: a cap, or rows inserted since the count).
    fn settle_count(&mut self, now_ms: u64, i: usize, rows: u32, count: Result<u64, KalamError>) {
        match count {
            Ok(count) if count > u64::from(rows) => {
                self.subs[i].cap.check = Check::Probing { rows };
                self.replace_on_server(now_ms, i);
            }
            Ok(_) => self.complete_snapshot(now_ms, i),
            Err(error) => {
                self.complete_snapshot(now_ms, i);
                let error = KalamError::new(
                    if error.code.is_empty() {
                        codes::PROTOCOL
                    } else {
                        &error.code
                    },
                    format!(
                        "the snapshot's row count failed (rows beyond the server's max_query_limit may be missing): {}",
                        error.message
                    ),
                )
                .retryable(error.retryable);
                self.sub_error(i, error, false);
            }
        }
    }
}
