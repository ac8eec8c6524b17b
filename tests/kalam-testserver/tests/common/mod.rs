//! Helpers shared by the integration tests.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use kalam_testserver::{Config, TestServer};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const ROOT_PW: &str = "RootPass-123!";

pub async fn start(mut cfg: Config) -> TestServer {
    cfg.root_password = Some(ROOT_PW.into());
    TestServer::start(cfg).await
}

pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
}

impl Client {
    pub fn new(url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: url.to_string(),
        }
    }

    pub async fn login(&self, user: &str, pw: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/v1/api/auth/login", self.url))
            .json(&json!({"user": user, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {user}");
        r.json().await.unwrap()
    }

    pub async fn token(&self, user: &str, pw: &str) -> String {
        self.login(user, pw).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn sql_as(&self, token: &str, sql: &str, params: Option<Value>) -> (u16, Value) {
        let mut body = json!({"sql": sql});
        if let Some(p) = params {
            body["params"] = p;
        }
        let r = self
            .http
            .post(format!("{}/v1/api/sql", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }

    /// Runs SQL that must succeed.
    pub async fn ok(&self, token: &str, sql: &str) -> Value {
        let (s, v) = self.sql_as(token, sql, None).await;
        assert_eq!(s, 200, "{sql}: {v}");
        v
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        let mut rb = self.http.post(format!("{}{}", self.url, path)).json(&body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Root token plus users alice/bob (role user) and worker (service) and a namespace `app`.
pub async fn bootstrap(c: &Client) -> String {
    let root = c.token("root", ROOT_PW).await;
    for (u, role) in [("alice", "user"), ("bob", "user"), ("worker", "service")] {
        c.ok(
            &root,
            &format!("CREATE USER '{u}' WITH PASSWORD 'Secret-{u}-123!' ROLE {role}"),
        )
        .await;
    }
    c.ok(&root, "CREATE NAMESPACE IF NOT EXISTS app").await;
    root
}

pub fn pw(u: &str) -> String {
    format!("Secret-{u}-123!")
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(url: &str, query: &str) -> Ws {
    let u = format!("{}/v1/ws{}", url.replacen("http", "ws", 1), query);
    tokio_tungstenite::connect_async(u).await.unwrap().0
}

pub async fn ws_send(ws: &mut Ws, v: &Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

pub async fn ws_send_raw(ws: &mut Ws, s: &str) {
    ws.send(Message::Text(s.to_string().into())).await.unwrap();
}

/// A decoded inbound event.
#[derive(Debug)]
pub enum In {
    Text(Value),
    Gzip(Value, usize),
    Close(u16, String),
    /// Connection ended without a close frame (client sees 1006).
    Abrupt,
    Timeout,
}

pub async fn ws_recv(ws: &mut Ws, wait: Duration) -> In {
    loop {
        let m = match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return In::Timeout,
            Ok(None) => return In::Abrupt,
            Ok(Some(Err(_))) => return In::Abrupt,
            Ok(Some(Ok(m))) => m,
        };
        match m {
            Message::Text(t) => return In::Text(serde_json::from_str(t.as_str()).unwrap()),
            Message::Binary(b) => {
                assert_eq!(&b[..2], &[0x1f, 0x8b], "binary frames are gzip");
                let mut s = String::new();
                flate2::read::GzDecoder::new(&b[..])
                    .read_to_string(&mut s)
                    .unwrap();
                return In::Gzip(serde_json::from_str(&s).unwrap(), b.len());
            }
            Message::Close(Some(f)) => return In::Close(f.code.into(), f.reason.to_string()),
            Message::Close(None) => return In::Close(1005, String::new()),
            _ => continue,
        }
    }
}

/// Next JSON message (text or gzip), panicking on anything else.
pub async fn ws_json(ws: &mut Ws) -> Value {
    match ws_recv(ws, Duration::from_secs(5)).await {
        In::Text(v) | In::Gzip(v, _) => v,
        other => panic!("expected a message, got {other:?}"),
    }
}

pub async fn ws_auth(url: &str, token: &str, query: &str) -> Ws {
    let mut ws = ws_connect(url, query).await;
    ws_send(
        &mut ws,
        &json!({"type": "authenticate", "method": "jwt", "token": token,
            "protocol": {"serialization": "json", "compression": "gzip"}}),
    )
    .await;
    let v = ws_json(&mut ws).await;
    assert_eq!(v["type"], "auth_success", "{v}");
    ws
}
