//! kalam-testserver: a KalamDB-protocol-faithful server for tests and the demo.
//!
//! Start it in-process with [`TestServer::start`], or run the `kalam-testserver` binary.

pub mod db;
mod http;
pub mod live;
pub mod sqltext;
pub mod topics;
pub mod types;
mod ws;

pub use ws::BatchFault;

use crate::db::{Actor, Db, Limits};
use crate::types::Role;
use axum::serve::ListenerExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Server configuration; `Default` matches the real server's defaults on loopback.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    pub static_dir: Option<PathBuf>,
    /// Root password (the binary reads `KALAMDB_ROOT_PASSWORD`); None means setup required.
    pub root_password: Option<String>,
    pub access_token_ttl: Duration,
    /// Refresh lifetime; None means 7 × the access lifetime, as the real server.
    pub refresh_token_ttl: Option<Duration>,
    /// `exp` leeway; None means min(60 s, access TTL / 10) so short test TTLs expire promptly.
    pub jwt_leeway: Option<Duration>,
    pub max_subscriptions_per_user: usize,
    pub default_query_limit: usize,
    pub max_query_limit: usize,
    pub heartbeat_timeout_secs: u64,
    pub auth_timeout: Duration,
    pub max_messages_per_sec: u32,
    pub topic_visibility_timeout: Duration,
    /// Change notifications queued per WebSocket before the rest are dropped silently, as
    /// on the real server (128, §4.6.7); 0 = unbounded.
    pub ws_outbound_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            static_dir: None,
            root_password: None,
            access_token_ttl: Duration::from_secs(24 * 3600),
            refresh_token_ttl: None,
            jwt_leeway: None,
            max_subscriptions_per_user: 10,
            default_query_limit: 50,
            max_query_limit: 1000,
            heartbeat_timeout_secs: 10,
            auth_timeout: Duration::from_secs(3),
            max_messages_per_sec: 50,
            topic_visibility_timeout: Duration::from_secs(60),
            ws_outbound_queue: ws::DEFAULT_OUTBOUND_QUEUE,
        }
    }
}

impl Config {
    pub fn leeway(&self) -> Duration {
        self.jwt_leeway
            .unwrap_or_else(|| (self.access_token_ttl / 10).min(Duration::from_secs(60)))
    }
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_token_ttl.unwrap_or(self.access_token_ttl * 7)
    }
}

/// Fault switches for client tests.
pub struct Faults {
    refuse_until: Mutex<Option<Instant>>,
    delay_ms: AtomicU64,
    stall: watch::Sender<bool>,
    /// Tokens with `iat` at or before this unix second are TOKEN_EXPIRED (0 = none).
    expired_before: AtomicI64,
    ws: ws::WsFaults,
}

pub struct App {
    pub cfg: Config,
    pub db: Mutex<Db>,
    pub live: Mutex<live::Registry>,
    secret: Vec<u8>,
    pub faults: Faults,
    conns: Mutex<HashMap<u64, watch::Sender<u8>>>,
    next_conn: AtomicU64,
    max_subs: AtomicUsize,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AuthFail {
    Expired,
    Invalid,
}

impl App {
    fn new(cfg: Config) -> Result<App, String> {
        let mut db = Db::open(
            cfg.data_dir.as_deref(),
            Limits {
                default_query_limit: cfg.default_query_limit,
                max_query_limit: cfg.max_query_limit,
            },
        )?;
        db.claims.visibility = cfg.topic_visibility_timeout;
        db.ensure_root(cfg.root_password.as_deref())
            .map_err(|e| e.to_string())?;
        // A per-instance signing key: tokens never outlive the process, like a fresh server.
        let seed = format!(
            "{:?}{}{:p}",
            std::time::SystemTime::now(),
            std::process::id(),
            &db
        );
        let secret = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes()).to_vec();
        let (stall, _) = watch::channel(false);
        let ws_faults = ws::WsFaults::new(cfg.ws_outbound_queue);
        Ok(App {
            max_subs: AtomicUsize::new(cfg.max_subscriptions_per_user),
            cfg,
            db: Mutex::new(db),
            live: Mutex::new(live::Registry::default()),
            secret,
            faults: Faults {
                refuse_until: Mutex::new(None),
                delay_ms: AtomicU64::new(0),
                stall,
                expired_before: AtomicI64::new(0),
                ws: ws_faults,
            },
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        })
    }

