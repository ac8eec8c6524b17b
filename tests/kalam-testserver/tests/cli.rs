//! The binary's contract: first stdout line, env root password, static files, CORS,
//! data directory persistence, clean exit on SIGTERM/SIGINT.

mod common;

use common::{Client, ROOT_PW};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Proc {
    child: Child,
    url: String,
}

fn spawn(args: &[&str], root_pw: Option<&str>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kalam-testserver"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match root_pw {
        Some(p) => cmd.env("KALAMDB_ROOT_PASSWORD", p),
        None => cmd.env_remove("KALAMDB_ROOT_PASSWORD"),
    };
    let mut child = cmd.spawn().expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .trim()
        .strip_prefix("kalam-testserver listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    Proc { child, url }
}

fn signal(p: &mut Proc, sig: &str) -> i32 {
    let ok = Command::new("kill")
        .args([sig, &p.child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    p.child.wait().expect("wait").code().unwrap_or(-1)
}

#[tokio::test]
async fn binary_contract() {
    let dir = std::env::temp_dir().join(format!("kts-cli-{}", std::process::id()));
    let stat = dir.join("static");
    let data = dir.join("data");
    std::fs::create_dir_all(stat.join("pkg")).unwrap();
    std::fs::write(stat.join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(stat.join("pkg/app.wasm"), b"\0asm").unwrap();
    std::fs::write(stat.join("pkg/app.js"), "export {}").unwrap();
    let http = reqwest::Client::new();

    let mut p = spawn(
        &[
            "--static-dir",
            stat.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        Some(ROOT_PW),
    );
    let r = http.get(format!("{}/", p.url)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "<h1>demo</h1>");
    let r = http
        .get(format!("{}/pkg/app.wasm", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/wasm");
    let r = http
        .get(format!("{}/pkg/app.js", p.url))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let r = http.get(format!("{}/health", p.url)).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "healthy");
    // CORS preflight as a browser page on another port sends it.
    let r = http
        .request(reqwest::Method::OPTIONS, format!("{}/v1/api/sql", p.url))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(r.headers()["access-control-max-age"], "3600");
    // Data written with --data-dir survives a process restart.
    let c = Client::new(&p.url);
    let t = c.token("root", ROOT_PW).await;
    for sql in [
        "CREATE NAMESPACE app",
        "CREATE TABLE app.kv (k TEXT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED', ACCESS_LEVEL = 'PUBLIC')",
        "INSERT INTO app.kv (k, v) VALUES ('a', 1)",
    ] {
        c.ok(&t, sql).await;
    }
    assert_eq!(signal(&mut p, "-TERM"), 0);
    let mut p = spawn(&["--data-dir", data.to_str().unwrap()], Some(ROOT_PW));
    let c = Client::new(&p.url);
    let t = c.token("root", ROOT_PW).await;
    let v = c.ok(&t, "SELECT k, v FROM app.kv").await;
    assert_eq!(v["results"][0]["rows"], json!([["a", 1]]));
    assert_eq!(signal(&mut p, "-INT"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_root_password_setup_is_required() {
    let mut p = spawn(&[], None);
    let c = Client::new(&p.url);
    let v: Value = c
        .http
        .get(format!("{}/v1/api/auth/status", p.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["needs_setup"], true);
    let (status, v) = c
        .post(
            None,
            "/v1/api/auth/login",
            json!({"user": "root", "password": ""}),
        )
        .await;
    assert_eq!(status, 428);
    assert_eq!(v["error"], "setup_required");
    let (status, v) = c
        .post(None, "/v1/api/auth/setup", json!({"user": "admin", "password": "Admin-pass-1", "root_password": "Root-pass-1", "email": null}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["user"]["role"], "dba");
    let (status, _) = c
        .post(
            None,
            "/v1/api/auth/login",
            json!({"user": "root", "password": "Root-pass-1"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .post(
            None,
            "/v1/api/auth/setup",
            json!({"user": "admin2", "password": "Admin-pass-1", "root_password": "Root-pass-1"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(signal(&mut p, "-TERM"), 0);
}
