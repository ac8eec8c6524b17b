//! kalam-wasm: the KalamDB client for browsers, web workers and Node.
//!
//! `core` is sans-IO plain Rust, tested natively (it may not name a browser crate:
//! `core::sans_io_tests`); `shell` is the wasm32-only layer that moves bytes (fetch,
//! WebSocket, timers) and holds the classes JS sees, one file each.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod shell;
