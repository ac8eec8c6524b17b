//! Browser tests shared by the main-thread (`browser_main.rs`) and dedicated-worker
//! (`browser_worker.rs`) binaries. They talk to the test server that scripts/test.sh starts;
//! its URL and root password are compiled in (KALAMDB_TEST_URL, KALAMDB_TEST_ROOT_PASSWORD).

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use kalam_wasm::core::error::{codes, KalamError};
use kalam_wasm::core::json::{parse, parse_slice, Value};
use kalam_wasm::core::live::ClientMessage;
use kalam_wasm::shell::net::http::{send, Body, HttpRequest, HttpResponse};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{MessageEvent, WebSocket};

pub fn server_url() -> &'static str {
    match option_env!("KALAMDB_TEST_URL") {
        Some(url) => url,
        None => panic!(
            "KALAMDB_TEST_URL must be set when building browser tests (scripts/test.sh does)"
        ),
    }
}

fn root_password() -> &'static str {
    option_env!("KALAMDB_TEST_ROOT_PASSWORD").unwrap_or("kalam-test-root")
}

/// `send` with its callback turned into a future, for the tests.
async fn fetch(request: HttpRequest<'_>) -> Result<HttpResponse, KalamError> {
    let (tx, rx) = oneshot::channel();
    send(
        request,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx.await.expect("send calls back")
}

async fn login_root() -> String {
    let url = format!("{}/v1/api/auth/login", server_url());
    let body = format!(r#"{{"user":"root","password":"{}"}}"#, root_password());
    let response = fetch(HttpRequest {
        method: "POST",
        url: &url,
        authorization: None,
        body: Body::Json(body),
        timeout_ms: 10_000,
        signal: None,
    })
    .await
    .expect("login request reaches the server");
    assert_eq!(response.status, 200, "login answered {}", response.text());
    let json: Value = parse_slice(&response.body).unwrap();
    json["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

#[wasm_bindgen_test]
async fn fetch_logs_in_and_runs_sql() {
    let token = login_root().await;
    let url = format!("{}/v1/api/sql", server_url());
    let response = fetch(HttpRequest {
        method: "POST",
        url: &url,
        authorization: Some(&format!("Bearer {token}")),
        body: Body::Json(r#"{"sql":"SELECT CURRENT_USER()"}"#.into()),
        timeout_ms: 10_000,
        signal: None,
    })
    .await
    .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let json: Value = parse_slice(&response.body).unwrap();
    assert_eq!(json["status"], "success");
    assert_eq!(json["results"][0]["rows"][0][0], "root");
}

#[wasm_bindgen_test]
async fn fetch_to_a_closed_port_is_a_retryable_network_error() {
    let err = fetch(HttpRequest {
        method: "GET",
        url: "http://127.0.0.1:2/health",
        authorization: None,
        body: Body::None,
        timeout_ms: 10_000,
        signal: None,
    })
    .await
    .err()
    .expect("nothing listens on port 2 (and Chromium does not block it as unsafe)");
    assert_eq!(err.code, codes::NETWORK);
    assert!(err.retryable);
}

#[wasm_bindgen_test]
async fn websocket_authenticates_with_the_protocol_object() {
    let token = login_root().await;
    let ws_url = format!(
        "{}/v1/ws?compress=false",
        server_url().replacen("http", "ws", 1)
    );
    let socket = WebSocket::new(&ws_url).expect("WebSocket constructor");
    let (tx, mut rx) = mpsc::unbounded::<String>();
    let open_tx = tx.clone();
    let on_open = Closure::<dyn FnMut()>::new(move || {
        let _ = open_tx.unbounded_send("<open>".into());
    });
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(text) = event.data().as_string() {
            let _ = tx.unbounded_send(text);
        }
    });
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));

    assert_eq!(rx.next().await.as_deref(), Some("<open>"));
    let auth = ClientMessage::authenticate(&token).to_json();
    socket.send_with_str(&auth).unwrap();
    let reply: Value = parse(&rx.next().await.unwrap()).unwrap();
    assert_eq!(reply["type"], "auth_success", "{reply}");
    assert_eq!(reply["user"], "root");
    assert_eq!(reply["role"], "system");
    socket.set_onmessage(None);
    socket.set_onopen(None);
    socket.close().unwrap();
}

#[wasm_bindgen_test]
fn text_frames_reach_rust_as_the_same_utf8() {
    use kalam_wasm::shell::net::socket::{frame_text, Utf8Encoder};
    let encoder = Utf8Encoder::new();
    let long_ascii = "x".repeat(100_000);
    let mixed = format!("{long_ascii}é日本😀{long_ascii}");
    for text in [
        "",
        "{\"type\":\"ping\"}",
        "é",
        "日本語",
        "😀",
        "a😀b",
        &long_ascii,
        &mixed,
    ] {
        let js = js_sys::JsString::from(text);
        assert_eq!(frame_text(&encoder, &js), text);
    }
    // A lone surrogate (JS strings may hold one) becomes U+FFFD, as in TextEncoder.
    let lone = js_sys::JsString::from_char_code1(0xd800);
    assert_eq!(frame_text(&encoder, &lone), "\u{fffd}");
}
