//! The sans-IO core: no web-sys, no I/O. Every protocol behaviour lives here and is
//! unit-tested natively with recorded frames and a fake clock.

pub mod error;
// The wasm build's allocator (smaller than dlmalloc); the shell installs it.
pub mod heap;
// Our own exact JSON (replaces serde_json).
pub mod json;
// The live WebSocket core (client bundle only: needs miniz_oxide for gzip frames).
#[cfg(feature = "client")]
pub mod live;
pub mod schema;
pub mod seq_id;
// Id-keyed map as a sorted Vec (no hashbrown code per value type).
pub(crate) mod id_map;
// The one sort of the core (one copy of the code in the .wasm).
pub(crate) mod sort;
// One SQL lexer for the HTTP and live SQL rules.
pub(crate) mod sql_lexer;
// Byte-level searches for ASCII needles (no std two-way searcher).
pub(crate) mod text;

// HTTP half (sans-IO): URLs, SQL bodies, envelopes, auth, retries, cells, topics.
pub mod backoff;
pub mod base64;
pub mod cells;
pub mod http;
pub mod topics;

// The tests' pseudo-random generator.
#[cfg(test)]
pub(crate) mod test_rng;

// Fails when core code names wasm-bindgen, web-sys, js-sys or gloo.
#[cfg(test)]
mod sans_io_tests;

// Generates bindings/shared/core-constants.ts and checks the committed copy.
#[cfg(test)]
mod ts_constants;

// Issue-13 regression tests across the live core, and the decoder fuzzer.
#[cfg(all(test, feature = "client"))]
mod fuzz_tests;
#[cfg(all(test, feature = "client"))]
mod hardening_tests;
