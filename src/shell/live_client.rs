//! `LiveClient`: the wasm shell around [`LiveCore`] (one WebSocket, every live
//! subscription). It executes the core's commands with a WebSocket built from a JS
//! constructor, `setTimeout` timers and a JS token provider, forwards page-lifecycle events,
//! and hands everything meant for JS over in ONE call per drained burst: the JSON array of
//! [`crate::core::live::payload`] (its format and writer live there, natively tested; the
//! options parsing in [`crate::core::live::options`]).
//!
//! Re-entrancy: no JS is called while the state is borrowed, except the WebSocket
//! constructor and `send`/`close` (which never call back synchronously). The token provider
//! and the output callback run after the borrow is released, so they may call back into
//! the client.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::cells::RowDecoder;
use crate::core::error::{codes, KalamError};
use crate::core::live::options::{config_from_json, options_from_json};
use crate::core::live::payload::{schema_json, subscriptions_json, Items};
use crate::core::live::sql::live_sql_table;
use crate::core::live::verify;
use crate::core::live::{ConnectionState, LiveCore, Output, SubscriptionMode, TimerId};
use crate::core::schema::SchemaField;
use crate::shell::net::listener::Listener;
use crate::shell::net::promise::when_settled;
use crate::shell::net::socket::{describe, Socket, SocketEvent};
use crate::shell::net::timer::Timeout;
use crate::shell::net::{now_ms, to_js_error};

/// A rejection from app code (the token provider, `runSql`) as a `KalamError`: its
/// `code`/`message`/`retryable`/`status` when it gave a KalamError-like object, else a
/// retryable error with `default_code`.
fn rejection_error(value: &JsValue, default_code: &str, prefix: &str) -> KalamError {
    let get = |k: &str| Reflect::get(value, &JsValue::from_str(k)).ok();
    let code = get("code").and_then(|v| v.as_string());
    let message = get("message")
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| describe(value));
    let retryable = get("retryable").and_then(|v| v.as_bool()).unwrap_or(true);
    let mut err = KalamError::new(
        code.unwrap_or_else(|| default_code.to_string()),
        format!("{prefix}{message}"),
    )
    .retryable(retryable);
    if let Some(status) = get("status").and_then(|v| v.as_f64()) {
        err = err.with_status(status as u16);
    }
    err
}

/// A rejected token provider: retryable `AUTH_FAILED` unless it said otherwise.
fn token_error(value: &JsValue) -> KalamError {
    rejection_error(value, codes::AUTH_FAILED, "the token provider failed: ")
}

struct Decoder {
    schema: Vec<SchemaField>,
    decoder: RowDecoder,
}

/// The shell's side of one subscription: its FILE-cell table and its row decoder.
struct SubShell {
    id: String,
    /// `(namespace, table)`, for FILE cells.
    table: Option<(String, String)>,
    decoder: Option<Decoder>,
}

/// Subscription id → [`SubShell`], a Vec searched linearly (issue 15): two
/// `HashMap<String, _>` were two copies of hashbrown's code in the .wasm, and a client has
/// few subscriptions, looked up once per drained output, not per row.
#[derive(Default)]
struct SubShells(Vec<SubShell>);

impl SubShells {
    fn get(&self, id: &str) -> Option<&SubShell> {
        self.0.iter().find(|s| s.id == id)
    }

    /// The entry of `id`, created empty if missing.
    fn entry(&mut self, id: &str) -> &mut SubShell {
        let i = match self.0.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.0.push(SubShell {
                    id: id.to_string(),
                    table: None,
                    decoder: None,
                });
                self.0.len() - 1
            }
        };
        &mut self.0[i]
    }

    fn remove(&mut self, id: &str) {
        self.0.retain(|s| s.id != id);
    }

    fn table(&self, id: &str) -> Option<(String, String)> {
        self.get(id).and_then(|s| s.table.clone())
    }
}

struct Inner {
    core: LiveCore,
    ctor: Function,
    on_output: Function,
    get_token: Function,
    socket: Option<(u64, Socket)>,
    timers: [Option<Timeout>; TimerId::ALL.len()],
    subs: SubShells,
    /// A token request to run once the borrow is released (`forceRefresh`).
    token_request: Option<bool>,
    /// `runSql(sql) => Promise<string>` for self-verification checksums (HTTP SQL).
    run_sql: Option<Function>,
    /// Checksum queries to start once the borrow is released: `(subscription, request, sql)`.
    verify_requests: Vec<(String, u64, String)>,
    /// The socket close of the current pump (`code`, `reason`), ours or the server's: sent
    /// with the connection error it causes as `closeCode`/`closeReason`, so JS reads the
    /// code from a field instead of the message.
    last_close: Option<(u16, String)>,
    me: Weak<RefCell<Inner>>,
}

