//! HTTP routes: CORS, health, auth (§3), SQL (§1), files (§1.8), topics (§7), faults, static.

use crate::db::{json_to_sql, Actor, ChangeKind, StmtOutput, User};
use crate::sqltext::{quote_literal, split_statements, Toks};
use crate::types::{now_ms, rfc3339_nanos, Role, SqlError};
use crate::{App, AuthFail, Handle};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use rusqlite::types::Value as SqlValue;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/api/healthcheck", get(health))
        .route("/v1/api/cluster/health", get(cluster_health))
        .route("/v1/api/sql", post(sql))
        .route("/v1/api/auth/login", post(login))
        .route("/v1/api/auth/refresh", post(refresh))
        .route("/v1/api/auth/logout", post(logout))
        .route("/v1/api/auth/me", get(me))
        .route("/v1/api/auth/status", get(status))
        .route("/v1/api/auth/setup", post(setup))
        .route("/v1/api/topics/consume", post(consume))
        .route("/v1/api/topics/ack", post(ack))
        .route("/v1/api/test/faults", post(faults))
        .route("/v1/files/{ns}/{table}/{sub}/{file}", get(download))
        .route("/v1/ws", get(crate::ws::ws_handler))
        .fallback(fallback)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), refuse_mw))
        .layer(middleware::from_fn(cors_mw))
        .with_state(app)
}

// ------------------------------------------------------------------- middleware

const ALLOWED_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "accept",
    "origin",
    "x-requested-with",
];

/// actix-cors as configured by the real server: any origin echoed, credentials allowed.
async fn cors_mw(req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    if req.method() == Method::OPTIONS
        && req.headers().contains_key("access-control-request-method")
    {
        let Some(origin) = origin else {
            return (
                StatusCode::BAD_REQUEST,
                "Origin is not allowed to make this request",
            )
                .into_response();
        };
        let requested = req
            .headers()
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if requested
            .split(',')
            .map(str::trim)
            .any(|h| !h.is_empty() && !ALLOWED_HEADERS.contains(&h))
        {
            return (
                StatusCode::BAD_REQUEST,
                "Headers are not allowed to make this request",
            )
                .into_response();
        }
        let mut r = StatusCode::OK.into_response();
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", origin);
        h.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("DELETE, GET, OPTIONS, PATCH, POST, PUT"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(
                "accept, authorization, content-type, origin, x-requested-with",
            ),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("3600"));
        h.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        return r;
    }
    let mut r = next.run(req).await;
    if let Some(o) = origin {
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", o);
        h.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// The real connection guard's request size cap (§9.3).
const MAX_BODY: usize = 10 << 20;

async fn refuse_mw(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY);
    if too_large {
        return json_resp(
            413,
            json!({"error": "BODY_TOO_LARGE", "message": "Request body exceeds 10 MiB"}),
        );
    }
    if req.uri().path() != "/v1/api/test/faults" && app.refusing() {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "application/json")], r#"{"error":"SERVICE_UNAVAILABLE","message":"Connections are being refused (test fault)"}"#).into_response();
    }
    next.run(req).await
}

// ------------------------------------------------------------------- helpers

fn json_resp(status: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn text_400(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

fn took(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn envelope_error(
    status: u16,
    code: &str,
    message: &str,
    details: Option<&str>,
    took: f64,
) -> Response {
    let mut e = Map::new();
    e.insert("code".into(), json!(code));
    e.insert("message".into(), json!(message));
    if let Some(d) = details {
        e.insert("details".into(), json!(d));
    }
    json_resp(
        status,
        json!({"status": "error", "results": [], "took": took, "error": e}),
    )
}

fn auth_envelope(f: AuthFailKind, start: Instant) -> Response {
    let (code, msg) = match f {
        AuthFailKind::Missing => ("MISSING_AUTHORIZATION", "Authentication required"),
        AuthFailKind::Fail(AuthFail::Expired) => ("TOKEN_EXPIRED", "Invalid credentials"),
        AuthFailKind::Fail(AuthFail::Invalid) => ("INVALID_CREDENTIALS", "Invalid credentials"),
    };
    // Auth-extractor errors report `took` unrounded.
    envelope_error(401, code, msg, None, start.elapsed().as_secs_f64() * 1000.0)
}

#[derive(Clone, Copy)]
enum AuthFailKind {
    Missing,
    Fail(AuthFail),
}

/// `Authorization: Bearer <access>` (case-sensitive prefix) for SQL, files and topics.
fn bearer(app: &App, headers: &HeaderMap) -> Result<Actor, AuthFailKind> {
    let Some(h) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthFailKind::Missing);
    };
    let t = h
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AuthFailKind::Fail(AuthFail::Invalid))?;
    app.validate_access(t.trim()).map_err(AuthFailKind::Fail)
}

pub fn sign_jwt(secret: &[u8], claims: &Value) -> String {
    let head = B64.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let body = B64.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac accepts any key length");
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", B64.encode(mac.finalize().into_bytes()))
}

