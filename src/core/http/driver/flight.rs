//! Sign-in flights: one login, refresh or authProvider ask that any number of calls park
//! on (single-flight, see the parent module), and the exchanges it sends.

use super::{Body, CallId, Command, FlightId, Outgoing, SendId, TimerId};
use super::{Call, Phase, RequestDriver, SendOwner, TimerOwner};
use crate::core::http::auth::AuthStep;
use crate::core::http::url::paths;

/// Which sign-in endpoint a flight's request is for.
pub(super) enum Exchange {
    Login,
    Refresh,
}

/// What a flight waits for.
pub(super) enum Pending {
    Send(SendId),
    /// The provider was asked; `timer` fails the flight if it never settles.
    Provider {
        timer: Option<TimerId>,
    },
    Nothing,
}

/// A sign-in in progress and the calls parked on it.
pub(super) struct Flight {
    pub(super) waiters: Vec<CallId>,
    /// The timeout of the call that started it: bounds its exchanges and provider asks.
    pub(super) timeout_ms: u32,
    pub(super) pending: Pending,
}

impl RequestDriver {
    /// A renewal step starts a flight that `waiters` park on; `Ready`/`Fail` settle them.
    pub(super) fn start_flight_or_settle(
        &mut self,
        now_ms: i64,
        step: AuthStep,
        waiters: Vec<CallId>,
        timeout_ms: u32,
        shared: bool,
    ) {
        let flight = self.id();
        self.flights.insert(
            flight,
            Flight {
                waiters: Vec::new(),
                timeout_ms,
                pending: Pending::Nothing,
            },
        );
        if shared {
            self.current = Some(flight);
        }
        for call in waiters {
            self.park(call, flight);
        }
        self.advance_flight(now_ms, flight, step);
    }

    /// Runs the flight's next step; a final step settles its waiters.
    pub(super) fn advance_flight(&mut self, now_ms: i64, flight: FlightId, step: AuthStep) {
        let Some(timeout_ms) = self.flights.get(&flight).map(|f| f.timeout_ms) else {
            return;
        };
        let pending = match step {
            AuthStep::Login { body } => {
                self.exchange(flight, Exchange::Login, None, Body::Json(body), timeout_ms)
            }
            AuthStep::Refresh { authorization } => self.exchange(
                flight,
                Exchange::Refresh,
                Some(authorization),
                Body::None,
                timeout_ms,
            ),
            AuthStep::CallProvider => {
                self.out.push(Command::AskProvider { flight });
                let timer =
                    (timeout_ms > 0).then(|| self.sleep(timeout_ms, TimerOwner::Provider(flight)));
                Pending::Provider { timer }
            }
            AuthStep::Fail(err) => {
                for call in self.finish_flight(flight) {
                    self.reject(call, err.clone());
                }
                return;
            }
            // Every waiter goes on with the flight's token (re-preparing could start another
            // flight for a token that is due for renewal as it arrives, forever).
            AuthStep::Ready {
                authorization,
                generation,
            } => {
                for call in self.finish_flight(flight) {
                    self.proceed(call, authorization.clone(), generation);
                }
                return;
            }
            // Another flight runs: re-preparing parks the waiters on it.
            AuthStep::Wait => {
                for call in self.finish_flight(flight) {
                    let step = self.auth.prepare(now_ms);
                    self.authorize(now_ms, call, step, true);
                }
                return;
            }
        };
        if let Some(f) = self.flights.get_mut(&flight) {
            f.pending = pending;
        }
    }

    fn exchange(
        &mut self,
        flight: FlightId,
        exchange: Exchange,
        authorization: Option<String>,
        body: Body,
        timeout_ms: u32,
    ) -> Pending {
        let path = match exchange {
            Exchange::Login => paths::LOGIN,
            Exchange::Refresh => paths::REFRESH,
        };
        let send = self.id();
        self.sends.insert(send, SendOwner::Flight(flight, exchange));
        self.out.push(Command::Send {
            send,
            request: Outgoing {
                call: None,
                method: "POST",
                url: self.config.base.endpoint(path),
                authorization,
                body,
                timeout_ms,
            },
        });
        Pending::Send(send)
    }

    /// Ends a flight; its waiters, unparked, are returned to be settled.
    pub(super) fn finish_flight(&mut self, flight: FlightId) -> Vec<CallId> {
        if self.current == Some(flight) {
            self.current = None;
        }
        let waiters = self.drop_flight(flight);
        for call in &waiters {
            if let Some(Call {
                phase: Phase::Parked { timer, .. },
                ..
            }) = self.calls.get_mut(call)
            {
                let timer = timer.take();
                self.cancel_timer(timer);
            }
        }
        waiters
    }

    /// Forgets a flight and whatever it waits for (a late answer is then ignored).
    pub(super) fn drop_flight(&mut self, flight: FlightId) -> Vec<CallId> {
        let Some(f) = self.flights.remove(&flight) else {
            return Vec::new();
        };
        match f.pending {
            Pending::Send(send) => {
                self.sends.remove(&send);
            }
            Pending::Provider { timer } => self.cancel_timer(timer),
            Pending::Nothing => {}
        }
        f.waiters
    }
}
