//! `GET /v1/ws`: authentication, subscriptions, paging, heartbeat, compression and faults (§4).

use crate::db::Actor;
use crate::live::{analyse, snapshot, ws_error, LiveQuery, Out, Outbox, Registry, Sub, SubState};
use crate::App;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Inbound messages; serde's messages become the 1011 close reasons (§4.4).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMsg {
    Authenticate {
        #[allow(dead_code)]
        method: AuthMethod,
        token: String,
        protocol: Protocol,
    },
    Subscribe {
        subscription: SubReq,
    },
    NextBatch {
        subscription_id: String,
        last_seq_id: Option<i64>,
    },
    Unsubscribe {
        subscription_id: String,
    },
    Ping,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthMethod {
    Jwt,
}

#[derive(Deserialize, Clone)]
struct Protocol {
    serialization: Serialization,
    compression: Compression,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Serialization {
    Json,
    Msgpack,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Compression {
    Gzip,
    None,
}

#[derive(Deserialize)]
struct SubReq {
    id: String,
    sql: String,
    options: Option<SubOptions>,
}

#[derive(Deserialize)]
struct SubOptions {
    batch_size: Option<usize>,
    last_rows: Option<usize>,
    #[serde(alias = "from_seq_id")]
    from: Option<i64>,
}

/// The real server's threshold for gzip-compressing a payload (§4.3).
pub const GZIP_THRESHOLD: usize = 512;
/// actix-ws default inbound frame limit (§4.3).
pub const MAX_FRAME: usize = 64 << 10;

pub async fn ws_handler(
    State(app): State<Arc<App>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let compress = !q
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv.eq_ignore_ascii_case("compress=false"));
    let header_auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| app.validate_access(t).map_err(|_| ()));
    ws.max_frame_size(MAX_FRAME)
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| run(app, socket, compress, header_auth))
}

/// The real server's per-connection notification queue (§4.12).
pub const DEFAULT_OUTBOUND_QUEUE: usize = 128;

/// What the faulted `next_batch` does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchFault {
    /// Answer `BATCH_FETCH_FAILED`.
    Error,
    /// Never answer.
    Ignore,
}

/// WebSocket fault switches (the fault route and [`crate::Handle`]).
pub struct WsFaults {
    /// Notification queue size per connection; 0 = unbounded.
    pub queue_cap: Arc<AtomicUsize>,
    /// Every connection is frozen: nothing is sent or read, nothing closes.
    black_hole: watch::Sender<bool>,
    /// The Nth `next_batch` (for a subscription that exists) from now on is faulted.
    batch_fault: Mutex<Option<(u32, BatchFault)>>,
}

impl WsFaults {
    pub fn new(queue: usize) -> WsFaults {
        WsFaults {
            queue_cap: Arc::new(AtomicUsize::new(queue)),
            black_hole: watch::channel(false).0,
            batch_fault: Mutex::new(None),
        }
    }

    /// Clears the switches a restart clears (the queue size is configuration and stays).
    pub fn clear(&self) {
        self.black_hole.send_replace(false);
        *self.batch_fault.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Counts one `next_batch`; the fault to apply when it is the Nth.
    fn take_batch_fault(&self) -> Option<BatchFault> {
        let mut g = self.batch_fault.lock().unwrap_or_else(|e| e.into_inner());
        let (left, mode) = (*g)?;
        if left <= 1 {
            *g = None;
            Some(mode)
        } else {
            *g = Some((left - 1, mode));
            None
        }
    }
}

impl crate::Handle {
    /// On: every WebSocket (open or new) is frozen: inbound frames are ignored, outbound
    /// frames held, the heartbeat is not checked and nothing closes (a dead network path).
    /// Off: connections that lived through the hole are cut abruptly (their streams lost
    /// data); new ones work.
    pub fn black_hole(&self, on: bool) {
        self.app.faults.ws.black_hole.send_replace(on);
    }

    /// The `n`th `next_batch` from now (1 = the next) for a subscription that exists is
    /// answered with `BATCH_FETCH_FAILED` (`Error`) or never answered (`Ignore`).
    pub fn fail_next_batch(&self, n: u32, mode: BatchFault) {
        *self
            .app
            .faults
            .ws
            .batch_fault
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((n.max(1), mode));
    }

