//! `HttpCore`: the wasm shell of the request/response half, shared by both packages. It
//! drives `core::http` (auth state, SQL bodies, envelopes, retries) with `fetch`, and hands
//! JS one JSON string per answer. Errors cross as plain `{code, message, status?,
//! retryable, details?}` objects that the TypeScript turns into `KalamError`s.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::channel::oneshot;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::core::error::KalamError;
use crate::core::http::auth::{self, AuthState, AuthStep, Credentials};
use crate::core::http::envelope::{decode_sql_response, parse_error_body};
use crate::core::http::retry::{
    whole_number_option, RequestKind, RetryDecision, RetryPolicy, RetryState,
};
use crate::core::http::sql::{self, params_from_json, SqlLimits, SqlRequest};
use crate::core::http::url::{paths, BaseUrl};
use crate::net::http::{send, Body, HttpRequest, HttpResponse};
use crate::net::listener::Listener;
use crate::net::timer::sleep;

#[cfg(feature = "client")]
mod writes;

pub(crate) use crate::net::to_js_error;

/// `Date.now()` as the auth state machine's signed clock.
pub(crate) fn now_ms() -> i64 {
    crate::net::now_ms() as i64
}

pub(crate) type JsResult<T> = Result<T, JsValue>;

pub(crate) struct Inner {
    pub(crate) base: BaseUrl,
    pub(crate) auth: RefCell<AuthState>,
    provider: Option<Function>,
    /// Callers parked on `AuthStep::Wait` until the login/refresh in flight settles.
    auth_waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// Numbers each login/refresh/provider flight, so callers parked on one can tell how it
    /// ended.
    auth_flight: Cell<u64>,
    /// The last flight that failed and its error: callers parked on it fail the same way
    /// instead of each starting another (possibly slow) attempt in turn.
    auth_failure: RefCell<Option<(u64, KalamError)>>,
    pub(crate) timeout_ms: u32,
    retry: RetryPolicy,
    pub(crate) namespace: Option<String>,
    pub(crate) limits: SqlLimits,
}

/// Per-call settings passed from TypeScript.
pub(crate) struct CallOptions {
    pub(crate) signal: Option<AbortSignal>,
    pub(crate) timeout_ms: u32,
    pub(crate) namespace: Option<String>,
}

#[wasm_bindgen]
pub struct HttpCore {
    pub(crate) inner: Rc<Inner>,
}

