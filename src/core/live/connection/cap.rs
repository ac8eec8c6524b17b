//! The server's row cap (issue 15). A KalamDB server returns at most `max_query_limit` rows
//! (default 1000) from any query, its live snapshot query included, with no error or flag:
//! a `batch_size` B at or above the cap L gets L rows with `has_more: false` (PROTOCOL.md
//! §9.3), which looks like a complete snapshot. Only a first batch can be cut (a batch with
//! `has_more: true` proves B < L, so every later page fits), so only a materialized snapshot
//! that arrives as ONE batch of n rows is in doubt:
//!
//! - it is held (the app sees nothing yet; a resync keeps the old rows) while one `COUNT(*)`
//!   of the live query runs over HTTP: the self-verification query, as an
//!   [`Output::Verify`], whether or not verification is on;
//! - the server holds no more than n rows: the snapshot completes;
//! - it holds more: the cap is n, or rows were inserted since the snapshot. The subscription
//!   is subscribed again with `batch_size` n (the probe): a cap of n cuts it at n rows with
//!   `has_more: false` again and is confirmed; otherwise it pages and completes as usual.
//!   (Taking every such count as a cap would let a concurrent insert into a 3-row table
//!   page every later snapshot 2 rows at a time.) A confirmed cap holds for every later
//!   subscribe of this core (other subscriptions, retries, resyncs): `batch_size` at most
//!   cap − 1 (a batch equal to the cap reports `has_more: false` too), starting with this
//!   subscription's next subscribe.
//!
//! Batch sizes up to one whose snapshot paged, or below a confirmed cap, cannot be cut: those
//! snapshots are not counted, so a client counts only until its first multi-batch snapshot.
//! A count that fails or gets no answer completes the snapshot as it is and is reported (not
//! fatal). An empty snapshot is never counted: no cap cuts a snapshot to nothing. Not
//! covered: `lastRows` snapshots (one batch by definition: a cap below `lastRows`
//! gives the newest `cap` rows), `liveEvents()` (its batches reach the app as they arrive),
//! and shells that cannot run SQL ([`LiveConfig::check_row_cap`] off).

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

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Check {
    #[default]
    None,
    /// The snapshot arrived as one batch of `rows` rows and waits for the count `request`.
    Counting { request: u64, rows: u32 },
    /// The server held more rows than the `rows` that arrived: subscribed with
    /// `batch_size` = `rows` to tell a cap from concurrent inserts.
    Probing { rows: u32 },
}

impl SubCap {
    /// The `batch_size` to send instead of `wanted` (the probe's, or below a confirmed cap);
    /// starts a new snapshot (a count in flight was for the previous one).
    pub(super) fn batch(&mut self, cap: &RowCap, wanted: u32, last_rows: bool) -> u32 {
        self.paged = false;
        let batch = match (self.check, cap.cap) {
            _ if last_rows => wanted,
            (Check::Probing { rows }, _) => rows,
            (_, Some(cap)) => wanted.min(cap - 1),
            _ => wanted,
        };
        if last_rows || !matches!(self.check, Check::Probing { .. }) {
            self.check = Check::None;
        }
        self.sent = (!last_rows).then_some(batch);
        batch
    }

    /// A count is in flight (with that `request`, when given).
    pub(super) fn counting(&self, request: Option<u64>) -> bool {
        matches!(self.check, Check::Counting { request: r, .. } if request.is_none_or(|q| q == r))
    }
}

impl LiveCore {
    /// A batch of subscription `i`'s snapshot said `has_more: true`: its batch size fits.
    pub(super) fn note_paged(&mut self, i: usize) {
        let cap = &mut self.subs[i].cap;
        cap.paged = true;
        self.row_cap.safe = self.row_cap.safe.max(cap.sent.unwrap_or(0));
    }

    /// The last batch of subscription `i`'s snapshot arrived with `rows` rows: whether the
    /// snapshot is held (for a count or a new subscribe) instead of completing now.
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
            return false;
        }
        // A `from` snapshot holds the rows after `from`.
        let floor = sub
            .options
            .from
            .map(|f| SeqId::new(f.as_i64().saturating_add(1)));
        let Some(sql) = verify::checksum_sql(&sub.sql, floor) else {
            return false;
        };
        self.next_request += 1;
        let request = self.next_request;
        let sub = &mut self.subs[i];
        sub.cap.check = Check::Counting { request, rows };
        self.out.push(Output::Verify {
            subscription_id: sub.id.clone(),
            request,
            sql,
        });
        true // the snapshot's step deadline stays armed for the answer
    }

    /// The answer to subscription `i`'s row count (or its timeout, as an error).
    pub(super) fn row_counted(
        &mut self,
        now_ms: u64,
        i: usize,
        result: Result<Checksum, KalamError>,
    ) {
        let Check::Counting { rows, .. } = std::mem::take(&mut self.subs[i].cap.check) else {
            return;
        };
        if self.subs[i].phase != SubPhase::Loading || !self.is_connected() {
            return; // the snapshot it counted is gone; the next one is checked again
        }
        match result {
            Ok(server) if server.count > u64::from(rows) => {
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