    /// Sends `{"type":"error",...}` for every subscription with this id (any connection);
    /// `drop`: the server forgets the subscription too. Returns how many got it.
    pub fn inject_error(
        &self,
        subscription_id: &str,
        code: &str,
        message: &str,
        drop: bool,
    ) -> usize {
        let mut live = self.app.live.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<(u64, String)> = live
            .subs
            .keys()
            .filter(|(_, id)| id == subscription_id)
            .cloned()
            .collect();
        for k in &keys {
            if let Some(sub) = live.subs.get(k) {
                sub.out
                    .send(Out::Msg(ws_error(subscription_id, code, message)));
            }
            if drop {
                live.subs.remove(k);
            }
        }
        keys.len()
    }

    /// The per-connection notification queue size for new and open connections (0 =
    /// unbounded).
    pub fn set_ws_outbound_queue(&self, n: usize) {
        self.app.faults.ws.queue_cap.store(n, Ordering::SeqCst);
    }
}

/// Connection control: 0 = run, [`KILL`] = drop abruptly, [`SHUTDOWN`] = close 1001.
pub const KILL: u8 = 1;
pub const SHUTDOWN: u8 = 2;

/// Resolves with the control value once it is at least `min`; a dropped sender never fires.
async fn signalled(rx: &mut watch::Receiver<u8>, min: u8) -> u8 {
    loop {
        let v = *rx.borrow_and_update();
        if v >= min {
            return v;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn killed(rx: &mut watch::Receiver<u8>) {
    loop {
        if signalled(rx, KILL).await == KILL {
            return;
        }
        // SHUTDOWN is handled by the reader, which queues a close frame.
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn encode_frame(v: &Value, compress: bool, plain: bool) -> Message {
    let text = v.to_string();
    if compress && !plain && text.len() >= GZIP_THRESHOLD {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if enc.write_all(text.as_bytes()).is_ok() {
            if let Ok(gz) = enc.finish() {
                if gz.len() < text.len() {
                    return Message::Binary(gz.into());
                }
            }
        }
    }
    Message::Text(Utf8Bytes::from(text))
}

async fn writer(
    app: Arc<App>,
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    outbox: Outbox,
    mut kill: watch::Receiver<u8>,
    compress: bool,
) {
    let mut stall = app.faults.stall.subscribe();
    let mut hole = app.faults.ws.black_hole.subscribe();
    loop {
        let out = tokio::select! {
            _ = killed(&mut kill) => return,
            o = rx.recv() => match o { Some(o) => o, None => return },
        };
        outbox.taken();
        // Fault switches apply to every outbound frame.
        if *hole.borrow_and_update() {
            while *hole.borrow_and_update() {
                tokio::select! {
                    _ = killed(&mut kill) => return,
                    _ = hole.changed() => {}
                }
            }
            return; // the reader cuts a connection that lived through a black hole
        }
        while *stall.borrow_and_update() {
            tokio::select! {
                _ = killed(&mut kill) => return,
                _ = stall.changed() => {}
            }
        }
        let delay = app.faults.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::select! {
                _ = killed(&mut kill) => return,
                _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
            }
        }
        let res = match out {
            Out::Msg(v) => {
                let plain = matches!(
                    v.get("type").and_then(|t| t.as_str()),
                    Some("auth_success" | "auth_error")
                );
                sink.send(encode_frame(&v, compress, plain)).await
            }
            Out::Close(code, mut reason) => {
                // RFC 6455 caps a close reason at 123 bytes; long serde messages are cut.
                while reason.len() > 123 {
                    reason.pop();
                }
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: Utf8Bytes::from(reason),
                    })))
                    .await;
                let _ = sink.flush().await;
                return;
            }
        };
        if res.is_err() {
            return;
        }
    }
}

struct Conn {
    id: u64,
    app: Arc<App>,
    out: Outbox,
    actor: Option<Actor>,
    closing: bool,
    window: (Instant, u32),
}

impl Conn {
    fn send(&self, v: Value) {
        self.out.send(Out::Msg(v));
    }
    fn close(&mut self, code: u16, reason: impl Into<String>) {
        self.out.send(Out::Close(code, reason.into()));
        self.closing = true;
    }
}

async fn run(
    app: Arc<App>,
    socket: WebSocket,
    compress: bool,
    header_auth: Option<Result<Actor, ()>>,
) {
    let id = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let (kill_tx, kill_rx) = watch::channel(0u8);
    app.conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, kill_tx);
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let outbox = Outbox::new(tx, app.faults.ws.queue_cap.clone());
    let wh = tokio::spawn(writer(
        app.clone(),
        sink,
        rx,
        outbox.clone(),
        kill_rx.clone(),
        compress,
    ));
    let mut c = Conn {
        id,
        app: app.clone(),
        out: outbox,
        actor: None,
        closing: false,
        window: (Instant::now(), 0),
    };
    match header_auth {
        Some(Ok(a)) => {
            c.send(json!({"type": "auth_success", "user": a.user, "role": a.role.as_str(), "protocol": {"serialization": "json", "compression": "gzip"}}));
            c.actor = Some(a);
        }
        Some(Err(())) => {
            c.send(json!({"type": "auth_error", "message": "Invalid credentials"}));
            c.close(1008, "Authentication failed");
        }
        None => {}
    }
    let opened = Instant::now();
    let mut last_in = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut kill = kill_rx;
    let mut abrupt = false;
    let mut hole = app.faults.ws.black_hole.subscribe();
    let mut saw_hole = false;
    while !c.closing {
        let frozen = *hole.borrow_and_update();
        saw_hole |= frozen;
        if saw_hole && !frozen {
            abrupt = true; // lived through a black hole: cut like the TCP proxy does
            break;
        }
        tokio::select! {
            _ = hole.changed() => continue,
            v = signalled(&mut kill, KILL) => {
                if v == SHUTDOWN {
                    c.close(1001, "Server shutting down");
                    continue;
                }
                abrupt = true;
                break;
            }
            m = stream.next() => {
                let Some(Ok(m)) = m else { abrupt = true; break };
                if frozen && !matches!(m, Message::Close(_)) {
                    continue; // swallowed by the black hole
                }
                last_in = Instant::now();
                match m {
                    Message::Text(t) => c.on_text(t.as_str()),
                    Message::Binary(_) => c.send(ws_error("protocol", "UNSUPPORTED_DATA", "Binary not supported")),
                    Message::Close(frame) => {
                        // Answer the closing handshake (RFC 6455 §5.5.1) through the writer,
                        // which then ends and drops its half: WHATWG WebSockets (Node 22,
                        // Deno) keep the TCP connection, and the process, alive until the
                        // server has answered and closed.
                        c.close(frame.map_or(1000, |f| f.code), "");
                        break;
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                if frozen {
                    continue;
                }
                let hb = Duration::from_secs(app.cfg.heartbeat_timeout_secs);
                if last_in.elapsed() > hb {
                    c.close(1000, "Heartbeat timeout");
                } else if c.actor.is_none() && opened.elapsed() > app.cfg.auth_timeout {
                    c.send(json!({"type": "auth_error", "message": format!("Authentication timeout - no auth message received within {} seconds", app.cfg.auth_timeout.as_secs())}));
                    c.close(1008, "Authentication timeout");
                }
            }
        }
    }
    app.live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove_conn(id);
    app.conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    if abrupt {
        wh.abort();
    } else {
        // A writer that does not finish in time (stalled frames) is cut: a dropped JoinHandle
        // would leave it running with the socket open.
        let writer = wh.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), wh)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
    // Dropping the stream (and the writer's sink) closes the TCP connection.
}

impl Conn {
    fn on_text(&mut self, text: &str) {
        let now = Instant::now();
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        if self.window.1 > self.app.cfg.max_messages_per_sec {
            self.send(ws_error(
                "rate_limit",
                "RATE_LIMIT_EXCEEDED",
                "Too many messages, slow down",
            ));
            return;
        }
        let msg: ClientMsg = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                self.close(1011, format!("Invalid message: {e}"));
                return;
            }
        };
        match msg {
            ClientMsg::Authenticate {
                token, protocol, ..
            } => {
                if let Some(a) = &self.actor {
                    self.send(json!({"type": "auth_success", "user": a.user, "role": a.role.as_str(), "protocol": proto_json(&protocol)}));
                    return;
                }
                if protocol.serialization == Serialization::Msgpack {
                    self.send(json!({"type": "auth_error", "message": "msgpack serialization is not supported by kalam-testserver"}));
                    self.close(1008, "Authentication failed");
                    return;
                }
                match self.app.validate_access(&token) {
                    Ok(a) => {
                        self.send(json!({"type": "auth_success", "user": a.user, "role": a.role.as_str(), "protocol": proto_json(&protocol)}));
                        self.actor = Some(a);
                    }
                    Err(_) => {
                        self.send(json!({"type": "auth_error", "message": "Invalid credentials"}));
                        self.close(1008, "Authentication failed");
                    }
                }
            }
            ClientMsg::Ping => {}
            ClientMsg::Subscribe { subscription } => self.subscribe(subscription),
            ClientMsg::NextBatch {
                subscription_id,
                last_seq_id,
            } => {
                if self.actor.is_some() {
                    self.next_batch(&subscription_id, last_seq_id);
                }
            }
            ClientMsg::Unsubscribe { subscription_id } => {
                if self.actor.is_some() {
                    self.app
                        .live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .subs
                        .remove(&(self.id, subscription_id));
                }
            }
        }
    }

    fn subscribe(&mut self, req: SubReq) {
        let Some(actor) = self.actor.clone() else {
            self.send(ws_error(
                "subscribe",
                "AUTH_REQUIRED",
                "Authentication required before subscribing",
            ));
            return;
        };
        if req.id.trim().is_empty() {
            self.send(ws_error(
                "invalid_subscription",
                "INVALID_SUBSCRIPTION_ID",
                "Subscription ID cannot be empty",
            ));
            return;
        }
        let app = self.app.clone();
        let mut db = app.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut live = app.live.lock().unwrap_or_else(|e| e.into_inner());
        let replacing = live.subs.contains_key(&(self.id, req.id.clone()));
        if !replacing && live.user_count(&actor.user) >= app.max_subs.load(Ordering::Relaxed) {
            self.send(ws_error(
                &req.id,
                "SUBSCRIPTION_LIMIT_EXCEEDED",
                "Maximum subscriptions reached",
            ));
            return;
        }
        if !replacing && live.conn_count(self.id) >= 100 {
            self.send(ws_error(
                &req.id,
                "UNSUPPORTED",
                "Maximum subscriptions per connection reached (100)",
            ));
            return;
        }
        let batch_size = req
            .options
            .as_ref()
            .and_then(|o| o.batch_size)
            .unwrap_or(1000);
        if let Some(o) = &req.options {
            if let (Some(lr), None) = (o.last_rows, o.from) {
                if lr > batch_size {
                    self.send(ws_error(&req.id, "UNSUPPORTED", format!("last_rows ({lr}) cannot exceed batch_size ({batch_size}); paginated last_rows replay is not supported")));
                    return;
                }
            }
        }
        let lq = match analyse(&db, &req.sql, &actor) {
            Ok(l) => l,
            Err((code, msg)) => {
                self.send(ws_error(&req.id, &code, msg));
                return;
            }
        };
        let schema: Vec<Value> = lq
            .schema
            .iter()
            .enumerate()
            .map(|(i, f)| f.to_json(i))
            .collect();
        let boundary = db.seq.current();
        let max = db.limits.max_query_limit;
        let Some(opts) = req.options else {
            self.send(json!({"type": "subscription_ack", "subscription_id": req.id, "total_rows": 0,
                "batch_control": {"batch_num": 0, "has_more": false, "status": "ready", "last_seq_id": null}, "schema": schema}));
            self.register(&mut live, req.id, actor, lq, SubState::Ready);
            return;
        };
        let res = if batch_size == 0 {
            Ok((vec![], false))
        } else if let (Some(n), None) = (opts.last_rows, opts.from) {
            snapshot(&mut db, &lq, &actor, None, boundary, n.min(max), true).map(|r| (r, false))
        } else {
            snapshot(
                &mut db,
                &lq,
                &actor,
                opts.from,
                boundary,
                (batch_size + 1).min(max),
                false,
            )
            .map(|mut r| {
                let more = r.len() > batch_size;
                r.truncate(batch_size);
                (r, more)
            })
        };
        let (rows, has_more) = match res {
            Ok(x) => x,
            Err(e) => {
                self.send(ws_error(
                    &req.id,
                    "SUBSCRIPTION_FAILED",
                    format!("Subscription failed: {}", e.message),
                ));
                return;
            }
        };
        let last = rows.last().map(|(s, _)| *s);
        let bc = json!({"batch_num": 0, "has_more": has_more, "status": if has_more { "loading" } else { "ready" }, "last_seq_id": last});
        self.send(json!({"type": "subscription_ack", "subscription_id": req.id, "total_rows": 0, "batch_control": bc, "schema": schema}));
        let objs: Vec<Value> = rows.into_iter().map(|(_, m)| Value::Object(m)).collect();
        self.send(json!({"type": "initial_data_batch", "subscription_id": req.id, "rows": objs, "batch_control": bc}));
        let state = if has_more {
            SubState::Loading {
                boundary,
                buffer: VecDeque::new(),
                batch_num: 0,
                batch_size,
                from: opts.from,
            }
        } else {
            SubState::Ready
        };
        self.register(&mut live, req.id, actor, lq, state);
    }

    /// Adds subscription `id` of this connection to the registry.
    fn register(
        &self,
        live: &mut Registry,
        id: String,
        actor: Actor,
        lq: LiveQuery,
        state: SubState,
    ) {
        live.subs.insert(
            (self.id, id.clone()),
            Sub {
                conn: self.id,
                id,
                actor,
                lq,
                state,
                out: self.out.clone(),
            },
        );
    }

    fn next_batch(&mut self, sub_id: &str, last: Option<i64>) {
        let app = self.app.clone();
        let mut db = app.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut live = app.live.lock().unwrap_or_else(|e| e.into_inner());
        let max = db.limits.max_query_limit;
        let Some(sub) = live.subs.get_mut(&(self.id, sub_id.to_string())) else {
            // The real server's exact answer: clients use it as an echo (§12.3).
            self.send(ws_error(
                sub_id,
                "BATCH_FETCH_FAILED",
                format!("Not found: Subscription not found: {sub_id}"),
            ));
            return;
        };
        match self.app.faults.ws.take_batch_fault() {
            Some(BatchFault::Error) => {
                self.send(ws_error(
                    sub_id,
                    "BATCH_FETCH_FAILED",
                    "Batch fetch failed: injected fault",
                ));
                return;
            }
            Some(BatchFault::Ignore) => return,
            None => {}
        }
        let SubState::Loading {
            boundary,
            buffer,
            batch_num,
            batch_size,
            from,
        } = &mut sub.state
        else {
            self.send(ws_error(
                sub_id,
                "BATCH_FETCH_FAILED",
                "Subscription has no pending initial data",
            ));
            return;
        };
        let after = last.or(*from);
        let rows = match snapshot(
            &mut db,
            &sub.lq,
            &sub.actor,
            after,
            *boundary,
            (*batch_size + 1).min(max),
            false,
        ) {
            Ok(r) => r,
            Err(e) => {
                self.send(ws_error(
                    sub_id,
                    "BATCH_FETCH_FAILED",
                    format!("Batch fetch failed: {}", e.message),
                ));
                return;
            }
        };
        let mut rows = rows;
        let has_more = rows.len() > *batch_size;
        rows.truncate(*batch_size);
        *batch_num += 1;
        let bc = json!({"batch_num": *batch_num, "has_more": has_more, "status": if has_more { "loading_batch" } else { "ready" }, "last_seq_id": rows.last().map(|(s, _)| *s)});
        let objs: Vec<Value> = rows.into_iter().map(|(_, m)| Value::Object(m)).collect();
        sub.out.send(Out::Msg(json!({"type": "initial_data_batch", "subscription_id": sub_id, "rows": objs, "batch_control": bc})));
        if !has_more {
            // Changes captured while loading follow the snapshot, in `_seq` order.
            let mut buf: Vec<(i64, Value)> = buffer.drain(..).collect();
            buf.sort_by_key(|(s, _)| *s);
            for (_, m) in buf {
                sub.out.notify(m);
            }
            sub.state = SubState::Ready;
        }
    }
}

fn proto_json(p: &Protocol) -> Value {
    json!({
        "serialization": match p.serialization { Serialization::Json => "json", Serialization::Msgpack => "msgpack" },
        "compression": match p.compression { Compression::Gzip => "gzip", Compression::None => "none" },
    })
}
