//! The driver's boundary: what a call asks for ([`CallSpec`]), what the shell sends and
//! answers ([`Command`], [`Outgoing`], [`Response`]) and what a call resolves with
//! ([`Resolved`]). The state machine using them is in the parent module.

use crate::core::error::KalamError;
use crate::core::http::envelope::parse_error_body;
use crate::core::http::files::FormPart;
use crate::core::http::retry::{RequestKind, RetryPolicy};
use crate::core::http::url::BaseUrl;

/// The shell's number for a call (it settles the call's promise).
pub type CallId = u64;
/// Numbers the driver gives its requests, timers and sign-in flights (one sequence).
pub type SendId = u64;
pub type TimerId = u64;
pub type FlightId = u64;

/// Turns a final answer (status, body text) into what the call resolves with, or the error
/// it describes (which the driver may retry on).
pub type TextDecoder = Box<dyn Fn(u16, &str) -> Result<String, KalamError>>;

/// How a request's answer is decoded.
pub enum Decode {
    /// Through a decoder (SQL envelope, consume/ack, or [`ok_text`] for plain endpoints).
    Text(TextDecoder),
    /// The raw bytes of a 2xx answer (downloads); other statuses become errors.
    Bytes,
}

/// `2xx` → the body text, else the error the body describes (auth/diagnostic endpoints).
pub fn ok_text(status: u16, body: &str) -> Result<String, KalamError> {
    if (200..300).contains(&status) {
        Ok(body.to_string())
    } else {
        Err(parse_error_body(status, body))
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Json(String),
    /// Multipart parts in order; file parts name the caller's file, which the shell holds.
    Form(Vec<FormPart>),
}

/// One HTTP request a call makes (sent again as it is on a retry).
pub struct RequestSpec {
    pub method: &'static str,
    pub url: String,
    pub body: Body,
    /// Carries the Bearer token (and is renewed once on `TOKEN_EXPIRED`).
    pub authenticated: bool,
    /// Only `Read` is retried on transport errors and overload answers.
    pub kind: RequestKind,
    pub decode: Decode,
}

/// What a call does.
pub enum CallSpec {
    Request(RequestSpec),
    /// `login()`: a login with basic credentials; resolves with the login response JSON.
    Login,
    /// `refreshToken()`: with this refresh token, or the one from the last login.
    Refresh {
        refresh_token: Option<String>,
    },
    /// `accessToken(force)`: the current token, obtained or renewed first.
    AccessToken {
        force: bool,
    },
}

/// What a call resolves with.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Text(String),
    Bytes {
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

/// An answer to a [`Command::Send`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A request for the shell to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The call it belongs to; `None` for sign-in exchanges (login/refresh).
    pub call: Option<CallId>,
    pub method: &'static str,
    pub url: String,
    /// The full `Authorization` value (`Bearer …`), when the request carries one.
    pub authorization: Option<String>,
    pub body: Body,
    /// Abort the exchange and report `TIMEOUT` after this long (0: no limit).
    pub timeout_ms: u32,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Send {
        send: SendId,
        request: Outgoing,
    },
    /// Abort a request whose answer nobody waits for any more (its call was aborted).
    CancelSend {
        send: SendId,
    },
    Sleep {
        timer: TimerId,
        ms: u32,
    },
    CancelTimer {
        timer: TimerId,
    },
    /// Call the app's authProvider, then [`super::RequestDriver::provider_result`] with `flight`.
    AskProvider {
        flight: FlightId,
    },
    Resolve {
        call: CallId,
        value: Resolved,
    },
    Reject {
        call: CallId,
        error: KalamError,
    },
}

/// Client-wide settings.
pub struct DriverConfig {
    pub base: BaseUrl,
    /// Default per-call timeout (0: none).
    pub timeout_ms: u32,
    pub retry: RetryPolicy,
}
