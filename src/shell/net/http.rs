//! One HTTP exchange over `fetch` with a timeout and an optional caller `AbortSignal`.
//! Everything about what to send and what the answer means lives in `crate::core`.

use std::cell::Cell;
use std::rc::Rc;

use gloo_net::http::{Method, RequestBuilder};
use wasm_bindgen::prelude::*;
use web_sys::RequestCredentials;
use web_sys::{AbortController, AbortSignal};

use super::listener::Listener;
use super::timer::Timeout;
use crate::core::error::KalamError;

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

/// Why our own controller fired, so an abort can be reported as what it was.
#[derive(Clone, Copy, PartialEq)]
enum Cancel {
    None,
    Timeout,
    Caller,
}

pub async fn send(request: HttpRequest<'_>) -> Result<HttpResponse, KalamError> {
    if request.signal.is_some_and(|s| s.aborted()) {
        return Err(KalamError::aborted());
    }
    let controller =
        AbortController::new().map_err(|_| KalamError::network("AbortController unavailable"))?;
    let cancel = Rc::new(Cell::new(Cancel::None));

    let _link = request.signal.map(|signal| {
        let (controller, cancel) = (controller.clone(), cancel.clone());
        Listener::once(signal, "abort", move || {
            if cancel.get() == Cancel::None {
                cancel.set(Cancel::Caller);
            }
            controller.abort();
        })
    });
    let _timeout = (request.timeout_ms > 0).then(|| {
        let (controller, cancel) = (controller.clone(), cancel.clone());
        Timeout::new(request.timeout_ms, move || {
            if cancel.get() == Cancel::None {
                cancel.set(Cancel::Timeout);
            }
            controller.abort();
        })
    });

    let method = match request.method {
        "GET" => Method::GET,
        "DELETE" => Method::DELETE,
        _ => Method::POST,
    };
    // Never send cookies: the server's `kalamdb_refresh` cookie would win over our Bearer
    // refresh token, so two clients of different users on one origin could swap identities.
    let mut builder = RequestBuilder::new(request.url)
        .method(method)
        .credentials(RequestCredentials::Omit)
        .abort_signal(Some(&controller.signal()));
    if let Some(authorization) = request.authorization {
        builder = builder.header("Authorization", authorization);
    }
    let built = match request.body {
        Body::None => builder.build(),
        Body::Json(text) => builder
            .header("Content-Type", "application/json")
            .body(JsValue::from_str(&text)),
        // The browser writes the multipart boundary itself.
        Body::Form(form) => builder.body(JsValue::from(form)),
    }
    .map_err(|e| KalamError::invalid_argument(format!("cannot build request: {e}")))?;

    let outcome = async {
        let response = built.send().await?;
        let status = response.status();
        let content_type = response.headers().get("content-type");
        let retry_after = response.headers().get("retry-after");
        let body = response.binary().await?;
        Ok::<_, gloo_net::Error>(HttpResponse {
            status,
            content_type,
            retry_after,
            body,
        })
    }
    .await;
    outcome.map_err(|err| match cancel.get() {
        Cancel::Timeout => KalamError::timeout(request.timeout_ms),
        Cancel::Caller => KalamError::aborted(),
        Cancel::None => KalamError::network(format!("request to {} failed: {err}", request.url)),
    })
}