pub fn verify_jwt(secret: &[u8], token: &str) -> Option<Map<String, Value>> {
    let mut it = token.split('.');
    let (h, b, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(format!("{h}.{b}").as_bytes());
    mac.verify_slice(&B64.decode(s).ok()?).ok()?;
    match serde_json::from_slice(&B64.decode(b).ok()?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn peer_is_loopback(ci: &ConnectInfo<SocketAddr>) -> bool {
    ci.0.ip().is_loopback()
}

// ------------------------------------------------------------------- health & fallback

/// Health endpoints answer loopback peers only, as the real server does.
fn health_denied(ci: &ConnectInfo<SocketAddr>) -> Option<Response> {
    (!peer_is_loopback(ci)).then(|| {
        json_resp(
            403,
            json!({"error": "Access denied. Health endpoint is localhost-only."}),
        )
    })
}

async fn health(ci: ConnectInfo<SocketAddr>) -> Response {
    if let Some(denied) = health_denied(&ci) {
        return denied;
    }
    json_resp(
        200,
        json!({"status": "healthy", "version": "0.4.3-rc.4", "api_version": "v1", "build_date": env!("CARGO_PKG_VERSION")}),
    )
}

async fn cluster_health(ci: ConnectInfo<SocketAddr>) -> Response {
    if let Some(denied) = health_denied(&ci) {
        return denied;
    }
    json_resp(
        200,
        json!({"status": "healthy", "version": "0.4.3-rc.4", "build_date": env!("CARGO_PKG_VERSION"),
            "is_cluster_mode": false, "cluster_id": null, "node_id": 1, "is_leader": true, "total_groups": 0,
            "groups_leading": 0, "current_term": 0, "last_applied": null, "millis_since_quorum_ack": null, "nodes": []}),
    )
}

async fn fallback(State(app): State<Arc<App>>, method: Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if method == Method::GET && !path.starts_with("/v1/") {
        if let Some(dir) = &app.cfg.static_dir {
            return serve_static(dir, path).await;
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn serve_static(dir: &std::path::Path, path: &str) -> Response {
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|s| s == ".." || s.contains('\\')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut p = dir.join(rel);
    if rel.is_empty() || p.is_dir() {
        p = p.join("index.html");
    }
    match tokio::fs::read(&p).await {
        Ok(b) => (
            [(header::CONTENT_TYPE, content_type(&p.to_string_lossy()))],
            b,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

// ------------------------------------------------------------------- auth routes

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginReq {
    #[serde(alias = "username")]
    user: String,
    password: String,
}

fn auth_err(status: u16, code: &str, msg: &str) -> Response {
    json_resp(status, json!({"error": code, "message": msg}))
}

fn token_response(app: &App, u: &User) -> Response {
    let now = now_ms();
    // After `expire_tokens`, new tokens must be valid at once: keep their iat above the cutoff.
    let iat = (now / 1000).max(
        app.faults
            .expired_before
            .load(std::sync::atomic::Ordering::SeqCst)
            + 1,
    );
    let ttl = app.cfg.access_token_ttl.as_secs() as i64;
    let rttl = app.cfg.refresh_ttl().as_secs() as i64;
    let claims = |exp: i64, tt: &str| json!({"sub": u.id, "iss": "kalamdb", "exp": exp, "iat": iat, "email": u.email, "role": u.role.as_str(), "token_type": tt});
    let access = sign_jwt(&app.secret, &claims(iat + ttl, "access"));
    let refresh = sign_jwt(&app.secret, &claims(iat + rttl, "refresh"));
    let body = json!({
        "user": u.info(),
        "admin_ui_access": u.role.is_admin(),
        "expires_at": rfc3339_nanos(now + ttl * 1000),
        "access_token": access,
        "refresh_token": refresh,
        "refresh_expires_at": rfc3339_nanos(now + rttl * 1000),
    });
    let cookie = |name: &str, v: &str, secs: i64| {
        let exp = chrono::DateTime::from_timestamp(iat + secs, 0)
            .unwrap_or_default()
            .format("%a, %d %b %Y %H:%M:%S GMT");
        format!("{name}={v}; HttpOnly; SameSite=Strict; Path=/; Expires={exp}")
    };
    let mut r = json_resp(200, body);
    for c in [
        cookie("kalamdb_auth", &access, ttl),
        cookie("kalamdb_refresh", &refresh, rttl),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

async fn login(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let req: LoginReq = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return text_400(format!("Json deserialize error: {e}")),
    };
    let db = app.db.lock().unwrap_or_else(|e| e.into_inner());
    let Some(u) = db.user(&req.user) else {
        return auth_err(401, "unauthorized", "Invalid credentials");
    };
    drop(db);
    if u.password_hash.is_empty() {
        if u.id == "root" && req.password.is_empty() {
            return auth_err(
                428,
                "setup_required",
                "Server requires initial setup. Set the root password first.",
            );
        }
        return auth_err(401, "unauthorized", "Invalid credentials");
    }
    if !u.check_password(&req.password) {
        return auth_err(401, "unauthorized", "Invalid credentials");
    }
    token_response(&app, &u)
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

async fn refresh(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let token = cookie_value(&headers, "kalamdb_refresh").or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|s| s.trim().to_string())
    });
    let Some(token) = token else {
        return auth_err(401, "unauthorized", "Invalid credentials");
    };
    let Some(claims) = verify_jwt(&app.secret, &token) else {
        return auth_err(401, "unauthorized", "Invalid credentials");
    };
    if claims.get("token_type").and_then(|v| v.as_str()) != Some("refresh") {
        return auth_err(
            401,
            "unauthorized",
            "Refresh endpoint requires a refresh token",
        );
    }
    let now = now_ms() / 1000;
    let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    let iat = claims.get("iat").and_then(|v| v.as_i64()).unwrap_or(0);
    if exp + (app.cfg.leeway().as_secs() as i64) < now
        || iat
            <= app
                .faults
                .expired_before
                .load(std::sync::atomic::Ordering::SeqCst)
    {
        return auth_err(401, "unauthorized", "Invalid credentials");
    }
    let sub = claims.get("sub").and_then(|v| v.as_str()).unwrap_or("");
    let Some(u) = app.db.lock().unwrap_or_else(|e| e.into_inner()).user(sub) else {
        return auth_err(401, "unauthorized", "User no longer valid");
    };
    if claims.get("role").and_then(|v| v.as_str()) != Some(u.role.as_str()) {
        return auth_err(401, "unauthorized", "Token role does not match user role");
    }
    token_response(&app, &u)
}

async fn logout() -> Response {
    let mut r = json_resp(200, json!({"message": "Logged out successfully"}));
    for n in ["kalamdb_auth", "kalamdb_refresh"] {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{n}=; HttpOnly; SameSite=Strict; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        )) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string())
        })
        .or_else(|| cookie_value(&headers, "kalamdb_auth"));
    let start = Instant::now();
    let Some(token) = token else {
        return auth_envelope(AuthFailKind::Missing, start);
    };
    match app.validate_access(&token) {
        Ok(a) => {
            let u = app
                .db
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .user(&a.user);
            match u {
                Some(u) => json_resp(
                    200,
                    json!({"user": u.info(), "admin_ui_access": u.role.is_admin()}),
                ),
                None => auth_envelope(AuthFailKind::Fail(AuthFail::Invalid), start),
            }
        }
        Err(f) => auth_envelope(AuthFailKind::Fail(f), start),
    }
}

async fn status(State(app): State<Arc<App>>, ci: ConnectInfo<SocketAddr>) -> Response {
    if !peer_is_loopback(&ci) {
        return auth_err(403, "forbidden", "Setup is only available from localhost");
    }
    let needs = app
        .db
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .user("root")
        .is_none_or(|u| u.password_hash.is_empty());
    let message = if needs {
        "Server requires initial setup. Set the root password and create an admin user."
    } else {
        "Server is configured and ready."
    };
    json_resp(200, json!({"needs_setup": needs, "message": message}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupReq {
    #[serde(alias = "username")]
    user: String,
    password: String,
    root_password: String,
    email: Option<String>,
}

async fn setup(State(app): State<Arc<App>>, ci: ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    if !peer_is_loopback(&ci) {
        return auth_err(403, "forbidden", "Setup is only available from localhost");
    }
    let req: SetupReq = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return text_400(format!("Json deserialize error: {e}")),
    };
    let db = app.db.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut root) = db.user("root") else {
        return auth_err(500, "internal_error", "root user missing");
    };
    if !root.password_hash.is_empty() {
        return auth_err(409, "already_configured", "Server is already configured");
    }
    if req.user == "root" || !crate::db::valid_user_id(&req.user) {
        return auth_err(400, "invalid_user", "Invalid user name");
    }
    if req.password.len() < 8 || req.root_password.len() < 8 {
        return auth_err(
            400,
            "weak_password",
            "Password must be at least 8 characters",
        );
    }
    if db.user(&req.user).is_some() {
        return auth_err(409, "user_exists", "User already exists");
    }
    let now = now_ms();
    root.password_hash = crate::db::hash_password("root", &req.root_password);
    root.updated_at_ms = now;
    let u = User {
        id: req.user.clone(),
        role: Role::Dba,
        email: req.email,
        password_hash: crate::db::hash_password(&req.user, &req.password),
        created_at_ms: now,
        updated_at_ms: now,
    };
    if db.put_user(&root).and_then(|_| db.put_user(&u)).is_err() {
        return auth_err(500, "internal_error", "Failed to store users");
    }
    json_resp(
        200,
        json!({"user": u.info(), "message": "Server setup complete. Log in with the new credentials."}),
    )
}

// ------------------------------------------------------------------- SQL

#[derive(Deserialize)]
struct SqlReq {
    sql: String,
    params: Option<Vec<Value>>,
    namespace_id: Option<String>,
}

struct Upload {
    placeholder: String,
    filename: String,
    mime: Option<String>,
    data: Vec<u8>,
}

const MAX_PARAMS: usize = 50;
const MAX_PARAM_BYTES: usize = 512 * 1024;
const MAX_SQL: usize = 1 << 20;
const MAX_FILE: usize = 25 << 20;
const MAX_FILES: usize = 20;

async fn sql(State(app): State<Arc<App>>, headers: HeaderMap, req: Request) -> Response {
    let start = Instant::now();
    let bad_request =
        |code: &str, message: &str| envelope_error(400, code, message, None, took(start));
    let actor = match bearer(&app, &headers) {
        Ok(a) => a,
        Err(f) => {
            // Read the body before answering, as actix does for keep-alive: answering while
            // a client still streams an upload makes it see a reset instead of the 401.
            let _ = axum::body::to_bytes(req.into_body(), 110 << 20).await;
            return auth_envelope(f, start);
        }
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (body, uploads) = if ct.starts_with("multipart/form-data") {
        let mut mp = match Multipart::from_request(req, &()).await {
            Ok(m) => m,
            Err(e) => {
                return bad_request("INVALID_INPUT", &format!("Invalid multipart request: {e}"))
            }
        };
        let mut sqltext = None;
        let mut params = None;
        let mut ns = None;
        let mut files = Vec::new();
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    return bad_request("INVALID_INPUT", &format!("Multipart read error: {e}"))
                }
            };
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(|s| s.to_string());
            let mime = field.content_type().map(|s| s.to_string());
            let data = match field.bytes().await {
                Ok(b) => b.to_vec(),
                Err(e) => {
                    return bad_request("INVALID_INPUT", &format!("Multipart read error: {e}"))
                }
            };
            match name.as_str() {
                "sql" => sqltext = Some(String::from_utf8_lossy(&data).to_string()),
                "params" => match serde_json::from_slice::<Value>(&data) {
                    Ok(Value::Array(a)) => params = Some(a),
                    _ => return bad_request("INVALID_PARAMETER", "params must be a JSON array"),
                },
                "namespace_id" => ns = Some(String::from_utf8_lossy(&data).to_string()),
                n if n.starts_with("file:") => {
                    if data.len() > MAX_FILE {
                        return bad_request(
                            "FILE_TOO_LARGE",
                            &format!(
                                "File '{}' exceeds the maximum size of {MAX_FILE} bytes",
                                &n[5..]
                            ),
                        );
                    }
                    files.push(Upload {
                        placeholder: n[5..].to_string(),
                        filename: filename.unwrap_or_else(|| n[5..].to_string()),
                        mime,
                        data,
                    });
                    if files.len() > MAX_FILES {
                        return bad_request(
                            "TOO_MANY_FILES",
                            &format!("Too many files (max {MAX_FILES})"),
                        );
                    }
                }
                _ => {}
            }
        }
        (
            SqlReq {
                sql: sqltext.unwrap_or_default(),
                params,
                namespace_id: ns,
            },
            Some(files),
        )
    } else {
        if !ct.starts_with("application/json") {
            return bad_request(
                "INVALID_INPUT",
                "Content type error: expected application/json",
            );
        }
        let bytes = match axum::body::to_bytes(req.into_body(), 2 << 20).await {
            Ok(b) => b,
            Err(_) => return bad_request("INVALID_INPUT", "JSON payload is too large"),
        };
        match serde_json::from_slice::<SqlReq>(&bytes) {
            Ok(r) => (r, None),
            Err(e) => return bad_request("INVALID_INPUT", &format!("Json deserialize error: {e}")),
        }
    };
    execute_request(&app, actor, body, uploads, start)
}

fn file_ref_sql(
    app: &App,
    db: &crate::db::Db,
    def: &crate::db::TableDef,
    owner: &str,
    f: &Upload,
) -> Result<String, SqlError> {
    let id = db.seq.next().to_string();
    let mime = f.mime.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| {
        let c = content_type(&f.filename);
        if c == "application/octet-stream" {
            c.to_string()
        } else {
            c.split(';').next().unwrap_or(c).to_string()
        }
    });
    let sha: String = Sha256::digest(&f.data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stored = stored_name(&id, &f.filename);
    db.conn.execute(
        "INSERT OR REPLACE INTO __kalam_files (ns, tbl, owner, sub, stored, mime, data) VALUES (?1, ?2, ?3, 'f0001', ?4, ?5, ?6)",
        rusqlite::params![def.namespace, def.name, owner, stored, mime, f.data],
    )?;
    let _ = app;
    let r = json!({"id": id, "sub": "f0001", "name": f.filename, "size": f.data.len(), "mime": mime, "sha256": sha});
    Ok(quote_literal(&r.to_string()))
}

/// `{id}-{sanitized}.{ext}` per §1.8.
pub fn stored_name(id: &str, name: &str) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], Some(&name[i + 1..])),
        None => (name, None),
    };
    let ext = ext
        .filter(|e| (1..=10).contains(&e.len()) && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_else(|| "bin".into());
    let mut s = String::new();
    for c in stem.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            s.push(c);
        } else if c == ' ' || c == '_' || c == '-' {
            s.push('-');
        }
    }
    let s: String = s.chars().take(50).collect();
    let mut collapsed = String::new();
    for c in s.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let sanitized = collapsed.trim_matches('-');
    if sanitized.is_empty() {
        format!("{id}.{ext}")
    } else {
        format!("{id}-{sanitized}.{ext}")
    }
}

