//! The request driver: every HTTP call's life, sans-IO (PROTOCOL.md §1.7, §8.3).
//!
//! It owns what used to be async code in the wasm shell: single-flight sign-in (login,
//! refresh ahead of `exp`, authProvider asks, see [`AuthState`]), one `TOKEN_EXPIRED`
//! refresh-and-retry for every authenticated request, read retries with backoff and
//! `Retry-After`, per-call timeouts while parked on a sign-in, and aborts.
//!
//! Events come in as method calls carrying `now_ms` ([`RequestDriver::call`],
//! [`RequestDriver::response`], [`RequestDriver::transport_error`],
//! [`RequestDriver::timer_fired`], [`RequestDriver::provider_result`],
//! [`RequestDriver::abort`], [`RequestDriver::set_credentials`]); the shell then executes
//! [`RequestDriver::take_commands`] in order: send a request, start or cancel a timer, ask
//! the provider, settle a call. What a successful answer means is the request's
//! [`Decode`], so the driver stays generic over SQL, auth endpoints, consume and ack.
//!
//! A sign-in flight is never cancelled by one caller (others may wait on it): an abort or
//! timeout rejects only that caller. Replacing the credentials supersedes the flight: the
//! answer to a login for the old identity is dropped, and its waiters continue with the new
//! credentials.
//!
//! The boundary types (call specs, commands, responses) are in `driver/types.rs`; the
//! sign-in flights in `driver/flight.rs`.

use crate::core::error::{codes, KalamError};
use crate::core::http::auth::{AuthState, AuthStep, Credentials};
use crate::core::http::envelope::{is_token_expired, parse_error_body};
use crate::core::http::retry::{parse_retry_after, RetryDecision, RetryState};
use crate::core::http::url::BaseUrl;
use crate::core::json::ToJson;

mod flight;
mod types;

use crate::core::id_map::IdMap;

use flight::{Exchange, Flight, Pending};

pub use types::{
    ok_text, Body, CallId, CallSpec, Command, Decode, DriverConfig, FlightId, Outgoing,
    RequestSpec, Resolved, Response, SendId, TextDecoder, TimerId,
};

enum Phase {
    /// Just created; every path out of `call` replaces it.
    Starting,
    /// Waiting for a sign-in flight; `timer` bounds the wait by the call's timeout.
    Parked {
        flight: FlightId,
        timer: Option<TimerId>,
    },
    /// A request is out, sent with the token of `generation`.
    Sending {
        send: SendId,
        generation: u64,
    },
    Backoff {
        timer: TimerId,
    },
}

struct Call {
    spec: CallSpec,
    timeout_ms: u32,
    retry: RetryState,
    phase: Phase,
}

enum SendOwner {
    Call(CallId),
    Flight(FlightId, Exchange),
}

enum TimerOwner {
    Backoff(CallId),
    Park(CallId),
    Provider(FlightId),
}

/// The state machine. See the module docs.
pub struct RequestDriver {
    config: DriverConfig,
    auth: AuthState,
    random: Box<dyn FnMut() -> f64>,
    calls: IdMap<Call>,
    flights: IdMap<Flight>,
    /// The flight `AuthState` considers in flight: `Wait` parks on it.
    current: Option<FlightId>,
    sends: IdMap<SendOwner>,
    timers: IdMap<TimerOwner>,
    next_id: u64,
    out: Vec<Command>,
}

impl RequestDriver {
    /// `random`: a source in `[0, 1)` for backoff jitter (`Math.random`; a constant in
    /// tests).
    pub fn new(config: DriverConfig, auth: AuthState, random: Box<dyn FnMut() -> f64>) -> Self {
        RequestDriver {
            config,
            auth,
            random,
            calls: IdMap::new(),
            flights: IdMap::new(),
            current: None,
            sends: IdMap::new(),
            timers: IdMap::new(),
            next_id: 0,
            out: Vec::new(),
        }
    }

    pub fn auth(&self) -> &AuthState {
        &self.auth
    }

    pub fn base(&self) -> &BaseUrl {
        &self.config.base
    }

    /// The default per-call timeout.
    pub fn timeout_ms(&self) -> u32 {
        self.config.timeout_ms
    }

