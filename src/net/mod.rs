//! The wasm-only I/O shell: fetch, WebSocket and timers. It moves bytes; decisions are
//! made by `crate::core`.

pub mod http;
pub mod socket;
pub mod timer;
