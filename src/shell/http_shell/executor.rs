//! Executes the request driver's commands (`core::http::driver`): fetch (or the app's
//! upload transport), timers, the authProvider, and the promises of pending calls. No
//! decision is made here; every outcome goes back into the driver. Callback-driven: each
//! wait is a promise callback or a timer owned by this executor, no Rust future.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, AbortSignal, Blob, FormData};

use crate::core::error::{codes, KalamError};
use crate::core::http::auth::Credentials;
use crate::core::http::driver::{
    Body, CallId, CallSpec, Command, Outgoing, RequestDriver, Resolved, Response, SendId,
};
use crate::core::http::files::FormPart;
use crate::core::id_map::IdMap;
use crate::shell::net::http::{send, Body as FetchBody, HttpRequest};
use crate::shell::net::listener::Listener;
use crate::shell::net::promise::{defer, when_settled};
use crate::shell::net::timer::Timeout;
use crate::shell::net::{now_ms, to_js_error};

/// Receives the outcome of one transmission, exactly once.
type Done = Box<dyn FnOnce(Result<Response, KalamError>)>;

/// The files of a multipart call and, for upload progress, the app's transport:
/// `(url, authorization, form, timeoutMs, signal) => Promise<{status, body}>` (XMLHttpRequest
/// in the TypeScript), which then carries every attempt the driver makes.
pub(crate) struct Upload {
    pub(crate) names: Vec<String>,
    pub(crate) files: Array,
    pub(crate) transport: Option<Function>,
}

/// A pending call: the `resolve`/`reject` of the promise `HttpShell.run` returned.
struct Waiter {
    resolve: Function,
    reject: Function,
    upload: Option<Upload>,
    _abort: Option<Listener>,
    /// The executor lives while one of its calls is pending (as the awaiting future kept
    /// it), even if the `HttpShell` is freed: a cycle broken when the call settles.
    _keep: Rc<Executor>,
}

pub(crate) struct Executor {
    driver: RefCell<RequestDriver>,
    provider: Option<Function>,
    next_call: Cell<CallId>,
    calls: RefCell<IdMap<Waiter>>,
    sends: RefCell<IdMap<AbortController>>,
    timers: RefCell<IdMap<Timeout>>,
}

impl Executor {
    pub(crate) fn new(driver: RequestDriver, provider: Option<Function>) -> Rc<Executor> {
        Rc::new(Executor {
            driver: RefCell::new(driver),
            provider,
            next_call: Cell::new(0),
            calls: RefCell::new(IdMap::new()),
            sends: RefCell::new(IdMap::new()),
            timers: RefCell::new(IdMap::new()),
        })
    }