    /// Validates an access token the way the real auth extractor does (§3.2).
    pub fn validate_access(&self, token: &str) -> Result<Actor, AuthFail> {
        let claims = http::verify_jwt(&self.secret, token).ok_or(AuthFail::Invalid)?;
        let now = types::now_ms() / 1000;
        let leeway = self.cfg.leeway().as_secs() as i64;
        let exp = claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .ok_or(AuthFail::Invalid)?;
        let iat = claims.get("iat").and_then(|v| v.as_i64()).unwrap_or(0);
        if claims.get("iss").and_then(|v| v.as_str()) != Some("kalamdb") {
            return Err(AuthFail::Invalid);
        }
        if claims.get("token_type").and_then(|v| v.as_str()) != Some("access") {
            return Err(AuthFail::Invalid);
        }
        if iat > now + 60 {
            return Err(AuthFail::Invalid);
        }
        if exp + leeway < now {
            return Err(AuthFail::Expired);
        }
        if iat <= self.faults.expired_before.load(Ordering::SeqCst) {
            return Err(AuthFail::Expired);
        }
        let sub = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or(AuthFail::Invalid)?;
        let role = claims
            .get("role")
            .and_then(|v| v.as_str())
            .and_then(Role::parse)
            .ok_or(AuthFail::Invalid)?;
        let user = self
            .db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .user(sub)
            .ok_or(AuthFail::Invalid)?;
        if user.role != role {
            return Err(AuthFail::Invalid);
        }
        Ok(Actor {
            user: user.id,
            role,
        })
    }

    /// Publishes committed changes to topics and live subscriptions, in commit order.
    pub fn commit(&self, db: &mut Db, events: &[db::ChangeEvent]) {
        if events.is_empty() {
            return;
        }
        topics::publish(db, events);
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .publish(events);
    }

    fn refusing(&self) -> bool {
        let mut g = self
            .faults
            .refuse_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *g {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *g = None;
                false
            }
            None => false,
        }
    }
}

/// Fault switches, usable from Rust tests without HTTP.
#[derive(Clone)]
pub struct Handle {
    app: Arc<App>,
}

impl Handle {
    /// Abruptly closes every WebSocket (no close frame).
    pub fn drop_sockets(&self) {
        self.signal_sockets(ws::KILL);
    }

    fn signal_sockets(&self, v: u8) {
        let conns: Vec<watch::Sender<u8>> = self
            .app
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, v)| v)
            .collect();
        for k in conns {
            let _ = k.send(v);
        }
    }
    /// New WebSocket upgrades and HTTP requests (except the fault route) get 503 for `ms`.
    pub fn refuse_connections(&self, ms: u64) {
        *self
            .app
            .faults
            .refuse_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + Duration::from_millis(ms));
    }
    /// Delays every outbound WebSocket frame by `ms` (0 clears).
    pub fn delay_frames(&self, ms: u64) {
        self.app.faults.delay_ms.store(ms, Ordering::SeqCst);
    }
    /// Holds outbound WebSocket frames until turned off.
    pub fn stall_frames(&self, on: bool) {
        self.app.faults.stall.send_replace(on);
    }
    /// Like a process restart: sockets dropped, claim cursors forgotten; data and users kept.
    pub fn restart(&self) {
        self.drop_sockets();
        *self.app.live.lock().unwrap_or_else(|e| e.into_inner()) = live::Registry::default();
        topics::clear_claims(&mut self.app.db.lock().unwrap_or_else(|e| e.into_inner()));
        self.delay_frames(0);
        self.stall_frames(false);
        self.app.faults.ws.clear();
    }
    /// The next `n` consume answers that carry messages are cut off after their claim was
    /// made (the client sees a broken response; the server keeps the claim).
    pub fn drop_consume_responses(&self, n: u64) {
        self.app
            .db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .claims
            .drop_consume_responses = n;
    }
    /// Topic acks are answered `503 SERVICE_UNAVAILABLE` (nothing committed) for `ms`.
    pub fn fail_acks(&self, ms: u64) {
        self.app
            .db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .claims
            .fail_acks_until = Some(Instant::now() + Duration::from_millis(ms));
    }
    /// Committed offsets, live claims and the log of every ack (`{"offsets", "claims", "acks"}`).
    pub fn topic_state(&self) -> serde_json::Value {
        topics::state_json(&self.app.db.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// Every token issued before now is rejected as TOKEN_EXPIRED from now on.
    pub fn expire_tokens(&self) {
        self.app
            .faults
            .expired_before
            .store(types::now_ms() / 1000, Ordering::SeqCst);
    }
    pub fn set_max_subscriptions_per_user(&self, n: usize) {
        self.app.max_subs.store(n, Ordering::SeqCst);
    }
    /// Number of open WebSocket connections.
    pub fn socket_count(&self) -> usize {
        self.app
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// A running server.
pub struct TestServer {
    addr: SocketAddr,
    handle: Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Binds and starts serving; panics when the address cannot be bound.
    pub async fn start(cfg: Config) -> TestServer {
        Self::try_start(cfg)
            .await
            .unwrap_or_else(|e| panic!("kalam-testserver failed to start: {e}"))
    }

    pub async fn try_start(cfg: Config) -> Result<TestServer, String> {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("bind {}: {e}", cfg.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // TCP_NODELAY, as a production server sets it: with Nagle on, a small frame written
        // while a large one is still unacknowledged waits for the peer's delayed ACK (~40 ms
        // on Linux loopback), so a reused socket pays it on every second snapshot page.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let app = Arc::new(App::new(cfg)?);
        let router = http::router(app.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        });
        Ok(TestServer {
            addr,
            handle: Handle { app },
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Stops accepting, closes WebSockets and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        // Like the real server: WebSockets get close 1001 "Server shutting down".
        self.handle.signal_sockets(ws::SHUTDOWN);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.handle.drop_sockets();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.drop_sockets();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