#[wasm_bindgen]
impl HttpCore {
    /// `credentials_json`: an `Auth.*` object as JSON (or undefined when only a provider is
    /// given); `auth_provider`: `() => AuthCredentials | Promise<AuthCredentials>`, asked
    /// whenever fresh credentials are needed.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: &str,
        credentials_json: Option<String>,
        auth_provider: Option<Function>,
        timeout_ms: f64,
        max_retries: f64,
        namespace: Option<String>,
    ) -> JsResult<HttpCore> {
        let base = BaseUrl::parse(url).map_err(to_js_error)?;
        // setTimeout's largest delay; more retries than 100 only hide an outage.
        let timeout_ms =
            whole_number_option("timeoutMs", timeout_ms, i32::MAX as u32).map_err(to_js_error)?;
        let max_retries =
            whole_number_option("maxRetries", max_retries, 100).map_err(to_js_error)?;
        let credentials = match credentials_json {
            Some(json) => Credentials::from_json(&json).map_err(to_js_error)?,
            None => Credentials::None,
        };
        let has_provider = auth_provider.is_some();
        Ok(HttpCore {
            inner: Rc::new(Inner {
                base,
                auth: RefCell::new(AuthState::new(credentials, has_provider)),
                provider: auth_provider,
                auth_waiters: RefCell::new(Vec::new()),
                auth_flight: Cell::new(0),
                auth_failure: RefCell::new(None),
                timeout_ms,
                retry: RetryPolicy {
                    max_retries,
                    ..RetryPolicy::default()
                },
                namespace: namespace.filter(|n| !n.is_empty()),
                limits: SqlLimits::default(),
            }),
        })
    }

    /// The normalised base URL (no trailing slash).
    #[wasm_bindgen(getter, js_name = baseUrl)]
    pub fn base_url(&self) -> String {
        self.inner.base.as_str().to_string()
    }

    /// The WebSocket URL for live queries.
    #[wasm_bindgen(js_name = wsUrl)]
    pub fn ws_url(&self, compress: bool) -> String {
        self.inner.base.ws_url(compress)
    }

    /// Runs SQL; resolves with the normalised result JSON (see `core::cells`).
    /// `file_table` (`ns.table`) locates FILE cells when the SQL does not name one table.
    pub async fn query(
        &self,
        sql_text: String,
        params_json: Option<String>,
        namespace: Option<String>,
        file_table: Option<String>,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let inner = self.inner.clone();
        let options = inner.call_options(signal, timeout_ms, namespace);
        let params = match params_json {
            Some(json) => params_from_json(&json).map_err(to_js_error)?,
            None => Vec::new(),
        };
        let request = SqlRequest::new(sql_text)
            .with_params(params)
            .with_namespace(options.namespace.clone());
        inner
            .execute(request, file_table, &options)
            .await
            .map_err(to_js_error)
    }

    /// `EXECUTE AS USER '<user>' (<sql>)`.
    #[wasm_bindgen(js_name = executeAsUser)]
    pub async fn execute_as_user(
        &self,
        sql_text: String,
        user: String,
        params_json: Option<String>,
        namespace: Option<String>,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let wrapped = sql::execute_as_user(&sql_text, &user).map_err(to_js_error)?;
        self.query(wrapped, params_json, namespace, None, signal, timeout_ms)
            .await
    }

    /// Logs in with the configured Basic credentials (or the provider's) and returns the
    /// login response JSON. The client keeps using the new tokens.
    pub async fn login(&self) -> JsResult<String> {
        let inner = self.inner.clone();
        let step = inner.auth.borrow_mut().begin_login();
        inner.drive_auth(step).await.map_err(to_js_error)?;
        if !matches!(inner.auth.borrow().credentials(), Credentials::Basic { .. }) {
            return Err(to_js_error(KalamError::invalid_argument(
                "login() needs basic (user/password) credentials; the authProvider gave others",
            )));
        }
        inner.last_login_json()
    }

    /// Rotates tokens with `refresh_token` (or the one from the last login) and returns the
    /// new login response JSON.
    #[wasm_bindgen(js_name = refreshToken)]
    pub async fn refresh_token(&self, refresh_token: Option<String>) -> JsResult<String> {
        let inner = self.inner.clone();
        let step = match refresh_token {
            Some(token) => AuthStep::Refresh {
                authorization: auth::bearer(&token),
            },
            None => inner.auth.borrow_mut().begin_refresh(now_ms()),
        };
        inner.drive_auth(step).await.map_err(to_js_error)?;
        inner.last_login_json()
    }

    /// The current access token, obtaining or renewing it first (`force`: renew even if
    /// it looks valid, e.g. after the WebSocket rejected it).
    #[wasm_bindgen(js_name = accessToken)]
    pub async fn access_token(&self, force: bool) -> JsResult<String> {
        let inner = self.inner.clone();
        let step = if force {
            let generation = inner.auth.borrow().generation();
            inner
                .auth
                .borrow_mut()
                .on_token_expired(generation, now_ms())
        } else {
            inner.auth.borrow_mut().prepare(now_ms())
        };
        inner.drive_auth(step).await.map_err(to_js_error)?;
        let token = inner.auth.borrow().access_token().map(str::to_string);
        token.ok_or_else(|| {
            to_js_error(KalamError::new(
                crate::core::error::codes::AUTH_FAILED,
                "no access token: configure Auth.basic or Auth.jwt",
            ))
        })
    }

    /// Replaces the credentials (e.g. after the app's user signs in again).
    #[wasm_bindgen(js_name = setCredentials)]
    pub fn set_credentials(&self, credentials_json: &str) -> JsResult<()> {
        let credentials = Credentials::from_json(credentials_json).map_err(to_js_error)?;
        let _ = self
            .inner
            .auth
            .borrow_mut()
            .set_credentials(credentials, now_ms());
        self.inner.wake_auth_waiters();
        Ok(())
    }

    /// A GET or POST to an auth/diagnostic endpoint; resolves with the body text of a 2xx
    /// answer. `authenticated` adds the Bearer token.
    #[wasm_bindgen(js_name = plainRequest)]
    pub async fn plain_request(
        &self,
        method: String,
        path: String,
        body_json: Option<String>,
        authenticated: bool,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        let inner = self.inner.clone();
        let options = inner.call_options(signal, timeout_ms, None);
        let url = inner.base.endpoint(&path);
        let method: &'static str = if method.eq_ignore_ascii_case("GET") {
            "GET"
        } else {
            "POST"
        };
        let response = if authenticated {
            inner
                .authorized(method, &url, body_json.as_deref(), &options)
                .await
        } else {
            send(HttpRequest {
                method,
                url: &url,
                authorization: None,
                body: body_json.map(Body::Json).unwrap_or(Body::None),
                timeout_ms: options.timeout_ms,
                signal: options.signal.as_ref(),
            })
            .await
            .and_then(ok_or_error)
        }
        .map_err(to_js_error)?;
        Ok(response.text())
    }

    /// Builds the login body for `/v1/api/auth/setup` checks and the like.
    #[wasm_bindgen(js_name = setupBody)]
    pub fn setup_body(
        user: &str,
        password: &str,
        root_password: &str,
        email: Option<String>,
    ) -> JsResult<String> {
        auth::setup_body(user, password, root_password, email.as_deref()).map_err(to_js_error)
    }

    /// Topic consume (`/v1/api/topics/consume`); `options_json` accepts the official
    /// consumer's spellings. Resolves with the decoded batch JSON (payloads parsed).
    #[cfg(feature = "consumer")]
    pub async fn consume(
        &self,
        options_json: String,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        use crate::core::topics::{parse_consume_response, ConsumeRequest};
        let inner = self.inner.clone();
        let options = inner.call_options(signal, timeout_ms, None);
        let request = ConsumeRequest::from_options_json(&options_json).map_err(to_js_error)?;
        let body = request.body_json();
        let url = inner.base.endpoint(paths::TOPICS_CONSUME);
        let response = inner
            .with_read_retries(|| inner.authorized("POST", &url, Some(&body), &options))
            .await
            .map_err(to_js_error)?;
        parse_consume_response(response.status, &response.text(), &request.group_id)
            .map(|batch| batch.to_json())
            .map_err(to_js_error)
    }

    /// Topic ack up to and including `upto_offset` (a decimal string: offsets are u64).
    #[cfg(feature = "consumer")]
    pub async fn ack(
        &self,
        topic: String,
        group_id: String,
        partition_id: u32,
        upto_offset: String,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
    ) -> JsResult<String> {
        use crate::core::topics::{ack_body, parse_ack_response};
        let inner = self.inner.clone();
        let options = inner.call_options(signal, timeout_ms, None);
        let upto: u64 = upto_offset.trim().parse().map_err(|_| {
            to_js_error(KalamError::invalid_argument(format!(
                "upto_offset must be a non-negative integer, got {upto_offset:?}"
            )))
        })?;
        let body = ack_body(&topic, &group_id, partition_id, upto);
        let url = inner.base.endpoint(paths::TOPICS_ACK);
        // Acks are idempotent (commits never regress), so transport failures are retried.
        let response = inner
            .with_read_retries(|| inner.authorized("POST", &url, Some(&body), &options))
            .await
            .map_err(to_js_error)?;
        let ack = parse_ack_response(response.status, &response.text()).map_err(to_js_error)?;
        Ok(format!(
            r#"{{"success":{},"acknowledged_offset":"{}"}}"#,
            ack.success, ack.acknowledged_offset
        ))
    }
}

