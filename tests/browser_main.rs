//! wasm-bindgen-test in headless Chromium, on the page's main thread.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod browser;
