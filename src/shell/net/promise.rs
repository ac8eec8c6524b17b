//! Promise continuations without Rust futures (no executor, no task queue in the .wasm):
//! each wait is ONE `.then` callback that is always called exactly once, so
//! `Closure::once_into_js` frees it after the call and nothing is owned or leaked per wait.

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// A promise seen structurally, for `then` with a plain function (js-sys's `then` wants
    /// a `Closure`, not the function `once_into_js` gives).
    type Thenable;
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, callback: &JsValue);
}

fn then(promise: Promise, callback: &JsValue) {
    promise.unchecked_into::<Thenable>().then(callback);
}

/// Runs `f` in a microtask, after the current callback returned: whatever `f` drops (a
/// timer, a listener) is then no longer running, and commands that are being executed are
/// all executed before `f` feeds the next event.
pub fn defer(f: Box<dyn FnOnce()>) {
    let callback = Closure::<dyn FnMut(JsValue)>::once_into_js(move |_: JsValue| f());
    then(Promise::resolve(&JsValue::UNDEFINED), &callback);
}

/// Calls `f` with `Ok(value)` or `Err(reason)` once `value` (a promise, or any value, as
/// `Promise.resolve` takes it) settles. `Promise.allSettled` makes both outcomes one
/// fulfilment, so a single callback serves both (of a then/catch pair one would never be
/// called, and leak). A promise that never settles keeps its callback, as an awaited
/// future did.
pub fn when_settled(value: &JsValue, f: Box<dyn FnOnce(Result<JsValue, JsValue>)>) {
    let callback = Closure::<dyn FnMut(JsValue)>::once_into_js(move |outcomes: JsValue| {
        let outcome = outcomes.unchecked_into::<Array>().get(0);
        let field = |key: &str| Reflect::get(&outcome, &JsValue::from_str(key)).unwrap_or_default();
        if field("status").as_string().as_deref() == Some("fulfilled") {
            f(Ok(field("value")))
        } else {
            f(Err(field("reason")))
        }
    });
    then(Promise::all_settled(&Array::of1(value)), &callback);
}
