//! The link to the server: token requests, connection attempts and authentication,
//! losing a socket, the reconnect backoff, and liveness (the echo of PROTOCOL.md §12.3).

use super::*;

/// A liveness deadline timer this late gets one more look before the socket counts as dead.
const LATE_TIMER_MS: u64 = 1000;

impl LiveCore {
    pub(super) fn request_token(&mut self) {
        self.token_wanted = true;
        self.out.push(Output::RequestToken);
    }

    pub(super) fn start_attempt(&mut self, fresh_token: bool) {
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

    pub(super) fn maybe_authenticate(&mut self, now_ms: u64) {
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
    pub(super) fn lose_socket(&mut self) {
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
            sub.phase = SubPhase::Unsent { retry_at: None };
            sub.staging = None;
            sub.staging_checkpoint = None;
            sub.deadline = None;
            sub.verify_inflight = None;
            sub.verify_due = None;
        }
    }

    pub(super) fn schedule_reconnect(&mut self) {
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

    pub(super) fn enter_needs_auth(&mut self, message: String) {
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

    pub(super) fn on_auth_success(&mut self, now_ms: u64) {
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

    pub(super) fn tick(&mut self, now_ms: u64) {
        self.now = self.now.max(now_ms);
    }

    /// The progress deadline of a snapshot step sent now (queued frames wait for budget).
    pub(super) fn step_deadline(&self, now_ms: u64) -> Option<u64> {
        let step = self.config.snapshot_step_timeout_ms;
        (step > 0).then(|| now_ms + step + self.queue_delay_ms())
    }

    /// How long frames queued now wait for the send budget.
    pub(super) fn queue_delay_ms(&self) -> u64 {
        let budget = u64::from(self.config.send_budget.max(1));
        self.send_queue.len() as u64 * self.config.send_window_ms / budget
    }

    pub(super) fn on_recv(&mut self, now_ms: u64) {
        self.last_recv_ms = now_ms;
        self.probe_deadline = None;
    }

    pub(super) fn liveness_check(&mut self, now_ms: u64, socket: u64) {
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
    pub(super) fn send_probe(&mut self, now_ms: u64, socket: u64) {
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
    pub(super) fn socket_dead(&mut self, socket: u64) {
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
}
