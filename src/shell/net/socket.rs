//! One WebSocket, built from any constructor with the browser's shape: the global
//! `WebSocket` (browsers, workers, Node 22+) or one passed in, such as the npm `ws` package
//! (Node 18/20). Only the common surface is used: `new C(url)`, `binaryType`, the
//! `onopen`/`onmessage`/`onclose`/`onerror` properties, `send(text)`, `close(code, reason)`.
//! No `CloseEvent` is ever constructed (Node 20 has none; see TOOLCHAIN.md).
//!
//! The socket owns its four handler closures (a bounded set per socket, no
//! `Closure::forget`). Dropping a [`Socket`] detaches the handlers and closes the socket, so
//! a replaced socket can never call back into a dead closure.

use js_sys::{Array, ArrayBuffer, Function, JsString, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// A browser-shaped WebSocket object (structural: browser `WebSocket` or npm `ws`).
    pub type JsSocket;
    #[wasm_bindgen(method, setter = binaryType)]
    fn set_binary_type(this: &JsSocket, value: &str);
    #[wasm_bindgen(method, setter = onopen)]
    fn set_onopen(this: &JsSocket, handler: &JsValue);
    #[wasm_bindgen(method, setter = onmessage)]
    fn set_onmessage(this: &JsSocket, handler: &JsValue);
    #[wasm_bindgen(method, setter = onclose)]
    fn set_onclose(this: &JsSocket, handler: &JsValue);
    #[wasm_bindgen(method, setter = onerror)]
    fn set_onerror(this: &JsSocket, handler: &JsValue);
    #[wasm_bindgen(method, getter = readyState)]
    fn ready_state(this: &JsSocket) -> JsValue;
    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_text(this: &JsSocket, text: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = close)]
    fn close_with(this: &JsSocket, code: u16, reason: &str) -> Result<(), JsValue>;

    /// The runtime's `TextEncoder` (every runtime we support has one).
    pub type Utf8Encoder;
    #[wasm_bindgen(constructor, js_class = "TextEncoder")]
    pub fn new() -> Utf8Encoder;
    #[wasm_bindgen(method, js_name = encodeInto)]
    fn encode_into(this: &Utf8Encoder, text: &JsString, into: &Uint8Array) -> Encoded;
    type Encoded;
    #[wasm_bindgen(method, getter)]
    fn read(this: &Encoded) -> u32;
    #[wasm_bindgen(method, getter)]
    fn written(this: &Encoded) -> u32;
}

/// A text frame's UTF-8 through `TextEncoder.encodeInto`, straight into wasm memory.
/// wasm-bindgen's string passing first copies the ASCII prefix one char at a time in JS,
/// about 1.5 ms of a 1,000-row snapshot batch. One pass when the text is ASCII; else the
/// rest once more, into room for 3 bytes per UTF-16 unit (always enough).
pub fn frame_text(encoder: &Utf8Encoder, text: &JsString) -> String {
    let units = text.length();
    let mut bytes: Vec<u8> = Vec::with_capacity(units as usize);
    let read = encode_into_spare(encoder, text, &mut bytes);
    if read < units {
        bytes.reserve((units - read) as usize * 3);
        encode_into_spare(encoder, &text.slice(read, units), &mut bytes);
    }
    // encodeInto writes whole characters (lone surrogates as U+FFFD), so this never fails.
    String::from_utf8(bytes).unwrap_or_default()
}

/// Encodes what fits of `text` after `bytes`' contents; returns the UTF-16 units read.
fn encode_into_spare(encoder: &Utf8Encoder, text: &JsString, bytes: &mut Vec<u8>) -> u32 {
    let filled = bytes.len();
    // Safety: the view covers the vector's spare capacity and lives only for the call;
    // nothing allocates in wasm memory (which could move it) while it exists.
    unsafe {
        let view =
            Uint8Array::view_mut_raw(bytes.as_mut_ptr().add(filled), bytes.capacity() - filled);
        let done = encoder.encode_into(text, &view);
        bytes.set_len(filled + done.written() as usize);
        done.read()
    }
}

