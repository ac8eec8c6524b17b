//! The wasm-only I/O shell: fetch, WebSocket, timers, event listeners and promise
//! callbacks. It moves bytes; decisions are made by `crate::core`. The helpers below are
//! shared by every shell (HTTP, live, consumer) so each conversion exists once.

pub mod http;
pub mod listener;
pub mod promise;
pub mod socket;
pub mod timer;

use wasm_bindgen::JsValue;

use crate::core::error::KalamError;
use crate::core::json::ToJson;

/// The plain `{code, message, status?, retryable, details?}` object JS receives for a core
/// error; the TypeScript turns it into a `KalamError`.
pub fn to_js_error(err: KalamError) -> JsValue {
    js_sys::JSON::parse(&err.to_json()).unwrap_or_else(|_| JsValue::from_str(&err.to_string()))
}

/// Wall-clock milliseconds (`Date.now()`): the `now_ms` every core state machine is fed.
pub fn now_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}