    pub(crate) fn driver(&self) -> std::cell::Ref<'_, RequestDriver> {
        self.driver.borrow()
    }

    /// Feeds one event to the driver, then executes what it asked for (no borrow is held
    /// while commands run, so a command may feed the next event).
    pub(crate) fn input(self: &Rc<Self>, event: impl FnOnce(&mut RequestDriver, i64)) {
        event(&mut self.driver.borrow_mut(), now_ms() as i64);
        self.execute_commands();
    }

    /// Out of line: `input` is generic (one copy per event), this loop is shared by all.
    #[inline(never)]
    fn execute_commands(self: &Rc<Self>) {
        let commands = self.driver.borrow_mut().take_commands();
        for command in commands {
            self.execute(command);
        }
    }

    /// Runs one call to its end, which calls `resolve` with the answer (see
    /// [`super::answer`]) or `reject` with the error object. An already aborted signal
    /// rejects before anything is sent.
    pub(crate) fn run(
        self: &Rc<Self>,
        spec: CallSpec,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
        upload: Option<Upload>,
        resolve: Function,
        reject: Function,
    ) {
        if signal.as_ref().is_some_and(AbortSignal::aborted) {
            let _ = reject.call1(&JsValue::NULL, &to_js_error(KalamError::aborted()));
            return;
        }
        let id = self.next_call.get() + 1;
        self.next_call.set(id);
        let abort = signal.map(|signal| {
            let weak = Rc::downgrade(self);
            Listener::once(&signal, "abort", move || {
                // Deferred: settling drops this listener, which must not happen inside it.
                defer(Box::new(move || {
                    if let Some(executor) = weak.upgrade() {
                        executor.input(|d, _| d.abort(id));
                    }
                }));
            })
        });
        self.calls.borrow_mut().insert(
            id,
            Waiter {
                resolve,
                reject,
                upload,
                _abort: abort,
                _keep: self.clone(),
            },
        );
        self.input(|d, now| d.call(now, id, spec, timeout_ms));
    }

    fn execute(self: &Rc<Self>, command: Command) {
        match command {
            Command::Send { send, request } => self.send(send, request),
            Command::CancelSend { send } => {
                if let Some(controller) = self.sends.borrow_mut().remove(&send) {
                    controller.abort();
                }
            }
            Command::Sleep { timer, ms } => {
                let weak = Rc::downgrade(self);
                let timeout = Timeout::new(ms, move || {
                    // Deferred so the timer (and this closure) is dropped after it returned.
                    defer(Box::new(move || {
                        if let Some(executor) = weak.upgrade() {
                            let fired = executor.timers.borrow_mut().remove(&timer);
                            drop(fired);
                            executor.input(|d, now| d.timer_fired(now, timer));
                        }
                    }));
                });
                self.timers.borrow_mut().insert(timer, timeout);
            }
            Command::CancelTimer { timer } => {
                let cancelled = self.timers.borrow_mut().remove(&timer);
                drop(cancelled);
            }
            Command::AskProvider { flight } => self.ask_provider(flight),
            Command::Resolve { call, value } => self.settle(call, Ok(value)),
            Command::Reject { call, error } => self.settle(call, Err(error)),
        }
    }

    /// Calls the waiter's `resolve`/`reject` (after removing it: they call nothing back
    /// synchronously), which drops its abort listener (never running here: it defers).
    fn settle(&self, call: CallId, outcome: Result<Resolved, KalamError>) {
        let Some(waiter) = self.calls.borrow_mut().remove(&call) else {
            return;
        };
        let _ = match outcome.and_then(super::answer) {
            Ok(value) => waiter.resolve.call1(&JsValue::NULL, &value),
            Err(error) => waiter.reject.call1(&JsValue::NULL, &to_js_error(error)),
        };
    }

    fn send(self: &Rc<Self>, send: SendId, request: Outgoing) {
        let Ok(controller) = AbortController::new() else {
            let error = KalamError::network("AbortController unavailable");
            return self.input(|d, now| d.transport_error(now, send, error));
        };
        self.sends.borrow_mut().insert(send, controller.clone());
        let executor = self.clone();
        // Started in a microtask (as the spawned task was), so the driver's remaining
        // commands are executed before an outcome can come back; the executor is held
        // until the send settles.
        defer(Box::new(move || {
            let signal = controller.signal();
            let this = executor.clone();
            executor.transmit(
                &request,
                &signal,
                Box::new(move |result| {
                    this.sends.borrow_mut().remove(&send);
                    this.input(|d, now| match result {
                        Ok(response) => d.response(now, send, response),
                        Err(error) => d.transport_error(now, send, error),
                    });
                }),
            );
        }));
    }

    fn transmit(&self, request: &Outgoing, signal: &AbortSignal, done: Done) {
        let body = match &request.body {
            Body::None => FetchBody::None,
            Body::Json(text) => FetchBody::Json(text.clone()),
            Body::Form(parts) => match self.form_of(request.call, parts) {
                Err(error) => return done(Err(error)),
                Ok((form, Some(transport))) => {
                    return upload_with(&transport, request, form, signal, done)
                }
                Ok((form, None)) => FetchBody::Form(form),
            },
        };
        send(
            HttpRequest {
                method: request.method,
                url: &request.url,
                authorization: request.authorization.as_deref(),
                body,
                timeout_ms: request.timeout_ms,
                signal: Some(signal),
            },
            Box::new(move |result| {
                done(result.map(|response| Response {
                    status: response.status,
                    retry_after: response.retry_after,
                    content_type: response.content_type,
                    body: response.body,
                }))
            }),
        );
    }

    /// The multipart body (parts from `core::http::files::upload_form`, blobs from the call).
    fn form_of(
        &self,
        call: Option<CallId>,
        parts: &[FormPart],
    ) -> Result<(FormData, Option<Function>), KalamError> {
        let calls = self.calls.borrow();
        let upload = call
            .and_then(|c| calls.get(&c))
            .and_then(|w| w.upload.as_ref())
            .ok_or_else(|| KalamError::protocol("an upload without its files"))?;
        let data = FormData::new().map_err(|_| KalamError::protocol("FormData unavailable"))?;
        for part in parts {
            let appended = match part {
                FormPart::Text { name, value } => data.append_with_str(name, value),
                FormPart::File { name, file } => {
                    let index = upload.names.iter().position(|n| n == file).unwrap_or(0);
                    let blob: Blob = upload.files.get(index as u32).dyn_into().map_err(|_| {
                        KalamError::invalid_argument(format!(
                            "queryWithFiles: '{file}' is not a Blob or File"
                        ))
                    })?;
                    let filename = Reflect::get(&blob, &"name".into())
                        .ok()
                        .and_then(|n| n.as_string())
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| file.clone());
                    data.append_with_blob_and_filename(name, &blob, &filename)
                }
            };
            appended.map_err(|_| KalamError::protocol("cannot build the upload form"))?;
        }
        Ok((data, upload.transport.clone()))
    }

    fn ask_provider(self: &Rc<Self>, flight: u64) {
        let Some(provider) = self.provider.as_ref() else {
            let error = KalamError::new(
                codes::AUTH_FAILED,
                "credentials expired and no authProvider can renew them",
            );
            return self.input(|d, now| d.provider_result(now, flight, Err(error)));
        };
        match provider.call0(&JsValue::NULL) {
            Err(thrown) => {
                let error = provider_error(thrown);
                self.input(|d, now| d.provider_result(now, flight, Err(error)));
            }
            Ok(value) => match value.dyn_into::<Promise>() {
                Ok(promise) => {
                    // Weak: a provider that never settles must not keep the client alive (the
                    // driver already timed its flight out).
                    let weak: Weak<Executor> = Rc::downgrade(self);
                    when_settled(
                        &promise,
                        Box::new(move |result| {
                            if let Some(executor) = weak.upgrade() {
                                let result =
                                    result.map_err(provider_error).and_then(credentials_of);
                                executor.input(|d, now| d.provider_result(now, flight, result));
                            }
                        }),
                    );
                }
                Err(plain) => {
                    let result = credentials_of(plain);
                    self.input(|d, now| d.provider_result(now, flight, result));
                }
            },
        }
    }
}

