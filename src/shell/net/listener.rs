//! An event listener that is removed when its guard drops, so a closure never outlives the
//! wait it serves (an abort signal's `abort`, a socket's events).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::EventTarget;

/// `target.addEventListener(kind, callback)` until dropped.
pub struct Listener {
    target: EventTarget,
    kind: &'static str,
    callback: Closure<dyn FnMut(web_sys::Event)>,
}

impl Listener {
    pub fn new(
        target: &EventTarget,
        kind: &'static str,
        callback: impl FnMut(web_sys::Event) + 'static,
    ) -> Listener {
        let callback = Closure::<dyn FnMut(web_sys::Event)>::new(callback);
        let _ = target.add_event_listener_with_callback(kind, callback.as_ref().unchecked_ref());
        Listener {
            target: target.clone(),
            kind,
            callback,
        }
    }

    /// A listener whose callback runs at most once (e.g. `abort`).
    pub fn once(
        target: &EventTarget,
        kind: &'static str,
        callback: impl FnOnce() + 'static,
    ) -> Listener {
        let mut callback = Some(callback);
        Listener::new(target, kind, move |_| {
            if let Some(cb) = callback.take() {
                cb();
            }
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.callback.as_ref().unchecked_ref());
    }
}