    /// The commands produced so far, in order.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.out)
    }

    /// Calls not settled yet.
    pub fn pending_calls(&self) -> usize {
        self.calls.len()
    }

    /// Starts call `id` (`timeout_ms`: `None` for the client's default).
    pub fn call(&mut self, now_ms: i64, id: CallId, spec: CallSpec, timeout_ms: Option<u32>) {
        let step = match &spec {
            CallSpec::Request(r) if !r.authenticated => None,
            CallSpec::Request(_) | CallSpec::AccessToken { force: false } => {
                Some(self.auth.prepare(now_ms))
            }
            CallSpec::AccessToken { force: true } => {
                let generation = self.auth.generation();
                Some(self.auth.on_token_expired(generation, now_ms))
            }
            CallSpec::Login => Some(self.auth.begin_login()),
            CallSpec::Refresh {
                refresh_token: Some(token),
            } => Some(AuthStep::Refresh {
                authorization: crate::core::http::auth::bearer(token),
            }),
            CallSpec::Refresh {
                refresh_token: None,
            } => Some(self.auth.begin_refresh(now_ms)),
        };
        // An explicit refresh token is not the state's own renewal: others do not wait on it.
        let shared = !matches!(
            spec,
            CallSpec::Refresh {
                refresh_token: Some(_)
            }
        );
        let call = Call {
            spec,
            timeout_ms: timeout_ms.unwrap_or(self.config.timeout_ms),
            retry: RetryState::new(),
            phase: Phase::Starting,
        };
        self.calls.insert(id, call);
        match step {
            None => self.proceed(id, None, 0),
            Some(step) => self.authorize(now_ms, id, step, shared),
        }
    }

    /// The answer to request `send`.
    pub fn response(&mut self, now_ms: i64, send: SendId, response: Response) {
        match self.sends.remove(&send) {
            Some(SendOwner::Call(call)) => self.call_answered(now_ms, call, response),
            Some(SendOwner::Flight(flight, exchange)) => {
                let text = String::from_utf8_lossy(&response.body);
                let step = match exchange {
                    Exchange::Login => self.auth.complete_login(response.status, &text, now_ms),
                    Exchange::Refresh => self.auth.complete_refresh(response.status, &text, now_ms),
                };
                self.advance_flight(now_ms, flight, step);
            }
            None => {}
        }
    }

    /// Request `send` failed without an answer (`NETWORK`, `TIMEOUT`, `ABORTED`).
    pub fn transport_error(&mut self, now_ms: i64, send: SendId, error: KalamError) {
        match self.sends.remove(&send) {
            Some(SendOwner::Call(call)) => self.call_failed(now_ms, call, error, None),
            Some(SendOwner::Flight(flight, _)) => {
                let step = self.auth.fail(error);
                self.advance_flight(now_ms, flight, step);
            }
            None => {}
        }
    }

    pub fn timer_fired(&mut self, now_ms: i64, timer: TimerId) {
        match self.timers.remove(&timer) {
            Some(TimerOwner::Backoff(call)) => {
                let authenticated = match self.calls.get(&call).map(|c| &c.spec) {
                    Some(CallSpec::Request(r)) => r.authenticated,
                    _ => return,
                };
                if authenticated {
                    // The token may have become due for renewal during the backoff.
                    let step = self.auth.prepare(now_ms);
                    self.authorize(now_ms, call, step, true);
                } else {
                    self.proceed(call, None, 0);
                }
            }
            Some(TimerOwner::Park(call)) => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                let timeout_ms = c.timeout_ms;
                let mut waited_for = "the sign-in in flight";
                if let Phase::Parked { flight, .. } = c.phase {
                    // Name what the sign-in is stuck on when it is app code.
                    if let Some(Flight {
                        pending: Pending::Provider { .. },
                        ..
                    }) = self.flights.get(&flight)
                    {
                        waited_for = "the authProvider";
                    }
                    self.unpark(call, flight);
                }
                self.reject(
                    call,
                    KalamError::new(
                        codes::TIMEOUT,
                        format!("{waited_for} gave no answer within {timeout_ms} ms"),
                    )
                    .retryable(true),
                );
            }
            Some(TimerOwner::Provider(flight)) => {
                let Some(f) = self.flights.get_mut(&flight) else {
                    return;
                };
                f.pending = Pending::Nothing;
                let timeout_ms = f.timeout_ms;
                let step = self.auth.fail(
                    KalamError::new(
                        codes::TIMEOUT,
                        format!("the authProvider gave no answer within {timeout_ms} ms"),
                    )
                    .retryable(true),
                );
                self.advance_flight(now_ms, flight, step);
            }
            None => {}
        }
    }

    /// The authProvider's answer for `flight` (ignored if the flight timed out or was
    /// superseded meanwhile).
    pub fn provider_result(
        &mut self,
        now_ms: i64,
        flight: FlightId,
        result: Result<Credentials, KalamError>,
    ) {
        let Some(f) = self.flights.get_mut(&flight) else {
            return;
        };
        let Pending::Provider { timer } = std::mem::replace(&mut f.pending, Pending::Nothing)
        else {
            return;
        };
        self.cancel_timer(timer);
        let step = match result {
            Ok(credentials) => self.auth.set_credentials(credentials, now_ms),
            Err(err) => self.auth.fail(err),
        };
        self.advance_flight(now_ms, flight, step);
    }

    /// The caller's signal aborted: the call rejects with `ABORTED` at once, whatever it was
    /// waiting for; a sign-in it waits on goes on for the others.
    pub fn abort(&mut self, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        match c.phase {
            Phase::Parked { flight, .. } => self.unpark(call, flight),
            Phase::Sending { send, .. } => {
                self.sends.remove(&send);
                self.out.push(Command::CancelSend { send });
            }
            Phase::Backoff { timer } => self.cancel_timer(Some(timer)),
            Phase::Starting => {}
        }
        self.reject(call, KalamError::aborted());
    }

    /// The app replaced the credentials. A sign-in in flight is superseded (its answer is
    /// dropped, so an old identity's token never lands after the new one); its waiters
    /// continue with the new credentials.
    pub fn set_credentials(&mut self, now_ms: i64, credentials: Credentials) {
        let waiters = match self.current {
            Some(flight) => self.finish_flight(flight),
            None => Vec::new(),
        };
        let step = self.auth.set_credentials(credentials, now_ms);
        self.start_flight_or_settle(now_ms, step, waiters, self.config.timeout_ms, true);
    }

    // --- calls -------------------------------------------------------------------------

    /// Acts on an auth step for `call`: send, park, start a flight, or fail.
    fn authorize(&mut self, now_ms: i64, call: CallId, step: AuthStep, shared: bool) {
        match step {
            AuthStep::Ready {
                authorization,
                generation,
            } => self.proceed(call, authorization, generation),
            AuthStep::Fail(err) => self.reject(call, err),
            AuthStep::Wait => match self.current {
                Some(flight) => self.park(call, flight),
                // `Wait` means a flight runs; none known is a broken invariant, not a hang.
                None => self.reject(call, KalamError::protocol("sign-in state lost")),
            },
            step => {
                let timeout_ms = self.calls.get(&call).map_or(0, |c| c.timeout_ms);
                self.start_flight_or_settle(now_ms, step, vec![call], timeout_ms, shared);
            }
        }
    }

    /// The call has what it needs: send its request, or settle an auth call.
    fn proceed(&mut self, call: CallId, authorization: Option<String>, generation: u64) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let result = match &c.spec {
            CallSpec::Request(r) => {
                let request = Outgoing {
                    call: Some(call),
                    method: r.method,
                    url: r.url.clone(),
                    authorization: if r.authenticated { authorization } else { None },
                    body: r.body.clone(),
                    timeout_ms: c.timeout_ms,
                };
                let send = self.id();
                self.sends.insert(send, SendOwner::Call(call));
                self.out.push(Command::Send { send, request });
                if let Some(c) = self.calls.get_mut(&call) {
                    c.phase = Phase::Sending { send, generation };
                }
                return;
            }
            CallSpec::Login => {
                if matches!(self.auth.credentials(), Credentials::Basic { .. }) {
                    self.last_login_json()
                } else {
                    Err(KalamError::invalid_argument(
                        "login() needs basic (user/password) credentials; the authProvider gave others",
                    ))
                }
            }
            CallSpec::Refresh { .. } => self.last_login_json(),
            CallSpec::AccessToken { .. } => {
                self.auth.access_token().map(str::to_string).ok_or_else(|| {
                    KalamError::new(
                        codes::AUTH_FAILED,
                        "no access token: configure Auth.basic or Auth.jwt",
                    )
                })
            }
        };
        match result {
            Ok(text) => self.resolve(call, Resolved::Text(text)),
            Err(err) => self.reject(call, err),
        }
    }

    fn last_login_json(&self) -> Result<String, KalamError> {
        let login = self.auth.last_login().ok_or_else(|| {
            KalamError::new(
                codes::AUTH_FAILED,
                "no login happened: login() needs Auth.basic credentials",
            )
        })?;
        Ok(login.to_json())
    }

    fn call_answered(&mut self, now_ms: i64, call: CallId, response: Response) {
        let Some(CallSpec::Request(r)) = self.calls.get(&call).map(|c| &c.spec) else {
            return;
        };
        let outcome = match &r.decode {
            Decode::Text(decode) => {
                decode(response.status, &String::from_utf8_lossy(&response.body))
                    .map(Resolved::Text)
            }
            Decode::Bytes if (200..300).contains(&response.status) => Ok(Resolved::Bytes {
                content_type: response.content_type,
                body: response.body,
            }),
            Decode::Bytes => Err(parse_error_body(
                response.status,
                &String::from_utf8_lossy(&response.body),
            )),
        };
        match outcome {
            Ok(value) => self.resolve(call, value),
            Err(err) => {
                // Only overload answers carry a wait the server asks for.
                let retry_after = match response.status {
                    429 | 503 => response.retry_after.as_deref().and_then(parse_retry_after),
                    _ => None,
                };
                self.call_failed(now_ms, call, err, retry_after);
            }
        }
    }

    fn call_failed(
        &mut self,
        now_ms: i64,
        call: CallId,
        err: KalamError,
        retry_after_ms: Option<u32>,
    ) {
        let random = (self.random)();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let (CallSpec::Request(r), Phase::Sending { generation, .. }) = (&c.spec, &c.phase) else {
            return;
        };
        let (authenticated, kind, generation) = (r.authenticated, r.kind, *generation);
        // A request sent without a token cannot be cured by renewing one.
        if !authenticated && is_token_expired(&err) {
            return self.reject(call, err);
        }
        match c
            .retry
            .decide(&self.config.retry, kind, &err, random, retry_after_ms)
        {
            RetryDecision::GiveUp => self.reject(call, err),
            RetryDecision::Retry { delay_ms } => {
                let timer = self.sleep(delay_ms, TimerOwner::Backoff(call));
                if let Some(c) = self.calls.get_mut(&call) {
                    c.phase = Phase::Backoff { timer };
                }
            }
            RetryDecision::RefreshAuth => {
                let step = self.auth.on_token_expired(generation, now_ms);
                self.authorize(now_ms, call, step, true);
            }
        }
    }

    fn park(&mut self, call: CallId, flight: FlightId) {
        let Some(timeout_ms) = self.calls.get(&call).map(|c| c.timeout_ms) else {
            return;
        };
        let timer = (timeout_ms > 0).then(|| self.sleep(timeout_ms, TimerOwner::Park(call)));
        if let Some(f) = self.flights.get_mut(&flight) {
            f.waiters.push(call);
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Parked { flight, timer };
        }
    }

    /// Takes `call` off its flight's waiters and stops its park timer.
    fn unpark(&mut self, call: CallId, flight: FlightId) {
        if let Some(f) = self.flights.get_mut(&flight) {
            f.waiters.retain(|w| *w != call);
        }
        if let Some(Call {
            phase: Phase::Parked { timer, .. },
            ..
        }) = self.calls.get_mut(&call)
        {
            let timer = timer.take();
            self.cancel_timer(timer);
        }
    }

    fn resolve(&mut self, call: CallId, value: Resolved) {
        if self.calls.remove(&call).is_some() {
            self.out.push(Command::Resolve { call, value });
        }
    }

    fn reject(&mut self, call: CallId, error: KalamError) {
        if self.calls.remove(&call).is_some() {
            self.out.push(Command::Reject { call, error });
        }
    }

    // --- ids and timers ----------------------------------------------------------------

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn sleep(&mut self, ms: u32, owner: TimerOwner) -> TimerId {
        let timer = self.id();
        self.timers.insert(timer, owner);
        self.out.push(Command::Sleep { timer, ms });
        timer
    }

    fn cancel_timer(&mut self, timer: Option<TimerId>) {
        if let Some(timer) = timer {
            if self.timers.remove(&timer).is_some() {
                self.out.push(Command::CancelTimer { timer });
            }
        }
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
