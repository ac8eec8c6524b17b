//! The one error model (DESIGN.md §4): every failure, Rust or JS side, is a `KalamError`
//! with a code, a message, the HTTP status where there is one, whether retrying can help,
//! and optional details. Server codes are passed through verbatim; ours are listed in
//! [`codes`].

use crate::core::json::{ObjectWriter, ToJson};

/// Declares the client's codes once: each a `pub const`, plus (tests only) the list with its
/// documentation, from which the TypeScript `ErrorCode` is generated (`core::ts_constants`).
macro_rules! client_codes {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        $($(#[doc = $doc])+ pub const $name: &str = stringify!($name);)+

        /// Every client code with its documentation, in declaration order.
        #[cfg(test)]
        pub const ALL: &[(&str, &str)] = &[$((stringify!($name), concat!($($doc),+)),)+];
    };
}

/// Codes produced by the client itself. Server codes (`SQL_EXECUTION_ERROR`,
/// `TOKEN_EXPIRED`, WebSocket `error.code`s, ...) are kept as the server spelled them.
pub mod codes {
    client_codes! {
        /// The request never got an HTTP answer (DNS, refused, reset, CORS).
        NETWORK,
        /// No answer within the configured timeout.
        TIMEOUT,
        /// Cancelled through an `AbortSignal` (or by `shutdown()`).
        ABORTED,
        /// The server sent something that does not follow the protocol.
        PROTOCOL,
        /// The caller passed something unusable (bad option, bad live SQL, bad key).
        INVALID_ARGUMENT,
        /// The configured server URL cannot be used.
        INVALID_URL,
        /// The client (or the subscription) was closed.
        CLOSED,
        /// Authentication failed and no provider could produce a working credential.
        AUTH_FAILED,
        /// An HTTP error whose body carried no recognisable error code.
        HTTP_ERROR,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct KalamError {
    pub code: String,
    pub message: String,
    /// HTTP status, when the failure came with one.
    pub status: Option<u16>,
    /// Whether the same call may succeed if tried again unchanged.
    pub retryable: bool,
    pub details: Option<String>,
}

impl KalamError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> KalamError {
        KalamError {
            code: code.into(),
            message: message.into(),
            status: None,
            retryable: false,
            details: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> KalamError {
        self.status = Some(status);
        self
    }

    pub fn retryable(mut self, retryable: bool) -> KalamError {
        self.retryable = retryable;
        self
    }

    pub fn with_details(mut self, details: impl Into<String>) -> KalamError {
        self.details = Some(details.into());
        self
    }

    pub fn network(message: impl Into<String>) -> KalamError {
        KalamError::new(codes::NETWORK, message).retryable(true)
    }
    pub fn timeout(after_ms: u32) -> KalamError {
        KalamError::new(codes::TIMEOUT, format!("no answer within {after_ms} ms")).retryable(true)
    }
    pub fn aborted() -> KalamError {
        KalamError::new(codes::ABORTED, "the operation was aborted")
    }
    pub fn protocol(message: impl Into<String>) -> KalamError {
        KalamError::new(codes::PROTOCOL, message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> KalamError {
        KalamError::new(codes::INVALID_ARGUMENT, message)
    }
    pub fn invalid_url(message: impl Into<String>) -> KalamError {
        KalamError::new(codes::INVALID_URL, message)
    }
    pub fn closed(message: impl Into<String>) -> KalamError {
        KalamError::new(codes::CLOSED, message)
    }
}

/// `{"code","message","status"?,"retryable","details"?}`: what the TypeScript `KalamError`
/// is built from (absent fields omitted).
impl ToJson for KalamError {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("code", &self.code)
            .field("message", &self.message)
            .opt_field("status", &self.status)
            .field("retryable", &self.retryable)
            .opt_field("details", &self.details);
        w.finish();
    }
}

pub type Result<T, E = KalamError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_without_absent_fields() {
        let err = KalamError::new("SQL_EXECUTION_ERROR", "SQL statement failed").with_status(400);
        assert_eq!(
            err.to_json(),
            r#"{"code":"SQL_EXECUTION_ERROR","message":"SQL statement failed","status":400,"retryable":false}"#
        );
        let full = KalamError::network("a\"b").with_details("d");
        assert_eq!(
            full.to_json(),
            r#"{"code":"NETWORK","message":"a\"b","retryable":true,"details":"d"}"#
        );
        assert_eq!(err.to_string(), "SQL_EXECUTION_ERROR: SQL statement failed");
    }

    #[test]
    fn transport_failures_are_retryable_and_caller_errors_are_not() {
        assert!(KalamError::network("refused").retryable);
        assert!(KalamError::timeout(5000).retryable);
        assert!(!KalamError::aborted().retryable);
        assert!(!KalamError::invalid_argument("x").retryable);
    }
}