/// `EXECUTE AS USER 'x' ( inner )` → (target, inner). Ok(None) when not wrapped.
fn parse_execute_as(sql: &str) -> Result<Option<(String, String)>, SqlError> {
    let mut t = Toks::new(sql).map_err(|e| SqlError::invalid_sql(format!("Invalid SQL: {e}")))?;
    if !t.kws(&["EXECUTE", "AS", "USER"]) {
        return Ok(None);
    }
    let bad = || {
        SqlError::plain(
            400,
            "INVALID_INPUT",
            "Invalid EXECUTE AS USER syntax: expected EXECUTE AS USER '<user>' (<statement>)",
        )
    };
    let user = t.name().ok_or_else(bad)?;
    let (open, close) = crate::sqltext::paren_group(sql, 0).ok_or_else(bad)?;
    if !sql[close + 1..]
        .trim()
        .trim_end_matches(';')
        .trim()
        .is_empty()
    {
        return Err(bad());
    }
    let inner = sql[open + 1..close].trim().to_string();
    if split_statements(&inner).map_err(|_| bad())?.len() != 1 {
        return Err(bad());
    }
    Ok(Some((user, inner)))
}

fn execute_request(
    app: &App,
    actor: Actor,
    req: SqlReq,
    uploads: Option<Vec<Upload>>,
    start: Instant,
) -> Response {
    let admin = actor.role.is_admin();
    let fail = |e: SqlError, idx: usize, stmt: &str| -> Response {
        let msg = if admin || e.safe {
            if e.prefixed {
                format!("Statement {idx} failed: {}", e.message)
            } else {
                e.message.clone()
            }
        } else {
            match e.code {
                "BATCH_PARSE_ERROR" => "Failed to parse SQL batch".into(),
                "SQL_EXECUTION_ERROR" => "SQL statement failed".into(),
                "INVALID_SQL" => "SQL statement is invalid or not allowed".into(),
                "TABLE_NOT_FOUND" => "Requested table is not available".into(),
                "INTERNAL_ERROR" => "SQL request failed".into(),
                _ => e.message.clone(),
            }
        };
        let details = (admin && e.code == "SQL_EXECUTION_ERROR").then_some(stmt);
        envelope_error(e.status, e.code, &msg, details, took(start))
    };
    if req.sql.trim().is_empty() {
        return envelope_error(
            400,
            "EMPTY_SQL",
            "No SQL statements provided",
            None,
            took(start),
        );
    }
    if req.sql.len() > MAX_SQL {
        return envelope_error(400, "INVALID_SQL", "SQL query too long", None, took(start));
    }
    let raw_params = req.params.unwrap_or_default();
    if raw_params.len() > MAX_PARAMS {
        return fail(
            SqlError::exec(format!(
                "Too many parameters: {} (max {MAX_PARAMS})",
                raw_params.len()
            ))
            .unprefixed(),
            1,
            &req.sql,
        );
    }
    let mut params = Vec::with_capacity(raw_params.len());
    for (i, p) in raw_params.iter().enumerate() {
        match p {
            Value::Array(_) => {
                return envelope_error(
                    400,
                    "INVALID_PARAMETER",
                    &format!(
                        "Parameter ${} invalid: Array parameters not yet supported",
                        i + 1
                    ),
                    None,
                    took(start),
                )
            }
            Value::Object(_) => {
                return envelope_error(
                    400,
                    "INVALID_PARAMETER",
                    &format!(
                        "Parameter ${} invalid: Object parameters not yet supported",
                        i + 1
                    ),
                    None,
                    took(start),
                )
            }
            _ => {}
        }
        if p.to_string().len() > MAX_PARAM_BYTES {
            return fail(
                SqlError::exec(format!(
                    "Parameter ${} exceeds {MAX_PARAM_BYTES} bytes",
                    i + 1
                ))
                .unprefixed(),
                1,
                &req.sql,
            );
        }
        params.push(match p {
            Value::Bool(b) => SqlValue::Integer(*b as i64),
            other => json_to_sql(other),
        });
    }
    let stmts = match split_statements(&req.sql) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            return envelope_error(
                400,
                "EMPTY_SQL",
                "No SQL statements provided",
                None,
                took(start),
            )
        }
        Err(e) => return fail(SqlError::plain(400, "BATCH_PARSE_ERROR", e), 1, &req.sql),
    };
    if stmts.len() > 1 && !params.is_empty() {
        return envelope_error(
            400,
            "PARAMS_WITH_BATCH",
            "Parameters not supported with multi-statement batches",
            None,
            took(start),
        );
    }
    if uploads.is_none() && stmts.iter().any(|s| Toks::has_file_placeholder(s)) {
        return envelope_error(
            400,
            "INVALID_INPUT",
            "FILE placeholders require multipart/form-data",
            None,
            took(start),
        );
    }
    if uploads.is_some() && stmts.len() != 1 {
        return envelope_error(
            400,
            "INVALID_INPUT",
            "File uploads require exactly one SQL statement",
            None,
            took(start),
        );
    }
    let ns = req.namespace_id.unwrap_or_else(|| "default".into());
    let mut db = app.db.lock().unwrap_or_else(|e| e.into_inner());
    let mut results: Vec<Value> = Vec::new();
    let mut agg = [0usize; 3];
    let mut single_rows = false;
    let mut all_events = Vec::new();
    for (idx, stmt) in stmts.iter().enumerate() {
        let idx = idx + 1;
        let (eff, mut inner) = match parse_execute_as(stmt) {
            Ok(Some((target, inner))) => {
                if let Err(target_role) = db.may_act_as(&actor, &target) {
                    return fail(SqlError::denied(format!("Unauthorized: EXECUTE AS USER is not authorized: actor '{}' with role {} cannot target '{}' with role {}", actor.user, actor.role.title(), target, target_role.title())).unprefixed(), idx, stmt);
                }
                (
                    Actor {
                        user: target,
                        role: Role::User,
                    },
                    inner,
                )
            }
            Ok(None) => (actor.clone(), stmt.clone()),
            Err(e) => return fail(e, idx, stmt),
        };
        if let Some(files) = &uploads {
            let target = Toks::new(&inner).ok().and_then(|mut t| {
                if t.kws(&["INSERT", "INTO"]) || t.kw("UPDATE") {
                    t.dotted()
                } else {
                    None
                }
            });
            let Some(def) = target.and_then(|p| db.resolve(&p, &ns)) else {
                return envelope_error(
                    400,
                    "TABLE_NOT_FOUND",
                    "Upload target table not found",
                    None,
                    took(start),
                );
            };
            if def.kind == crate::db::TableKind::Stream {
                return envelope_error(
                    400,
                    "INVALID_INPUT",
                    "File uploads are not supported on STREAM tables",
                    None,
                    took(start),
                );
            }
            if def.kind == crate::db::TableKind::Shared && eff.user != actor.user {
                return fail(
                    SqlError::exec("EXECUTE AS USER is not supported on SHARED tables"),
                    idx,
                    stmt,
                );
            }
            let owner = if def.kind == crate::db::TableKind::Shared {
                String::new()
            } else {
                eff.user.clone()
            };
            for f in files {
                for pat in [
                    format!("FILE(\"{}\")", f.placeholder),
                    format!("FILE('{}')", f.placeholder),
                    format!("file(\"{}\")", f.placeholder),
                    format!("file('{}')", f.placeholder),
                ] {
                    if inner.contains(&pat) {
                        match file_ref_sql(app, &db, &def, &owner, f) {
                            Ok(lit) => inner = inner.replace(&pat, &lit),
                            Err(e) => {
                                return envelope_error(
                                    500,
                                    "INTERNAL_ERROR",
                                    &e.message,
                                    None,
                                    took(start),
                                )
                            }
                        }
                    }
                }
            }
        }
        if eff.user != actor.user {
            let shared = Toks::new(&inner)
                .ok()
                .and_then(|mut t| {
                    if t.kws(&["INSERT", "INTO"]) || t.kw("UPDATE") || t.kws(&["DELETE", "FROM"]) {
                        t.dotted()
                    } else {
                        None
                    }
                })
                .and_then(|p| db.resolve(&p, &ns))
                .is_some_and(|d| d.kind == crate::db::TableKind::Shared);
            if shared {
                return fail(
                    SqlError::exec("EXECUTE AS USER is not supported on SHARED tables"),
                    idx,
                    stmt,
                );
            }
        }
        let mut events = Vec::new();
        match db.execute(&inner, &params, &ns, &eff, &mut events) {
            Ok(StmtOutput::Rows { schema, rows }) => {
                single_rows = stmts.len() == 1;
                let schema: Vec<Value> = schema
                    .iter()
                    .enumerate()
                    .map(|(i, f)| f.to_json(i))
                    .collect();
                results.push(json!({"schema": schema, "rows": rows, "row_count": rows.len(), "as_user": eff.user}));
            }
            Ok(StmtOutput::Dml { kind, count }) => {
                let i = match kind {
                    ChangeKind::Insert => 0,
                    ChangeKind::Update => 1,
                    ChangeKind::Delete => 2,
                };
                if stmts.len() == 1 {
                    let verb = ["Inserted", "Updated", "Deleted"][i];
                    results.push(json!({"row_count": count, "message": format!("{verb} {count} row(s)"), "as_user": eff.user}));
                } else {
                    agg[i] += count;
                }
            }
            Ok(StmtOutput::Message(m)) => {
                results.push(json!({"row_count": 0, "message": m, "as_user": eff.user}))
            }
            Err(e) => {
                if let Some(tx) = db.tx_events.as_mut() {
                    tx.extend(events);
                } else {
                    all_events.extend(events);
                }
                let evs = std::mem::take(&mut all_events);
                app.commit(&mut db, &evs);
                db.abort_open_tx();
                return fail(e, idx, &inner);
            }
        }
        if let Some(tx) = db.tx_events.as_mut() {
            tx.extend(events);
        } else {
            all_events.extend(events);
        }
    }
    if db.abort_open_tx() {
        app.commit(&mut db, &all_events);
        return fail(
            SqlError::exec(
                "Request completed with an open explicit transaction; rolled back automatically",
            )
            .unprefixed(),
            stmts.len(),
            &req.sql,
        );
    }
    app.commit(&mut db, &all_events);
    drop(db);
    for (i, verb) in ["Inserted", "Updated", "Deleted"].iter().enumerate() {
        if agg[i] > 0 {
            results.push(json!({"row_count": agg[i], "message": format!("{verb} {} row(s)", agg[i]), "as_user": actor.user}));
        }
    }
    if single_rows {
        // Single SELECTs are streamed by the real server (chunked, `"error":null` at the end).
        let body =
            json!({"status": "success", "results": results, "took": took(start), "error": null})
                .to_string();
        let stream =
            futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(body)) });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    json_resp(
        200,
        json!({"status": "success", "results": results, "took": took(start)}),
    )
}