/// Awaits `fut` unless the caller's signal aborts first (`ABORTED`) or `timeout_ms` passes
/// (`TIMEOUT` naming `what`; 0 = no limit). App code (an authProvider) and flights run for
/// other callers are waited for this way, so neither can hang a call.
async fn bounded<F: std::future::Future>(
    fut: F,
    abort: Option<&AbortSignal>,
    timeout_ms: u32,
    what: &str,
) -> Result<F::Output, KalamError> {
    use futures::FutureExt;
    if abort.is_some_and(AbortSignal::aborted) {
        return Err(KalamError::aborted());
    }
    let on_abort = async {
        match abort {
            Some(signal) => {
                let (tx, rx) = oneshot::channel::<()>();
                let _listener = Listener::once(signal, "abort", move || {
                    let _ = tx.send(());
                });
                let _ = rx.await;
            }
            None => futures::future::pending::<()>().await,
        }
    };
    let timer = async {
        match timeout_ms {
            0 => futures::future::pending::<()>().await,
            ms => sleep(ms).await,
        }
    };
    futures::pin_mut!(fut, on_abort, timer);
    futures::select_biased! {
        out = fut.fuse() => Ok(out),
        _ = on_abort.fuse() => Err(KalamError::aborted()),
        _ = timer.fuse() => Err(KalamError::new(
            crate::core::error::codes::TIMEOUT,
            format!("{what} gave no answer within {timeout_ms} ms"),
        )
        .retryable(true)),
    }
}