/// Runs one input, executes the resulting commands and delivers the JS payload.
fn pump(rc: &Rc<RefCell<Inner>>, input: impl FnOnce(&mut LiveCore, u64)) {
    let Ok(mut inner) = rc.try_borrow_mut() else {
        return; // cannot happen: no JS runs while borrowed (see the module docs)
    };
    input(&mut inner.core, now_ms());
    drop(inner);
    deliver(rc);
}

/// The rest of [`pump`], not generic over its input: one copy in the .wasm instead of one
/// per caller (about 1 KB each).
#[inline(never)]
fn deliver(rc: &Rc<RefCell<Inner>>) {
    let (payload, token_request, verify_requests) = {
        let Ok(mut inner) = rc.try_borrow_mut() else {
            return;
        };
        let payload = inner.run();
        inner.last_close = None;
        let verify = std::mem::take(&mut inner.verify_requests);
        (payload, inner.token_request.take(), verify)
    };
    if let Some(force) = token_request {
        request_token(rc, force);
    }
    for (id, request, sql) in verify_requests {
        run_verify(rc, id, request, sql);
    }
    if let Some(payload) = payload {
        let cb = rc.borrow().on_output.clone();
        if let Err(e) = cb.call1(&JsValue::NULL, &JsValue::from_str(&payload)) {
            web_sys::console::error_2(&"kalam-wasm: a live callback threw".into(), &e);
        }
    }
}

fn request_token(rc: &Rc<RefCell<Inner>>, force: bool) {
    let get_token = rc.borrow().get_token.clone();
    // A plain value counts as resolved (`when_settled` takes it as `Promise.resolve` does).
    let promise = match get_token.call1(&JsValue::NULL, &JsValue::from_bool(force)) {
        Ok(value) => value,
        Err(e) => {
            let error = token_error(&e);
            pump(rc, move |core, now| core.token_failed(now, error));
            return;
        }
    };
    let weak = Rc::downgrade(rc);
    when_settled(
        &promise,
        Box::new(move |result| {
            let Some(rc) = weak.upgrade() else { return };
            pump(&rc, move |core, now| match result {
                Ok(v) => match v.as_string() {
                    Some(token) if !token.is_empty() => core.token_ready(now, token),
                    _ => core.token_failed(
                        now,
                        KalamError::new(
                            codes::AUTH_FAILED,
                            "the token provider resolved without a token string",
                        ),
                    ),
                },
                Err(e) => core.token_failed(now, token_error(&e)),
            });
        }),
    );
}

/// A rejected `runSql`: retryable `NETWORK` unless it said otherwise.
fn sql_error(value: &JsValue) -> KalamError {
    rejection_error(value, codes::NETWORK, "")
}

/// Runs one checksum query through the client's HTTP SQL path and feeds the answer back.
fn run_verify(rc: &Rc<RefCell<Inner>>, id: String, request: u64, sql: String) {
    let Some(run_sql) = rc.borrow().run_sql.clone() else {
        return;
    };
    let promise = match run_sql.call1(&JsValue::NULL, &JsValue::from_str(&sql)) {
        Ok(value) => value,
        Err(e) => {
            let error = sql_error(&e);
            pump(rc, move |core, now| {
                core.verify_result(now, &id, request, Err(error))
            });
            return;
        }
    };
    let weak = Rc::downgrade(rc);
    when_settled(
        &promise,
        Box::new(move |result| {
            let Some(rc) = weak.upgrade() else { return };
            let figures = match result {
                Ok(v) => {
                    let text = v
                        .as_string()
                        .or_else(|| js_sys::JSON::stringify(&v).ok().and_then(|t| t.as_string()));
                    match text {
                        Some(text) => verify::parse_checksum(&text),
                        None => Err(KalamError::protocol(
                            "runSql resolved without a JSON answer",
                        )),
                    }
                }
                Err(e) => Err(sql_error(&e)),
            };
            pump(&rc, move |core, now| {
                core.verify_result(now, &id, request, figures)
            });
        }),
    );
}

impl Inner {
    /// Drains the core until quiet, executing commands; returns the JSON array for JS.
    fn run(&mut self) -> Option<String> {
        let mut items = Items::default();
        loop {
            let outputs = self.core.drain_outputs();
            if outputs.is_empty() {
                break;
            }
            for output in outputs {
                self.execute(output, &mut items);
            }
        }
        items.finish()
    }

