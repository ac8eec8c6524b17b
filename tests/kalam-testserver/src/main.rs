//! `kalam-testserver --listen 127.0.0.1:0 [--data-dir DIR] [--static-dir DIR] ...`

use kalam_testserver::{Config, TestServer};
use std::io::Write;
use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: kalam-testserver --listen ADDR [--data-dir DIR] [--static-dir DIR] \
         [--access-token-ttl-secs N] [--max-subscriptions-per-user N] [--default-query-limit N] \
         [--max-query-limit N] [--heartbeat-timeout-secs N] [--topic-visibility-timeout-secs N] \
         [--ws-outbound-queue N (default 128, 0 = unbounded)]\n\
         Root password: env KALAMDB_ROOT_PASSWORD (unset: setup required)."
    );
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut cfg = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        let num = |s: String| -> u64 { s.parse().unwrap_or_else(|_| usage()) };
        match a.as_str() {
            "--listen" => cfg.listen = val().parse().unwrap_or_else(|_| usage()),
            "--data-dir" => cfg.data_dir = Some(val().into()),
            "--static-dir" => cfg.static_dir = Some(val().into()),
            "--access-token-ttl-secs" => cfg.access_token_ttl = Duration::from_secs(num(val())),
            "--max-subscriptions-per-user" => cfg.max_subscriptions_per_user = num(val()) as usize,
            "--default-query-limit" => cfg.default_query_limit = num(val()) as usize,
            "--max-query-limit" => cfg.max_query_limit = num(val()) as usize,
            "--heartbeat-timeout-secs" => cfg.heartbeat_timeout_secs = num(val()),
            "--topic-visibility-timeout-secs" => {
                cfg.topic_visibility_timeout = Duration::from_secs(num(val()))
            }
            "--ws-outbound-queue" => cfg.ws_outbound_queue = num(val()) as usize,
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    cfg.root_password = std::env::var("KALAMDB_ROOT_PASSWORD").ok();
    cfg
}

#[tokio::main]
async fn main() {
    let cfg = parse_args();
    let server = match TestServer::try_start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kalam-testserver: {e}");
            std::process::exit(1);
        }
    };
    // Other tools wait for exactly this first line.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "kalam-testserver listening on {}", server.url());
    let _ = out.flush();
    shutdown_signal().await;
    server.shutdown().await;
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
