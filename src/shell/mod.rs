//! The wasm shell: it executes what the core decides and crosses into JS. One file (or
//! folder) per exported class:
//! - `http_shell`: `HttpShell`, the HTTP request driver's executor (both packages);
//! - `live_client`: `LiveClient`, the live socket around `LiveCore` (client package);
//! - `consumer_ledger`: `ConsumerLedger`, the consumer's offset ledger (consumer package);
//! - `exports`: the free functions (start-up, core version, FileRef and table-name rules);
//! - `net`: fetch, WebSocket, timers and listeners, shared by all of them;
//! - `allocator`: `core::heap` as the global allocator.

pub mod net;

#[cfg(not(target_feature = "atomics"))]
mod allocator;

mod exports;
pub(crate) mod http_shell;

#[cfg(feature = "client")]
mod live_client;

#[cfg(feature = "consumer")]
mod consumer_ledger;