    fn execute(&mut self, output: Output, items: &mut Items) {
        match output {
            Output::OpenSocket { socket, url } => {
                self.socket = None; // detaches and closes any previous one
                let weak = self.me.clone();
                let handler = move |event: SocketEvent| {
                    let Some(rc) = weak.upgrade() else { return };
                    let closed = matches!(event, SocketEvent::Closed { .. });
                    if let SocketEvent::Closed { code, reason } = &event {
                        if let Ok(mut inner) = rc.try_borrow_mut() {
                            inner.last_close = Some((*code, reason.clone()));
                        }
                    }
                    pump(&rc, |core, now| match event {
                        SocketEvent::Open => core.socket_opened(now, socket),
                        SocketEvent::Text(text) => core.socket_text(now, socket, &text),
                        SocketEvent::Binary(bytes) => core.socket_binary(now, socket, &bytes),
                        SocketEvent::Closed { code, reason } => {
                            core.socket_closed(now, socket, code, &reason)
                        }
                    });
                    // A closed socket is gone: drop its handlers (wasm-bindgen defers freeing
                    // the one that is running).
                    if closed {
                        if let Ok(mut inner) = rc.try_borrow_mut() {
                            if matches!(&inner.socket, Some((s, _)) if *s == socket) {
                                inner.socket = None;
                            }
                        }
                    }
                };
                match Socket::open(&self.ctor, &url, handler) {
                    Ok(s) => self.socket = Some((socket, s)),
                    Err(message) => {
                        let reason = format!("cannot open {url}: {message}");
                        self.core.socket_closed(now_ms(), socket, 1006, &reason);
                        self.last_close = Some((1006, reason));
                    }
                }
            }
            Output::SendText { socket, text } => {
                if let Some((s, ws)) = &self.socket {
                    if *s == socket {
                        let _ = ws.send(&text); // a dead socket reports its close event
                    }
                }
            }
            Output::CloseSocket {
                socket,
                code,
                reason,
            } => {
                if matches!(&self.socket, Some((s, _)) if *s == socket) {
                    if let Some((_, ws)) = self.socket.take() {
                        ws.close(code, &reason);
                    }
                }
                self.last_close = Some((code, reason));
            }
            Output::RequestToken => {
                let force = matches!(self.core.state(), ConnectionState::NeedsAuth);
                self.token_request = Some(self.token_request.unwrap_or(false) || force);
            }
            Output::SetTimer { id, delay_ms } => {
                let weak = self.me.clone();
                let delay = u32::try_from(delay_ms).unwrap_or(u32::MAX);
                self.timers[id.as_u32() as usize] = Some(Timeout::new(delay, move || {
                    if let Some(rc) = weak.upgrade() {
                        pump(&rc, |core, now| core.timer_fired(now, id));
                    }
                }));
            }
            Output::CancelTimer { id } => self.timers[id.as_u32() as usize] = None,
            Output::Rows {
                subscription_id,
                delta,
            } => {
                let table = self.subs.table(&subscription_id);
                let decoder = self.decoder(&subscription_id);
                let table = table.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
                items.rows(&subscription_id, delta, decoder, table);
            }
            Output::Event {
                subscription_id,
                event,
            } => {
                let table = self.subs.table(&subscription_id);
                let decoder = self.decoder(&subscription_id);
                let table = table.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
                items.event(&subscription_id, event, decoder, table);
            }
            Output::Checkpoint {
                subscription_id,
                last_seq_id,
            } => items.checkpoint(&subscription_id, last_seq_id),
            Output::SubscriptionError {
                subscription_id,
                error,
                fatal,
            } => {
                if fatal {
                    self.subs.remove(&subscription_id);
                }
                items.sub_error(&subscription_id, &error, fatal);
            }
            Output::StateChanged(state) => items.state(&state),
            Output::ConnectionError(error) => items.error(&error, self.last_close.take()),
            Output::Verify {
                subscription_id,
                request,
                sql,
            } => self.verify_requests.push((subscription_id, request, sql)),
        }
    }

    /// The row decoder of a subscription, rebuilt when its ack schema changed.
    fn decoder(&mut self, id: &str) -> Option<&RowDecoder> {
        let schema = self.core.subscription_schema(id)?;
        let sub = self.subs.entry(id);
        let stale = sub.decoder.as_ref().is_none_or(|d| d.schema != schema);
        if stale {
            let table = sub.table.clone();
            sub.decoder = Some(Decoder {
                schema: schema.to_vec(),
                decoder: RowDecoder::new(schema, table),
            });
        }
        sub.decoder.as_ref().map(|d| &d.decoder)
    }
}

// ----- page hooks ------------------------------------------------------------------------