/// A 2xx answer, or the error its body describes.
fn ok_or_error(response: HttpResponse) -> Result<HttpResponse, KalamError> {
    if (200..300).contains(&response.status) {
        Ok(response)
    } else {
        Err(parse_error_body(response.status, &response.text()))
    }
}

impl Inner {
    pub(crate) fn call_options(
        &self,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
        namespace: Option<String>,
    ) -> CallOptions {
        CallOptions {
            signal,
            timeout_ms: timeout_ms.unwrap_or(self.timeout_ms),
            namespace: namespace
                .filter(|n| !n.is_empty())
                .or_else(|| self.namespace.clone()),
        }
    }

    fn last_login_json(&self) -> JsResult<String> {
        let auth = self.auth.borrow();
        let login = auth.last_login().ok_or_else(|| {
            to_js_error(KalamError::new(
                crate::core::error::codes::AUTH_FAILED,
                "no login happened: login() needs Auth.basic credentials",
            ))
        })?;
        Ok(serde_json::to_string(login).expect("login responses serialize"))
    }

    fn wake_auth_waiters(&self) {
        for waiter in self.auth_waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }

    /// A usable `Authorization` value and its token generation, for a call with an optional
    /// caller `AbortSignal`: an aborted signal rejects with `ABORTED` before any login is
    /// sent, and an abort while waiting for another call's login/refresh rejects at once
    /// (see [`Inner::drive_auth_with`]).
    pub(crate) async fn ensure_auth_for(
        &self,
        options: &CallOptions,
    ) -> Result<(Option<String>, u64), KalamError> {
        let aborted = || options.signal.as_ref().is_some_and(|s| s.aborted());
        if aborted() {
            return Err(KalamError::aborted());
        }
        let step = self.auth.borrow_mut().prepare(now_ms());
        let auth = self
            .drive_auth_with(step, options.signal.as_ref(), options.timeout_ms)
            .await?;
        if aborted() {
            return Err(KalamError::aborted());
        }
        Ok(auth)
    }

    /// A login or refresh request, its answer handed to the auth state machine
    /// (`complete`), then the waiting callers woken. Not cancellable by one caller's
    /// signal, since others may be waiting on the same flight; bounded by the timeout of
    /// the call that started it.
    async fn auth_exchange(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: Body,
        complete: fn(&mut AuthState, u16, &str, i64) -> AuthStep,
        timeout_ms: u32,
    ) -> AuthStep {
        let url = self.base.endpoint(path);
        let result = send(HttpRequest {
            method: "POST",
            url: &url,
            authorization,
            body,
            timeout_ms,
            signal: None,
        })
        .await;
        let next = match result {
            Ok(r) => complete(&mut self.auth.borrow_mut(), r.status, &r.text(), now_ms()),
            Err(err) => self.auth.borrow_mut().fail(err),
        };
        self.wake_auth_waiters();
        next
    }

    /// Runs the auth state machine from `step` until it is ready or fails (see
    /// `core::http::auth`). No RefCell borrow is held across an await.
    pub(crate) async fn drive_auth(
        &self,
        step: AuthStep,
    ) -> Result<(Option<String>, u64), KalamError> {
        self.drive_auth_with(step, None, self.timeout_ms).await
    }

