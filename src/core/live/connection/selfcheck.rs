//! Per-subscription timers (stalled snapshots, retries) and self-verification: the checksum
//! of [`super::verify`] after bursts and periodically, a resync on a confirmed mismatch.

use super::*;

/// Checks after a burst start this far apart, subscription by subscription.
const BURST_CHECK_STAGGER_MS: u64 = 25;

/// A checksum query without an answer for this long is asked again.
const VERIFY_ANSWER_MS: u64 = 60_000;

fn min_due(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl LiveCore {
    /// Whether subscription `i` checks itself.
    pub(super) fn verifies(&self, i: usize) -> bool {
        let sub = &self.subs[i];
        sub.mode == SubscriptionMode::Materialized
            && self.config.verify.enabled
            && sub.options.verify != Some(false)
    }

    /// Acknowledged on the current socket with a complete snapshot and nothing staging.
    pub(super) fn is_live(&self, i: usize) -> bool {
        let sub = &self.subs[i];
        sub.phase == SubPhase::Live && sub.staging.is_none() && self.is_connected()
    }

    /// A change frame arrived: track runs that may have overflowed the server's queue.
    pub(super) fn note_change(&mut self, now_ms: u64) {
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

    pub(super) fn rearm_subs_timer(&mut self) {
        let mut due = self.burst_check;
        for s in &self.subs {
            due = min_due(due, s.deadline);
            due = min_due(due, s.retry_at());
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
    pub(super) fn run_sub_timers(&mut self, now_ms: u64) {
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

    pub(super) fn run_sub_timer(&mut self, now_ms: u64, i: usize) {
        if self.subs[i].deadline.is_some_and(|t| t <= now_ms) {
            self.subs[i].deadline = None;
            let step = self
                .config
                .snapshot_step_timeout_ms
                .min(u64::from(u32::MAX)) as u32;
            if self.subs[i].cap.held() {
                let error = KalamError::timeout(step).with_details("no answer to the row count");
                self.row_counted(now_ms, i, Err(error));
                return;
            }
            let error = KalamError::timeout(step)
                .with_details("the server did not answer a subscribe or next_batch");
            self.retry_sub(i, error);
            return;
        }
        if self.subs[i].retry_at().is_some_and(|t| t <= now_ms) {
            self.subs[i].phase = SubPhase::Unsent { retry_at: None };
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

    pub(super) fn start_verify(&mut self, now_ms: u64, i: usize) {
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
    /// failed. A snapshot's row count goes to [`cap`]; a check's figures are compared with
    /// the same figures over the materialized rows, and two mismatches in a row
    /// ([`VerifyConfig::confirm_ms`] apart) resync the subscription.
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
        if self.subs[i].cap.counting(request) {
            return self.row_counted(now_ms, i, result);
        }
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
    pub(super) fn replace_on_server(&mut self, now_ms: u64, i: usize) {
        if let Phase::Connected { socket } = self.phase {
            let text = ClientMessage::Unsubscribe {
                subscription_id: &self.subs[i].id,
            }
            .to_json();
            self.send(now_ms, socket, text);
            self.send_subscribe(now_ms, i);
        }
    }
}