fn has_listener_api(target: &JsValue) -> bool {
    !target.is_undefined()
        && !target.is_null()
        && Reflect::get(target, &"addEventListener".into()).is_ok_and(|f| f.is_function())
}

fn hook(
    target: &JsValue,
    event: &'static str,
    weak: Weak<RefCell<Inner>>,
    hint: fn(&mut LiveCore, u64),
    only_if_visible: Option<JsValue>,
) -> Option<Listener> {
    if !has_listener_api(target) {
        return None;
    }
    // Windows, worker scopes and documents are EventTargets (checked just above).
    let target: &web_sys::EventTarget = target.unchecked_ref();
    Some(Listener::new(target, event, move |_event| {
        if let Some(doc) = &only_if_visible {
            let state = Reflect::get(doc, &"visibilityState".into()).ok();
            if state.and_then(|s| s.as_string()).as_deref() != Some("visible") {
                return;
            }
        }
        if let Some(rc) = weak.upgrade() {
            pump(&rc, hint);
        }
    }))
}

fn page_hooks(weak: &Weak<RefCell<Inner>>) -> Vec<Listener> {
    let global: JsValue = js_sys::global().into();
    let mut hooks = Vec::new();
    // `online`: windows and workers.
    hooks.extend(hook(
        &global,
        "online",
        weak.clone(),
        LiveCore::online,
        None,
    ));
    // `pageshow`: windows only (bfcache restores).
    if Reflect::has(&global, &"onpageshow".into()).unwrap_or(false) {
        hooks.extend(hook(
            &global,
            "pageshow",
            weak.clone(),
            LiveCore::pageshow,
            None,
        ));
    }
    // `visibilitychange` to visible: documents only.
    let document = Reflect::get(&global, &"document".into()).unwrap_or(JsValue::UNDEFINED);
    if has_listener_api(&document) {
        hooks.extend(hook(
            &document,
            "visibilitychange",
            weak.clone(),
            LiveCore::visible,
            Some(document.clone()),
        ));
    }
    hooks
}

fn random_seed() -> u64 {
    let hi = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let lo = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (hi << 32) | lo
}

// ----- the exported object ---------------------------------------------------------------

/// The live-query engine of one client: one WebSocket multiplexing every subscription.
#[wasm_bindgen]
pub struct LiveClient {
    inner: Rc<RefCell<Inner>>,
    hooks: RefCell<Vec<Listener>>,
}

#[wasm_bindgen]
impl LiveClient {
    /// `options_json`: `{ url (http(s) base), pingIntervalMs?, connectTimeoutMs?,
    /// disableCompression?, batchSize?, reconnect?: { enabled?, initialDelayMs?, maxDelayMs?,
    /// maxAttempts? }, liveness?: { idleMs?, timeoutMs? }, snapshotTimeoutMs?, verify?:
    /// boolean | { enabled?, intervalMs?, afterBurst? } }`. `web_socket`: a WebSocket
    /// constructor (`undefined`: the global `WebSocket`). `get_token(forceRefresh) =>
    /// Promise<string>` is called before each connection attempt (`true` after the server
    /// refused the previous token). `run_sql(sql) => Promise<string>` runs the
    /// self-verification checksums and the row count of one-batch snapshots (a server's row
    /// cap) over HTTP as the same user (the SQL answer's JSON); without it (`undefined`)
    /// subscriptions neither verify themselves nor detect a row cap.
    ///
    /// `on_output(json)` receives, once per drained burst, the JSON array of items defined
    /// in [`crate::core::live::payload`].
    #[wasm_bindgen(constructor)]
    pub fn new(
        options_json: &str,
        get_token: Function,
        on_output: Function,
        web_socket: JsValue,
        run_sql: JsValue,
    ) -> Result<LiveClient, JsValue> {
        let mut config = config_from_json(options_json).map_err(to_js_error)?;
        let run_sql: Option<Function> = run_sql.dyn_into().ok();
        if run_sql.is_none() {
            config.verify.enabled = false;
            config.check_row_cap = false;
        }
        let ctor = if web_socket.is_undefined() || web_socket.is_null() {
            Reflect::get(&js_sys::global(), &"WebSocket".into()).unwrap_or(JsValue::UNDEFINED)
        } else {
            web_socket
        };
        let ctor: Function = ctor.dyn_into().map_err(|_| {
            to_js_error(KalamError::invalid_argument(
                "no WebSocket implementation: this runtime has no global WebSocket; pass one \
                 (e.g. the `ws` package) as the WebSocket option",
            ))
        })?;
        let inner = Rc::new_cyclic(|me| {
            RefCell::new(Inner {
                core: LiveCore::new(config, random_seed()),
                ctor,
                on_output,
                get_token,
                socket: None,
                timers: Default::default(),
                subs: SubShells::default(),
                token_request: None,
                run_sql,
                verify_requests: Vec::new(),
                last_close: None,
                me: me.clone(),
            })
        });
        let hooks = page_hooks(&Rc::downgrade(&inner));
        Ok(LiveClient {
            inner,
            hooks: RefCell::new(hooks),
        })
    }

