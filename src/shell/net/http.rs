//! One HTTP exchange over the global `fetch` with a timeout and an optional caller
//! `AbortSignal`, driven by promise callbacks (no Rust futures). Everything about what to
//! send and what the answer means lives in `crate::core`.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, AbortSignal, Headers, Request, RequestCredentials, RequestInit};

use super::listener::Listener;
use super::promise::when_settled;
use super::timer::Timeout;
use crate::core::error::KalamError;

#[wasm_bindgen]
extern "C" {
    /// `globalThis.fetch`: windows, dedicated/shared/service workers and Node 18+ all have
    /// it, so no `Window`/`WorkerGlobalScope` lookup is needed.
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(request: &Request) -> Result<Promise, JsValue>;
}

pub enum Body {
    None,
    Json(String),
    Form(web_sys::FormData),
}

pub struct HttpRequest<'a> {
    pub method: &'static str,
    pub url: &'a str,
    /// The full `Authorization` header value (`Bearer …`), when the request carries one.
    pub authorization: Option<&'a str>,
    pub body: Body,
    pub timeout_ms: u32,
    pub signal: Option<&'a AbortSignal>,
}

pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// `Retry-After` (readable cross-origin only if the server exposes it).
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Receives the outcome of [`send`], exactly once.
pub type Done = Box<dyn FnOnce(Result<HttpResponse, KalamError>)>;

/// Why our own controller fired, so an abort can be reported as what it was.
#[derive(Clone, Copy, PartialEq)]
enum Cancel {
    None,
    Timeout,
    Caller,
}

/// One exchange in flight, owned by its fetch callbacks: settling drops the timer and the
/// abort link (neither of which is running then: an abort rejects the fetch in a later
/// microtask).
struct Exchange {
    url: String,
    timeout_ms: u32,
    cancel: Rc<Cell<Cancel>>,
    _link: Option<Listener>,
    _timeout: Option<Timeout>,
    done: Done,
}

impl Exchange {
    /// Drops the timer and the abort link first, as the exchange is over.
    fn finish(self, result: Result<HttpResponse, KalamError>) {
        let Exchange {
            done,
            _link,
            _timeout,
            ..
        } = self;
        drop((_link, _timeout));
        done(result);
    }

    fn fail(self, thrown: JsValue) {
        let error = match self.cancel.get() {
            Cancel::Timeout => KalamError::timeout(self.timeout_ms),
            Cancel::Caller => KalamError::aborted(),
            Cancel::None => KalamError::network(format!(
                "request to {} failed: {}",
                self.url,
                js_text(&thrown)
            )),
        };
        self.finish(Err(error));
    }
}

/// Sends `request`; `done` gets the answer (status, headers, whole body) or the error. An
/// error found before anything is sent is reported before `send` returns.
pub fn send(request: HttpRequest<'_>, done: Done) {
    if request.signal.is_some_and(|s| s.aborted()) {
        return done(Err(KalamError::aborted()));
    }
    let Ok(controller) = AbortController::new() else {
        return done(Err(KalamError::network("AbortController unavailable")));
    };
    let built = match build(&request, &controller.signal()) {
        Ok(built) => built,
        Err(thrown) => {
            let message = format!("cannot build request: {}", js_text(&thrown));
            return done(Err(KalamError::invalid_argument(message)));
        }
    };
    let cancel = Rc::new(Cell::new(Cancel::None));
    let link = request.signal.map(|signal| {
        let (controller, cancel) = (controller.clone(), cancel.clone());
        Listener::once(signal, "abort", move || {
            if cancel.get() == Cancel::None {
                cancel.set(Cancel::Caller);
            }
            controller.abort();
        })
    });
    let timeout = (request.timeout_ms > 0).then(|| {
        let (controller, cancel) = (controller.clone(), cancel.clone());
        Timeout::new(request.timeout_ms, move || {
            if cancel.get() == Cancel::None {
                cancel.set(Cancel::Timeout);
            }
            controller.abort();
        })
    });
    let exchange = Exchange {
        url: request.url.to_string(),
        timeout_ms: request.timeout_ms,
        cancel,
        _link: link,
        _timeout: timeout,
        done,
    };
    match global_fetch(&built) {
        Ok(promise) => when_settled(&promise, Box::new(move |r| respond(exchange, r))),
        Err(thrown) => exchange.fail(thrown),
    }
}

fn build(request: &HttpRequest<'_>, signal: &AbortSignal) -> Result<Request, JsValue> {
    let init = RequestInit::new();
    init.set_method(request.method);
    // Never send cookies: the server's `kalamdb_refresh` cookie would win over our Bearer
    // refresh token, so two clients of different users on one origin could swap identities.
    init.set_credentials(RequestCredentials::Omit);
    init.set_signal(Some(signal));
    let headers = Headers::new()?;
    if let Some(authorization) = request.authorization {
        headers.set("Authorization", authorization)?;
    }
    match &request.body {
        Body::None => {}
        Body::Json(text) => {
            headers.set("Content-Type", "application/json")?;
            init.set_body(&JsValue::from_str(text));
        }
        // The browser writes the multipart boundary itself.
        Body::Form(form) => init.set_body(form),
    }
    init.set_headers(&headers);
    Request::new_with_str_and_init(request.url, &init)
}

/// The fetch settled: read the status and headers, then the whole body (still under the
/// timeout and the caller's signal).
fn respond(exchange: Exchange, fetched: Result<JsValue, JsValue>) {
    let response = match fetched.map(JsCast::dyn_into::<web_sys::Response>) {
        Ok(Ok(response)) => response,
        Ok(Err(other)) | Err(other) => return exchange.fail(other),
    };
    let status = response.status();
    let headers = response.headers();
    let content_type = headers.get("content-type").ok().flatten();
    let retry_after = headers.get("retry-after").ok().flatten();
    let buffer = match response.array_buffer() {
        Ok(buffer) => buffer,
        Err(thrown) => return exchange.fail(thrown),
    };
    when_settled(
        &buffer,
        Box::new(move |read| match read {
            Ok(buffer) => exchange.finish(Ok(HttpResponse {
                status,
                content_type,
                retry_after,
                body: Uint8Array::new(&buffer).to_vec(),
            })),
            Err(thrown) => exchange.fail(thrown),
        }),
    );
}

/// A thrown value as text: an `Error`'s `toString()` (`TypeError: Failed to fetch`).
fn js_text(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.to_string()),
        None => value
            .as_string()
            .unwrap_or_else(|| "a non-Error value".into()),
    }
}
