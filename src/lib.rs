//! kalam-wasm: the KalamDB client for browsers, web workers and Node.
//!
//! `core` is sans-IO plain Rust (tested natively); `net` and the exported objects are the
//! wasm shell that moves bytes and crosses into JS.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod net;