    /// Every call but the constructor, in one export (each export costs a shim in the .wasm
    /// and a wrapper in the JS glue): `op` with `args`, a JS array. Ops and their answers
    /// (`undefined` when none is listed):
    /// - `subscribe` [sql, options_json, events] → registers a subscription (connecting
    ///   lazily) and returns its id; `options_json`: `{ batchSize?, lastRows?, from? (decimal
    ///   string), keyColumns?, limit?, verify? }`, `events`: `true` for raw events instead of
    ///   materialized rows. Throws a KalamError object (`INVALID_ARGUMENT`, `CLOSED`);
    /// - `unsubscribe` [id] → whether it was known: removes a subscription locally (always) and
    ///   tells the server when connected;
    /// - `connect`; `disconnect` (closes the socket, keeping subscriptions for a later
    ///   `connect`); `shutdown` (forgets everything, closes the socket, removes the page hooks;
    ///   later calls fail);
    /// - `tokenReady` [token]: a token supplied unsolicited (e.g. after a login), used for the
    ///   next connection;
    /// - `online`, `visible`: page-lifecycle hints (also hooked automatically where the events
    ///   exist);
    /// - `isConnected` → a boolean;
    /// - `subscriptions` → JSON `[{id, sql, mode, last_seq_id (string|null), live}]`;
    /// - `schema` [id] → the JSON schema of a subscription's latest ack (`[]` before it,
    ///   `null` if unknown).
    pub fn call(&self, op: &str, args: Array) -> Result<JsValue, JsValue> {
        let text = |i: u32| args.get(i).as_string().unwrap_or_default();
        let hint: fn(&mut LiveCore, u64) = match op {
            "subscribe" => return self.subscribe(&text(0), &text(1), args.get(2).is_truthy()),
            "unsubscribe" => return Ok(JsValue::from(self.unsubscribe(&text(0)))),
            "isConnected" => return Ok(JsValue::from(self.inner.borrow().core.is_connected())),
            "subscriptions" => return Ok(JsValue::from(self.subscriptions())),
            "schema" => {
                let inner = self.inner.borrow();
                return Ok(JsValue::from(schema_json(
                    inner.core.subscription_schema(&text(0)),
                )));
            }
            "tokenReady" => {
                let token = text(0);
                pump(&self.inner, move |core, now| core.token_ready(now, token));
                return Ok(JsValue::UNDEFINED);
            }
            "shutdown" => {
                self.shutdown();
                return Ok(JsValue::UNDEFINED);
            }
            "connect" => LiveCore::connect,
            "disconnect" => LiveCore::disconnect,
            "online" => LiveCore::online,
            "visible" => LiveCore::visible,
            _ => {
                return Err(to_js_error(KalamError::invalid_argument(
                    "unknown live call",
                )))
            }
        };
        pump(&self.inner, hint);
        Ok(JsValue::UNDEFINED)
    }
}

impl LiveClient {
    fn subscribe(&self, sql: &str, options_json: &str, events: bool) -> Result<JsValue, JsValue> {
        let options = options_from_json(options_json).map_err(to_js_error)?;
        let mode = if events {
            SubscriptionMode::Events
        } else {
            SubscriptionMode::Materialized
        };
        let mut result = Err(JsValue::UNDEFINED);
        let table = live_sql_table(sql);
        pump(&self.inner, |core, now| {
            result = core.subscribe(now, sql, options, mode).map_err(to_js_error);
        });
        let id = result?;
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.subs.entry(&id).table = table;
        }
        Ok(JsValue::from(id))
    }

    fn unsubscribe(&self, id: &str) -> bool {
        let mut found = false;
        pump(&self.inner, |core, now| found = core.unsubscribe(now, id));
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.subs.remove(id);
        }
        found
    }

    fn shutdown(&self) {
        pump(&self.inner, LiveCore::shutdown);
        self.hooks.borrow_mut().clear();
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.socket = None;
            inner.timers = Default::default();
            inner.subs.0.clear();
        }
    }

    fn subscriptions(&self) -> String {
        subscriptions_json(&self.inner.borrow().core.subscriptions())
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        self.hooks.get_mut().clear();
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.socket = None;
            inner.timers = Default::default();
        }
    }
}