/// An upload through the app's transport; it settles with `{status, body}` or rejects with
/// a `{code, message, retryable}` object.
fn upload_with(
    transport: &Function,
    request: &Outgoing,
    form: FormData,
    signal: &AbortSignal,
    done: Done,
) {
    let args = Array::of5(
        &JsValue::from_str(&request.url),
        &request
            .authorization
            .as_deref()
            .map_or(JsValue::UNDEFINED, JsValue::from_str),
        &form,
        &JsValue::from(request.timeout_ms),
        signal,
    );
    let promise = match transport.apply(&JsValue::NULL, &args) {
        Ok(promise) => promise,
        Err(thrown) => return done(Err(transport_error(thrown))),
    };
    when_settled(
        &promise,
        Box::new(move |settled| done(settled.map(answer_of).map_err(transport_error))),
    );
}

/// The transport's `{status, body}`.
fn answer_of(answer: JsValue) -> Response {
    let status = Reflect::get(&answer, &"status".into())
        .ok()
        .and_then(|s| s.as_f64())
        .unwrap_or(0.0) as u16;
    let body = Reflect::get(&answer, &"body".into())
        .ok()
        .and_then(|b| b.as_string())
        .unwrap_or_default();
    Response {
        status,
        body: body.into_bytes(),
        ..Response::default()
    }
}

/// A transport's rejection: its `code`/`message`/`retryable` when it gave them.
fn transport_error(value: JsValue) -> KalamError {
    let field = |name: &str| Reflect::get(&value, &name.into()).ok();
    let code = field("code")
        .and_then(|c| c.as_string())
        .unwrap_or_else(|| codes::NETWORK.to_string());
    let message = field("message")
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| "upload failed".into());
    let retryable = field("retryable")
        .and_then(|r| r.as_bool())
        .unwrap_or(code == codes::NETWORK || code == codes::TIMEOUT);
    KalamError::new(code, message).retryable(retryable)
}

fn provider_error(thrown: JsValue) -> KalamError {
    let message = Reflect::get(&thrown, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| thrown.as_string())
        .unwrap_or_else(|| "authProvider failed".into());
    KalamError::new(codes::AUTH_FAILED, message).retryable(true)
}

fn credentials_of(value: JsValue) -> Result<Credentials, KalamError> {
    // Nothing is not "no credentials" (that is `Auth.none()`): most likely a bug.
    if value.is_undefined() || value.is_null() {
        return Err(KalamError::new(
            codes::AUTH_FAILED,
            "the authProvider returned nothing; return Auth.basic(...), Auth.jwt(...) or Auth.none()",
        ));
    }
    let json = js_sys::JSON::stringify(&value)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| "null".into());
    Credentials::from_json(&json)
}