    /// [`Inner::drive_auth`] for a caller with an `AbortSignal` and a timeout: while it
    /// waits for another call's login/refresh/authProvider, an abort rejects it with
    /// `ABORTED` and `timeout_ms` with `TIMEOUT` (the flight itself goes on for the
    /// others). A flight this caller runs is not interrupted midway (others may be waiting
    /// for it), but it is bounded by `timeout_ms`: a login/refresh by the request timeout,
    /// an authProvider that never settles by a `TIMEOUT` that ends the flight.
    pub(crate) async fn drive_auth_with(
        &self,
        mut step: AuthStep,
        abort: Option<&AbortSignal>,
        timeout_ms: u32,
    ) -> Result<(Option<String>, u64), KalamError> {
        // Whether this call runs the flight (the first Login/Refresh/CallProvider step).
        let mut owner = false;
        loop {
            if !owner
                && matches!(
                    step,
                    AuthStep::Login { .. } | AuthStep::Refresh { .. } | AuthStep::CallProvider
                )
            {
                owner = true;
                self.auth_flight.set(self.auth_flight.get() + 1);
            }
            step = match step {
                AuthStep::Ready {
                    authorization,
                    generation,
                } => return Ok((authorization, generation)),
                AuthStep::Fail(err) => {
                    if owner {
                        *self.auth_failure.borrow_mut() =
                            Some((self.auth_flight.get(), err.clone()));
                    }
                    self.wake_auth_waiters();
                    return Err(err);
                }
                AuthStep::Wait => {
                    let flight = self.auth_flight.get();
                    let (tx, rx) = oneshot::channel();
                    self.auth_waiters.borrow_mut().push(tx);
                    let _ = bounded(rx, abort, timeout_ms, "the sign-in in flight").await?;
                    let failed = match &*self.auth_failure.borrow() {
                        Some((f, err)) if *f == flight => Some(err.clone()),
                        _ => None,
                    };
                    match failed {
                        Some(err) => return Err(err),
                        None => self.auth.borrow_mut().prepare(now_ms()),
                    }
                }
                AuthStep::Login { body } => {
                    self.auth_exchange(
                        paths::LOGIN,
                        None,
                        Body::Json(body),
                        AuthState::complete_login,
                        timeout_ms,
                    )
                    .await
                }
                AuthStep::Refresh { authorization } => {
                    self.auth_exchange(
                        paths::REFRESH,
                        Some(&authorization),
                        Body::None,
                        AuthState::complete_refresh,
                        timeout_ms,
                    )
                    .await
                }
                AuthStep::CallProvider => {
                    let next = match self.call_provider(timeout_ms).await {
                        Ok(credentials) => self
                            .auth
                            .borrow_mut()
                            .set_credentials(credentials, now_ms()),
                        Err(err) => self.auth.borrow_mut().fail(err),
                    };
                    self.wake_auth_waiters();
                    next
                }
            };
        }
    }