// ------------------------------------------------------------------- files

#[derive(Deserialize)]
struct DownloadQuery {
    user_id: Option<String>,
}

async fn download(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((ns, table, sub, file)): Path<(String, String, String, String)>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let start = Instant::now();
    let actor = match bearer(&app, &headers) {
        Ok(a) => a,
        Err(f) => return auth_envelope(f, start),
    };
    let bad = |s: &str| {
        s.is_empty() || s.contains("..") || s.contains('/') || s.contains('\\') || s.contains('\0')
    };
    let sub_ok =
        sub.len() == 5 && sub.starts_with('f') && sub[1..].chars().all(|c| c.is_ascii_digit());
    if !sub_ok || bad(&file) {
        return envelope_error(400, "INVALID_INPUT", "Invalid file path", None, took(start));
    }
    let db = app.db.lock().unwrap_or_else(|e| e.into_inner());
    let Some(def) = db.table(&ns, &table) else {
        return json_resp(
            404,
            json!({"error": format!("Table '{ns}.{table}' not found")}),
        );
    };
    let owner = match def.kind {
        crate::db::TableKind::Stream => {
            return envelope_error(
                400,
                "INVALID_INPUT",
                "Files are not supported on STREAM tables",
                None,
                took(start),
            )
        }
        crate::db::TableKind::Shared => {
            if q.user_id.is_some() {
                return envelope_error(
                    400,
                    "INVALID_INPUT",
                    "user_id is only valid for USER tables",
                    None,
                    took(start),
                );
            }
            if !crate::db::shared_readable(&def, actor.role) {
                return envelope_error(
                    403,
                    "PERMISSION_DENIED",
                    "Permission denied",
                    None,
                    took(start),
                );
            }
            String::new()
        }
        crate::db::TableKind::User => match q.user_id {
            None => actor.user.clone(),
            Some(target) => {
                if db.may_act_as(&actor, &target).is_err() {
                    return envelope_error(
                        403,
                        "PERMISSION_DENIED",
                        "Permission denied",
                        None,
                        took(start),
                    );
                }
                target
            }
        },
    };
    let found: Option<(String, Vec<u8>)> = db
        .conn
        .query_row("SELECT mime, data FROM __kalam_files WHERE ns = ?1 AND tbl = ?2 AND owner = ?3 AND sub = ?4 AND stored = ?5", rusqlite::params![def.namespace, def.name, owner, sub, file], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok();
    let Some((_, data)) = found else {
        return json_resp(
            404,
            json!({"error": "File not found", "code": "FILE_NOT_FOUND"}),
        );
    };
    let ct = content_type(&file);
    let ct = if ct.starts_with("text/") || ct == "application/json" {
        ct
    } else {
        ct.split(';').next().unwrap_or(ct)
    };
    (
        [
            (header::CONTENT_TYPE, ct.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        ],
        data,
    )
        .into_response()
}

// ------------------------------------------------------------------- topics

#[derive(Deserialize)]
struct ConsumeReq {
    topic_id: String,
    group_id: String,
    start: Option<Value>,
    limit: Option<u64>,
    partition_id: Option<u32>,
    #[allow(dead_code)]
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct AckReq {
    topic_id: String,
    group_id: String,
    partition_id: Option<u32>,
    upto_offset: u64,
}

fn topic_auth(app: &App, headers: &HeaderMap, start: Instant) -> Result<Actor, Box<Response>> {
    let a = bearer(app, headers).map_err(|f| Box::new(auth_envelope(f, start)))?;
    if a.role < Role::Service {
        return Err(Box::new(json_resp(
            403,
            json!({"error": "Topic consumption requires service, dba, or system role", "code": "FORBIDDEN"}),
        )));
    }
    Ok(a)
}

fn topic_error(e: SqlError) -> Response {
    let code = if e.status == 404 {
        "NOT_FOUND"
    } else {
        "INTERNAL_ERROR"
    };
    json_resp(
        if e.status == 404 { 404 } else { 500 },
        json!({"error": e.message, "code": code}),
    )
}

/// A topic request's preamble: authorization, then the JSON body.
fn topic_request<T: serde::de::DeserializeOwned>(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    start: Instant,
) -> Result<T, Box<Response>> {
    topic_auth(app, headers, start)?;
    serde_json::from_slice(body)
        .map_err(|e| Box::new(text_400(format!("Json deserialize error: {e}"))))
}

async fn consume(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    let req: ConsumeReq = match topic_request(&app, &headers, &body, start) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let st = match &req.start {
        None => crate::topics::Start::Latest,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("earliest") => {
            crate::topics::Start::Earliest
        }
        Some(Value::String(s)) if s.eq_ignore_ascii_case("latest") => crate::topics::Start::Latest,
        Some(Value::Object(o)) => match o
            .get("Offset")
            .or_else(|| o.get("offset"))
            .and_then(|v| v.as_u64())
        {
            Some(n) => crate::topics::Start::Offset(n),
            None => return text_400("Json deserialize error: invalid start".into()),
        },
        Some(_) => return text_400("Json deserialize error: unknown variant for start".into()),
    };
    let mut db = app.db.lock().unwrap_or_else(|e| e.into_inner());
    match crate::topics::consume(
        &mut db,
        &req.topic_id,
        &req.group_id,
        req.partition_id.unwrap_or(0),
        st,
        req.limit.unwrap_or(100),
    ) {
        Ok(c) if !c.messages.is_empty() && db.claims.drop_consume_responses > 0 => {
            // Fault: the claim is made, then the answer is lost in transit (the body fails
            // after the headers, so the connection is cut mid-response).
            db.claims.drop_consume_responses -= 1;
            let lost = futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other(
                    "consume response dropped (test fault)",
                ))
            });
            Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from_stream(lost))
                .unwrap_or_else(|_| json_resp(500, json!({})))
        }
        Ok(c) => json_resp(
            200,
            json!({"messages": c.messages.iter().map(|m| crate::topics::message_json(&req.topic_id, m)).collect::<Vec<_>>(), "next_offset": c.next_offset, "has_more": c.has_more}),
        ),
        Err(e) => topic_error(e),
    }
}

