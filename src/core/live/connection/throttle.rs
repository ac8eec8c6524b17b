//! The send budget: at most [`LiveConfig::send_budget`] frames per
//! [`LiveConfig::send_window_ms`]; the excess waits in order for the `Throttle` timer (the
//! server drops messages over its rate, PROTOCOL.md §4.12).

use super::*;

impl LiveCore {
    pub(super) fn send(&mut self, now_ms: u64, socket: u64, text: String) {
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

    pub(super) fn prune_sent(&mut self, now_ms: u64) {
        let window = self.config.send_window_ms;
        while let Some(&t) = self.sent_at.front() {
            if now_ms.saturating_sub(t) >= window {
                self.sent_at.pop_front();
            } else {
                break;
            }
        }
    }

    pub(super) fn arm_throttle(&mut self, now_ms: u64) {
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
    pub(super) fn flush_send_queue(&mut self, now_ms: u64) {
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
}
