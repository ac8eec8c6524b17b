//! kalam-wasm: the KalamDB client for browsers, web workers and Node.
//!
//! `core` is sans-IO plain Rust (tested natively); `net` and the exported objects are the
//! wasm shell that moves bytes and crosses into JS.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod net;

#[cfg(target_arch = "wasm32")]
mod http_client;

#[cfg(all(target_arch = "wasm32", feature = "consumer"))]
mod consumer;

#[cfg(all(target_arch = "wasm32", feature = "client"))]
mod live_client;

#[cfg(target_arch = "wasm32")]
mod exports {
    use wasm_bindgen::prelude::*;

    /// Runs once when the module is instantiated: Rust panics become readable JS errors.
    #[wasm_bindgen(start)]
    fn start() {
        console_error_panic_hook::set_once();
    }

    /// The version of the Rust core inside this package.
    #[wasm_bindgen(js_name = coreVersion)]
    pub fn core_version() -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}
