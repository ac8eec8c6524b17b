//! `setTimeout` from whatever global scope we run in (window, worker, Node): bound as free
//! functions so no `Window` is required.

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, timeout_ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// A one-shot timer that is cancelled when dropped, so its closure never outlives it.
pub struct Timeout {
    handle: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timeout {
    pub fn new(delay_ms: u32, callback: impl FnOnce() + 'static) -> Timeout {
        let mut callback = Some(callback);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(cb) = callback.take() {
                cb();
            }
        });
        let delay = i32::try_from(delay_ms).unwrap_or(i32::MAX);
        let handle = set_timeout(closure.as_ref().unchecked_ref(), delay);
        Timeout {
            handle,
            _callback: closure,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.handle);
    }
}