async fn ack(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    let req: AckReq = match topic_request(&app, &headers, &body, start) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let mut db = app.db.lock().unwrap_or_else(|e| e.into_inner());
    if db
        .claims
        .fail_acks_until
        .is_some_and(|t| Instant::now() < t)
    {
        return json_resp(
            503,
            json!({"error": "Acks are failing (test fault)", "code": "SERVICE_UNAVAILABLE"}),
        );
    }
    match crate::topics::ack(
        &mut db,
        &req.topic_id,
        &req.group_id,
        req.partition_id.unwrap_or(0),
        req.upto_offset,
    ) {
        Ok(()) => json_resp(
            200,
            json!({"success": true, "acknowledged_offset": req.upto_offset}),
        ),
        Err(e) => topic_error(e),
    }
}

// ------------------------------------------------------------------- faults

async fn faults(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    let actor = match bearer(&app, &headers) {
        Ok(a) => a,
        Err(f) => return auth_envelope(f, start),
    };
    if actor.role != Role::System {
        return envelope_error(
            403,
            "PERMISSION_DENIED",
            "Permission denied: the test fault route requires the system role",
            None,
            took(start),
        );
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return envelope_error(
                400,
                "INVALID_INPUT",
                &format!("Json deserialize error: {e}"),
                None,
                took(start),
            )
        }
    };
    let h = Handle { app: app.clone() };
    let num = |k: &str| v.get(k).and_then(|x| x.as_u64());
    match v.get("action").and_then(|a| a.as_str()) {
        Some("drop_sockets") => h.drop_sockets(),
        Some("refuse_connections") => h.refuse_connections(num("ms").unwrap_or(0)),
        Some("delay_frames") => h.delay_frames(num("ms").unwrap_or(0)),
        Some("stall_frames") => {
            h.stall_frames(v.get("on").and_then(|x| x.as_bool()).unwrap_or(false))
        }
        Some("restart") => h.restart(),
        Some("drop_consume_responses") => h.drop_consume_responses(num("count").unwrap_or(1)),
        Some("fail_acks") => h.fail_acks(num("ms").unwrap_or(0)),
        Some("topic_state") => return json_resp(200, h.topic_state()),
        Some("expire_tokens") => h.expire_tokens(),
        Some("black_hole") => h.black_hole(v.get("on").and_then(|x| x.as_bool()).unwrap_or(false)),
        Some("fail_next_batch") => {
            let mode = match v.get("mode").and_then(|m| m.as_str()) {
                Some("ignore") => crate::ws::BatchFault::Ignore,
                _ => crate::ws::BatchFault::Error,
            };
            h.fail_next_batch(num("n").unwrap_or(1) as u32, mode);
        }
        Some("inject_error") => {
            let Some(id) = v.get("subscription_id").and_then(|x| x.as_str()) else {
                return envelope_error(
                    400,
                    "INVALID_INPUT",
                    "subscription_id expected",
                    None,
                    took(start),
                );
            };
            let text =
                |k: &str, d: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or(d).to_string();
            let drop = v.get("drop").and_then(|x| x.as_bool()).unwrap_or(false);
            let n = h.inject_error(
                id,
                &text("code", "SUBSCRIPTION_FAILED"),
                &text("message", "Subscription failed: injected fault"),
                drop,
            );
            return json_resp(200, json!({"ok": true, "subscriptions": n}));
        }
        Some("set_limits")
            if num("ws_outbound_queue").is_some()
                || num("max_subscriptions_per_user").is_some() =>
        {
            if let Some(n) = num("ws_outbound_queue") {
                h.set_ws_outbound_queue(n as usize);
            }
            if let Some(n) = num("max_subscriptions_per_user") {
                h.set_max_subscriptions_per_user(n as usize);
            }
        }
        Some("set_limits") => match num("max_subscriptions_per_user") {
            Some(n) => h.set_max_subscriptions_per_user(n as usize),
            None => {
                return envelope_error(
                    400,
                    "INVALID_INPUT",
                    "max_subscriptions_per_user expected",
                    None,
                    took(start),
                )
            }
        },
        _ => {
            return envelope_error(
                400,
                "INVALID_INPUT",
                "Unknown fault action",
                None,
                took(start),
            )
        }
    }
    json_resp(200, json!({"ok": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_follow_the_server_rules() {
        assert_eq!(stored_name("123", "Report Q1.pdf"), "123-report-q1.pdf");
        assert_eq!(
            stored_name("383266719688294400", "Report Q1 (final).PDF"),
            "383266719688294400-report-q1-final.pdf"
        );
        assert_eq!(stored_name("1", "!!!"), "1.bin");
        assert_eq!(stored_name("1", "a.tar.gz"), "1-atar.gz");
    }

    #[test]
    fn jwt_round_trip_and_tamper() {
        let t = sign_jwt(b"k", &json!({"sub": "a", "iss": "kalamdb"}));
        assert_eq!(verify_jwt(b"k", &t).unwrap()["sub"], "a");
        assert!(verify_jwt(b"other", &t).is_none());
    }
}