/// What a socket reports.
pub enum SocketEvent {
    Open,
    Text(String),
    Binary(Vec<u8>),
    /// `code` 1006 when the event carries none (errors, failed construction).
    Closed {
        code: u16,
        reason: String,
    },
}

/// A live WebSocket with its handlers attached.
pub struct Socket {
    ws: JsSocket,
    _on_open: Closure<dyn FnMut(JsValue)>,
    _on_message: Closure<dyn FnMut(JsValue)>,
    _on_close: Closure<dyn FnMut(JsValue)>,
    _on_error: Closure<dyn FnMut(JsValue)>,
}

/// The `readyState` values of the WebSocket interface.
const CLOSING: f64 = 2.0;

impl Socket {
    /// `new ctor(url)` with `binaryType = "arraybuffer"`; every event goes to `on_event`.
    /// A constructor that throws (bad URL, blocked port) is an `Err` with its message.
    pub fn open(
        ctor: &Function,
        url: &str,
        on_event: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Result<Socket, String> {
        let args = Array::of1(&JsValue::from_str(url));
        let ws: JsSocket = Reflect::construct(ctor, &args)
            .map_err(|e| describe(&e))?
            .unchecked_into();
        ws.set_binary_type("arraybuffer");

        let cb = on_event.clone();
        let on_open = Closure::<dyn FnMut(JsValue)>::new(move |_| cb(SocketEvent::Open));
        let cb = on_event.clone();
        let encoder = Utf8Encoder::new();
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let data = Reflect::get(&event, &JsValue::from_str("data")).unwrap_or_default();
            if let Some(text) = data.dyn_ref::<JsString>() {
                cb(SocketEvent::Text(frame_text(&encoder, text)));
            } else if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
                cb(SocketEvent::Binary(Uint8Array::new(buf).to_vec()));
            } else if let Some(view) = data.dyn_ref::<Uint8Array>() {
                // `ws` hands out a Buffer (a Uint8Array) when binaryType is ignored.
                cb(SocketEvent::Binary(view.to_vec()));
            }
        });
        let cb = on_event.clone();
        let on_close = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let code = Reflect::get(&event, &JsValue::from_str("code"))
                .ok()
                .and_then(|c| c.as_f64())
                .filter(|c| (0.0..=65535.0).contains(c) && *c != 0.0)
                .map_or(1006, |c| c as u16);
            let reason = Reflect::get(&event, &JsValue::from_str("reason"))
                .ok()
                .and_then(|r| r.as_string())
                .unwrap_or_default();
            cb(SocketEvent::Closed { code, reason });
        });
        // `error` is always followed by `close`, which carries the code: nothing to do here,
        // but a listener must exist (the `ws` package throws on an unhandled 'error').
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |_| {});
        ws.set_onopen(on_open.as_ref());
        ws.set_onmessage(on_message.as_ref());
        ws.set_onclose(on_close.as_ref());
        ws.set_onerror(on_error.as_ref());
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
        })
    }

    /// Sends a text frame; a socket that is not open drops it (the core notices the close).
    pub fn send(&self, text: &str) -> Result<(), String> {
        self.ws.send_text(text).map_err(|e| describe(&e))
    }

    /// Starts the closing handshake (once).
    pub fn close(&self, code: u16, reason: &str) {
        let state = self.ws.ready_state().as_f64().unwrap_or(0.0);
        if state < CLOSING {
            let _ = self.ws.close_with(code, reason);
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Detach first so nothing reaches the closures dropped right after. `onerror` gets a
        // harmless built-in (`Boolean`) instead of null: `ws` emits an 'error' when a
        // still-connecting socket is closed and crashes the process if nobody listens.
        let null = JsValue::NULL;
        self.ws.set_onopen(&null);
        self.ws.set_onmessage(&null);
        self.ws.set_onclose(&null);
        let noop = Reflect::get(&js_sys::global(), &JsValue::from_str("Boolean")).unwrap_or(null);
        self.ws.set_onerror(&noop);
        self.close(1000, "");
    }
}

/// The message of a thrown JS value.
pub fn describe(value: &JsValue) -> String {
    if let Some(err) = value.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}