    /// Asks the app's authProvider; one that never settles fails with `TIMEOUT` after
    /// `timeout_ms` (0: no limit), so no caller waits for it forever.
    async fn call_provider(&self, timeout_ms: u32) -> Result<Credentials, KalamError> {
        let provider = self.provider.as_ref().ok_or_else(|| {
            KalamError::new(
                crate::core::error::codes::AUTH_FAILED,
                "credentials expired and no authProvider can renew them",
            )
        })?;
        let provider_error = |e: JsValue| {
            let message = js_sys::Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .or_else(|| e.as_string())
                .unwrap_or_else(|| "authProvider failed".into());
            KalamError::new(crate::core::error::codes::AUTH_FAILED, message).retryable(true)
        };
        let value = provider.call0(&JsValue::NULL).map_err(provider_error)?;
        let value = match value.dyn_into::<Promise>() {
            Ok(promise) => bounded(
                JsFuture::from(promise),
                None,
                timeout_ms,
                "the authProvider",
            )
            .await?
            .map_err(provider_error)?,
            Err(plain) => plain,
        };
        // Nothing is not "no credentials" (that is `Auth.none()`): most likely a bug.
        if value.is_undefined() || value.is_null() {
            return Err(KalamError::new(
                crate::core::error::codes::AUTH_FAILED,
                "the authProvider returned nothing; return Auth.basic(...), Auth.jwt(...) or Auth.none()",
            ));
        }
        let json = js_sys::JSON::stringify(&value)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| "null".into());
        Credentials::from_json(&json)
    }

    /// Sends a request built with the current token; on `TOKEN_EXPIRED` renews the token
    /// once (single flight) and sends it again. Non-2xx answers become errors.
    pub(crate) async fn authorized(
        &self,
        method: &'static str,
        url: &str,
        json_body: Option<&str>,
        options: &CallOptions,
    ) -> Result<HttpResponse, KalamError> {
        let attempt = |authorization: Option<String>| async move {
            send(HttpRequest {
                method,
                url,
                authorization: authorization.as_deref(),
                body: json_body
                    .map(|b| Body::Json(b.to_string()))
                    .unwrap_or(Body::None),
                timeout_ms: options.timeout_ms,
                signal: options.signal.as_ref(),
            })
            .await
            .and_then(ok_or_error)
        };
        let (authorization, generation) = self.ensure_auth_for(options).await?;
        match attempt(authorization).await {
            Err(err) if crate::core::http::envelope::is_token_expired(&err) => {
                let step = self
                    .auth
                    .borrow_mut()
                    .on_token_expired(generation, now_ms());
                let (authorization, _) = self
                    .drive_auth_with(step, options.signal.as_ref(), options.timeout_ms)
                    .await?;
                attempt(authorization).await
            }
            other => other,
        }
    }

    /// Retries transport failures and retryable statuses with backoff (idempotent calls).
    #[cfg(feature = "consumer")]
    async fn with_read_retries<F, Fut>(&self, attempt: F) -> Result<HttpResponse, KalamError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<HttpResponse, KalamError>>,
    {
        let mut state = RetryState::new();
        loop {
            match attempt().await {
                Ok(r) => return Ok(r),
                Err(err) => match state.decide(
                    &self.retry,
                    RequestKind::Read,
                    &err,
                    js_sys::Math::random(),
                    None,
                ) {
                    RetryDecision::Retry { delay_ms } => sleep(delay_ms).await,
                    // `authorized` already renewed once; a second expiry is final.
                    RetryDecision::RefreshAuth | RetryDecision::GiveUp => return Err(err),
                },
            }
        }
    }

    /// One SQL request with auth renewal and, for reads only, retries with backoff.
    pub(crate) async fn execute(
        &self,
        request: SqlRequest,
        file_table: Option<String>,
        options: &CallOptions,
    ) -> Result<String, KalamError> {
        let body = request.to_json(&self.limits)?;
        let kind = RequestKind::for_sql(&request.sql);
        let table = request.file_table_or(file_table.as_deref());
        let url = self.base.sql_url();
        let mut retry = RetryState::new();
        let (mut authorization, mut generation) = self.ensure_auth_for(options).await?;
        loop {
            let outcome = send(HttpRequest {
                method: "POST",
                url: &url,
                authorization: authorization.as_deref(),
                body: Body::Json(body.clone()),
                timeout_ms: options.timeout_ms,
                signal: options.signal.as_ref(),
            })
            .await
            .and_then(|r| decode_sql_response(r.status, &r.text(), table.as_ref()));
            let err = match outcome {
                Ok(json) => return Ok(json),
                Err(err) => err,
            };
            match retry.decide(&self.retry, kind, &err, js_sys::Math::random(), None) {
                RetryDecision::GiveUp => return Err(err),
                RetryDecision::Retry { delay_ms } => {
                    sleep(delay_ms).await;
                    if options.signal.as_ref().is_some_and(|s| s.aborted()) {
                        return Err(KalamError::aborted());
                    }
                }
                RetryDecision::RefreshAuth => {
                    let step = self
                        .auth
                        .borrow_mut()
                        .on_token_expired(generation, now_ms());
                    (authorization, generation) = self
                        .drive_auth_with(step, options.signal.as_ref(), options.timeout_ms)
                        .await?;
                }
            }
        }
    }
}
