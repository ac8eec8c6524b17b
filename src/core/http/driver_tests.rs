//! The request driver against a fake clock and a scripted server: every command is checked,
//! every answer is fed back by hand.

use std::collections::HashMap;

use super::*;
use crate::core::http::auth::parse_rfc3339_ms;
use crate::core::http::envelope::decode_sql_response;
use crate::core::http::files::FormPart;
use crate::core::http::retry::{RequestKind, RetryPolicy};
use crate::core::http::url::paths;

const T0: &str = "2026-12-01T12:00:00Z";
const DML: &str =
    r#"{"status":"success","results":[{"row_count":1,"message":"Inserted 1 row(s)"}],"took":1}"#;
const EXPIRED: &str = r#"{"error":{"code":"TOKEN_EXPIRED","message":"Invalid credentials"},"results":[],"status":"error","took":0.1}"#;
const BUSY: &str = r#"{"error":"TOO_MANY_CONNECTIONS","message":"busy"}"#;

fn t0() -> i64 {
    parse_rfc3339_ms(T0).unwrap()
}

/// A login answer whose access token is `access`, expiring `exp` (RFC 3339).
fn login(access: &str, exp: &str) -> Response {
    let body = crate::core::json::json!({
        "user": {"id": "alice", "role": "user", "email": null, "created_at": T0, "updated_at": T0},
        "admin_ui_access": false,
        "expires_at": exp,
        "access_token": access,
        "refresh_token": format!("r-{access}"),
        "refresh_expires_at": "2027-01-01T00:00:00Z"
    });
    answer(200, &body.to_string())
}

fn answer(status: u16, body: &str) -> Response {
    Response {
        status,
        body: body.as_bytes().to_vec(),
        ..Response::default()
    }
}

fn basic() -> Credentials {
    Credentials::Basic {
        user: "alice".into(),
        password: "secret".into(),
    }
}

fn driver(credentials: Credentials, has_provider: bool) -> RequestDriver {
    RequestDriver::new(
        DriverConfig {
            base: BaseUrl::parse("http://db.test").unwrap(),
            timeout_ms: 5_000,
            retry: RetryPolicy::default(),
        },
        AuthState::new(credentials, has_provider),
        // Jitter at 0: delays are base × 2^n / 2.
        Box::new(|| 0.0),
    )
}

fn sql(kind: RequestKind) -> CallSpec {
    CallSpec::Request(RequestSpec {
        method: "POST",
        url: "http://db.test/v1/api/sql".into(),
        body: Body::Json(r#"{"sql":"x"}"#.into()),
        authenticated: true,
        kind,
        decode: Decode::Text(Box::new(|status, body| {
            decode_sql_response(status, body, None)
        })),
    })
}

/// The sends among `commands`: (send id, url, authorization).
fn sends(commands: &[Command]) -> Vec<(SendId, String, Option<String>)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Send { send, request } => {
                Some((*send, request.url.clone(), request.authorization.clone()))
            }
            _ => None,
        })
        .collect()
}

fn sleeps(commands: &[Command]) -> Vec<(TimerId, u32)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Sleep { timer, ms } => Some((*timer, *ms)),
            _ => None,
        })
        .collect()
}

fn resolved(commands: &[Command]) -> Vec<CallId> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Resolve { call, .. } => Some(*call),
            _ => None,
        })
        .collect()
}

fn rejected(commands: &[Command]) -> Vec<(CallId, String)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Reject { call, error } => Some((*call, error.code.clone())),
            _ => None,
        })
        .collect()
}

fn is_login(url: &str) -> bool {
    url.ends_with(paths::LOGIN)
}

/// A driver signed in as alice with token `a1` (expiring in an hour).
fn signed_in() -> RequestDriver {
    let mut d = driver(basic(), false);
    d.call(t0(), 999, CallSpec::AccessToken { force: false }, None);
    let out = d.take_commands();
    let (send, url, _) = sends(&out)[0].clone();
    assert!(is_login(&url));
    d.response(t0(), send, login("a1", "2026-12-01T13:00:00Z"));
    assert_eq!(resolved(&d.take_commands()), [999]);
    d
}

#[test]
fn twenty_calls_during_one_login_share_it() {
    let mut d = driver(basic(), false);
    for call in 1..=20 {
        d.call(t0(), call, sql(RequestKind::Read), None);
    }
    let out = d.take_commands();
    let logins = sends(&out);
    assert_eq!(logins.len(), 1, "one login for 20 calls");
    assert!(is_login(&logins[0].1));
    assert_eq!(logins[0].2, None, "basic credentials go in the body only");
    d.response(t0(), logins[0].0, login("a1", "2026-12-01T13:00:00Z"));
    let out = d.take_commands();
    let queries = sends(&out);
    assert_eq!(queries.len(), 20);
    assert!(
        queries
            .iter()
            .all(|(_, url, auth)| url.ends_with("/v1/api/sql")
                && auth.as_deref() == Some("Bearer a1"))
    );
    // Every parked call's wait timer is cancelled.
    let cancelled = out
        .iter()
        .filter(|c| matches!(c, Command::CancelTimer { .. }))
        .count();
    assert_eq!(cancelled, 20);
    for (send, _, _) in queries {
        d.response(t0(), send, answer(200, DML));
    }
    assert_eq!(resolved(&d.take_commands()).len(), 20);
    assert_eq!(d.pending_calls(), 0);
}

#[test]
fn twenty_calls_near_exp_share_one_refresh_sent_ahead_of_it() {
    let mut d = signed_in();
    // 30 s before exp (inside the 60 s lead): the token is renewed before it is used.
    let near = parse_rfc3339_ms("2026-12-01T12:59:30Z").unwrap();
    for call in 1..=20 {
        d.call(near, call, sql(RequestKind::Write), None);
    }
    let out = d.take_commands();
    let refreshes = sends(&out);
    assert_eq!(refreshes.len(), 1);
    assert!(refreshes[0].1.ends_with(paths::REFRESH));
    assert_eq!(refreshes[0].2.as_deref(), Some("Bearer r-a1"));
    d.response(near, refreshes[0].0, login("a2", "2026-12-01T14:00:00Z"));
    let queries = sends(&d.take_commands());
    assert_eq!(queries.len(), 20);
    assert!(queries
        .iter()
        .all(|(_, _, auth)| auth.as_deref() == Some("Bearer a2")));

    // Well before exp nothing is renewed.
    let mut d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let out = sends(&d.take_commands());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].2.as_deref(), Some("Bearer a1"));
}

#[test]
fn token_expired_on_a_write_is_retried_once_after_a_refresh_and_a_second_expiry_is_final() {
    let mut d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Write), None);
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.response(t0(), send, answer(401, EXPIRED));
    let out = d.take_commands();
    let refresh = sends(&out);
    assert_eq!(refresh.len(), 1);
    assert!(refresh[0].1.ends_with(paths::REFRESH));
    d.response(t0(), refresh[0].0, login("a2", "2026-12-01T13:00:00Z"));
    let again = sends(&d.take_commands());
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].2.as_deref(), Some("Bearer a2"));
    d.response(t0(), again[0].0, answer(401, EXPIRED));
    let out = d.take_commands();
    assert!(sends(&out).is_empty(), "no second refresh");
    assert_eq!(rejected(&out), [(1, "TOKEN_EXPIRED".to_string())]);
}

#[test]
fn every_authenticated_kind_refreshes_once_on_token_expired() {
    let plain = || {
        CallSpec::Request(RequestSpec {
            method: "GET",
            url: "http://db.test/v1/api/auth/me".into(),
            body: Body::None,
            authenticated: true,
            kind: RequestKind::Write,
            decode: Decode::Text(Box::new(ok_text)),
        })
    };
    let download = || {
        CallSpec::Request(RequestSpec {
            method: "GET",
            url: "http://db.test/v1/files/a/b/f".into(),
            body: Body::None,
            authenticated: true,
            kind: RequestKind::Read,
            decode: Decode::Bytes,
        })
    };
    for spec in [plain(), download()] {
        let mut d = signed_in();
        d.call(t0(), 1, spec, None);
        let (send, _, _) = sends(&d.take_commands())[0].clone();
        d.response(t0(), send, answer(401, EXPIRED));
        let refresh = sends(&d.take_commands());
        d.response(t0(), refresh[0].0, login("a2", "2026-12-01T13:00:00Z"));
        let again = sends(&d.take_commands());
        assert_eq!(again[0].2.as_deref(), Some("Bearer a2"));
        d.response(
            t0(),
            again[0].0,
            Response {
                status: 200,
                content_type: Some("text/plain".into()),
                body: b"ok".to_vec(),
                ..Response::default()
            },
        );
        let out = d.take_commands();
        let value = out.iter().find_map(|c| match c {
            Command::Resolve { value, .. } => Some(value.clone()),
            _ => None,
        });
        assert!(
            matches!(
                value,
                Some(Resolved::Text(ref t)) if t == "ok"
            ) || matches!(
                value,
                Some(Resolved::Bytes { ref content_type, ref body }) if content_type.as_deref() == Some("text/plain") && body == b"ok"
            )
        );
    }
}

#[test]
fn reads_retry_503_and_network_errors_with_backoff_and_writes_never_blindly() {
    let mut d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.response(t0(), send, answer(503, BUSY));
    let out = d.take_commands();
    assert!(sends(&out).is_empty(), "not sent again before the backoff");
    let (timer, ms) = sleeps(&out)[0];
    assert_eq!(ms, 125, "equal jitter at 0: base 250 / 2");
    d.timer_fired(t0() + 125, timer);
    let (send, _, auth) = sends(&d.take_commands())[0].clone();
    assert_eq!(auth.as_deref(), Some("Bearer a1"));
    d.transport_error(t0() + 125, send, KalamError::network("reset"));
    let out = d.take_commands();
    let (timer, ms) = sleeps(&out)[0];
    assert_eq!(ms, 250, "the delay doubles");
    d.timer_fired(t0() + 400, timer);
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.response(t0() + 400, send, answer(200, DML));
    assert_eq!(resolved(&d.take_commands()), [1]);

    for failure in [Err(KalamError::network("reset")), Ok(answer(503, BUSY))] {
        let mut d = signed_in();
        d.call(t0(), 2, sql(RequestKind::Write), None);
        let (send, _, _) = sends(&d.take_commands())[0].clone();
        match failure {
            Err(e) => d.transport_error(t0(), send, e),
            Ok(r) => d.response(t0(), send, r),
        }
        let out = d.take_commands();
        assert!(sends(&out).is_empty() && sleeps(&out).is_empty());
        assert_eq!(rejected(&out).len(), 1, "a write fails at once");
    }
}

#[test]
fn reads_give_up_after_max_retries() {
    let mut d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let mut now = t0();
    for _ in 0..3 {
        let (send, _, _) = sends(&d.take_commands())[0].clone();
        d.transport_error(now, send, KalamError::network("reset"));
        let (timer, ms) = sleeps(&d.take_commands())[0];
        now += i64::from(ms);
        d.timer_fired(now, timer);
    }
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.transport_error(now, send, KalamError::network("reset"));
    assert_eq!(rejected(&d.take_commands()), [(1, "NETWORK".to_string())]);
}

#[test]
fn retry_after_of_an_overload_answer_is_honoured() {
    let mut d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.response(
        t0(),
        send,
        Response {
            retry_after: Some("4".into()),
            ..answer(503, BUSY)
        },
    );
    assert_eq!(sleeps(&d.take_commands())[0].1, 4_000);

    // Longer than the cap (10 s): not worth waiting, the call fails now.
    d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.response(
        t0(),
        send,
        Response {
            retry_after: Some("300".into()),
            ..answer(429, r#"{"error":"RATE_LIMIT_EXCEEDED","message":"x"}"#)
        },
    );
    let out = d.take_commands();
    assert!(sleeps(&out).is_empty());
    assert_eq!(rejected(&out).len(), 1);
}

#[test]
fn a_provider_that_never_settles_times_out_every_waiter() {
    let mut d = driver(Credentials::None, true);
    d.call(t0(), 1, sql(RequestKind::Read), Some(1_000));
    d.call(t0() + 10, 2, sql(RequestKind::Read), Some(1_000));
    let out = d.take_commands();
    let asks: Vec<_> = out
        .iter()
        .filter_map(|c| match c {
            Command::AskProvider { flight } => Some(*flight),
            _ => None,
        })
        .collect();
    assert_eq!(asks.len(), 1, "one ask for both calls");
    // Timers: the flight's provider bound and each waiter's park bound.
    let provider_timer = out
        .iter()
        .find_map(|c| match c {
            Command::Sleep { timer, ms: 1_000 }
                if d.timers
                    .get(timer)
                    .is_some_and(|o| matches!(o, TimerOwner::Provider(_))) =>
            {
                Some(*timer)
            }
            _ => None,
        })
        .unwrap();
    d.timer_fired(t0() + 1_000, provider_timer);
    let out = d.take_commands();
    let mut failed = rejected(&out);
    failed.sort();
    assert_eq!(
        failed,
        [(1, "TIMEOUT".to_string()), (2, "TIMEOUT".to_string())]
    );
    assert!(out.iter().all(|c| match c {
        Command::Reject { error, .. } => error.message.contains("authProvider"),
        _ => true,
    }));
    // A late answer is ignored; the next call asks again.
    d.provider_result(t0() + 2_000, asks[0], Ok(Credentials::None));
    assert!(d.take_commands().is_empty());
    d.call(t0() + 3_000, 3, sql(RequestKind::Read), None);
    assert!(d
        .take_commands()
        .iter()
        .any(|c| matches!(c, Command::AskProvider { .. })));
}

#[test]
fn a_waiter_timing_out_on_a_provider_ask_names_the_provider() {
    let mut d = driver(Credentials::None, true);
    d.call(t0(), 1, sql(RequestKind::Read), Some(1_000));
    let out = d.take_commands();
    let park = out
        .iter()
        .find_map(|c| match c {
            Command::Sleep { timer, .. }
                if matches!(d.timers.get(timer), Some(TimerOwner::Park(1))) =>
            {
                Some(*timer)
            }
            _ => None,
        })
        .unwrap();
    d.timer_fired(t0() + 1_000, park);
    let out = d.take_commands();
    let Some(Command::Reject { error, .. }) =
        out.iter().find(|c| matches!(c, Command::Reject { .. }))
    else {
        panic!("{out:?}");
    };
    assert_eq!(error.code, "TIMEOUT");
    assert!(error.message.contains("authProvider"), "{}", error.message);
}

#[test]
fn a_provider_error_is_shared_by_the_waiters_of_its_flight() {
    let mut d = driver(Credentials::None, true);
    for call in 1..=5 {
        d.call(t0(), call, sql(RequestKind::Read), None);
    }
    let out = d.take_commands();
    let Some(Command::AskProvider { flight }) = out
        .iter()
        .find(|c| matches!(c, Command::AskProvider { .. }))
        .cloned()
    else {
        panic!("no ask: {out:?}");
    };
    d.provider_result(
        t0(),
        flight,
        Err(KalamError::new(codes::AUTH_FAILED, "signed out")),
    );
    let out = d.take_commands();
    assert_eq!(rejected(&out).len(), 5);
    assert!(rejected(&out).iter().all(|(_, code)| code == "AUTH_FAILED"));
    let asks = out
        .iter()
        .filter(|c| matches!(c, Command::AskProvider { .. }))
        .count();
    assert_eq!(asks, 0, "no stampede of new asks");
}

#[test]
fn an_abort_during_backoff_rejects_at_once() {
    let mut d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.transport_error(t0(), send, KalamError::network("reset"));
    let (timer, _) = sleeps(&d.take_commands())[0];
    d.abort(1);
    let out = d.take_commands();
    assert_eq!(rejected(&out), [(1, "ABORTED".to_string())]);
    assert!(out.contains(&Command::CancelTimer { timer }));
    d.timer_fired(t0() + 125, timer);
    assert!(
        d.take_commands().is_empty(),
        "nothing is sent after the abort"
    );
}

#[test]
fn an_abort_while_parked_on_another_calls_sign_in_rejects_only_that_call() {
    let mut d = driver(basic(), false);
    d.call(t0(), 1, sql(RequestKind::Read), None);
    d.call(t0(), 2, sql(RequestKind::Read), None);
    let login_send = sends(&d.take_commands())[0].0;
    d.abort(2);
    assert_eq!(rejected(&d.take_commands()), [(2, "ABORTED".to_string())]);
    // The starter aborting does not cancel the login either.
    d.call(t0(), 3, sql(RequestKind::Read), None);
    d.abort(1);
    let out = d.take_commands();
    assert!(!out.iter().any(|c| matches!(c, Command::CancelSend { .. })));
    d.response(t0(), login_send, login("a1", "2026-12-01T13:00:00Z"));
    let queries = sends(&d.take_commands());
    assert_eq!(queries.len(), 1, "only call 3 is still waiting");
    assert_eq!(d.auth().access_token(), Some("a1"));
}

#[test]
fn an_abort_while_sending_cancels_the_request() {
    let mut d = signed_in();
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let (send, _, _) = sends(&d.take_commands())[0].clone();
    d.abort(1);
    let out = d.take_commands();
    assert!(out.contains(&Command::CancelSend { send }));
    assert_eq!(rejected(&out), [(1, "ABORTED".to_string())]);
    d.response(t0(), send, answer(200, DML));
    assert!(d.take_commands().is_empty());
}

#[test]
fn a_call_parked_longer_than_its_timeout_fails_with_timeout() {
    let mut d = driver(basic(), false);
    d.call(t0(), 1, sql(RequestKind::Read), Some(60_000));
    d.call(t0(), 2, sql(RequestKind::Read), Some(500));
    let out = d.take_commands();
    let login_send = sends(&out)[0].0;
    let (timer, _) = *sleeps(&out).iter().find(|(_, ms)| *ms == 500).unwrap();
    d.timer_fired(t0() + 500, timer);
    let out = d.take_commands();
    assert_eq!(rejected(&out), [(2, "TIMEOUT".to_string())]);
    d.response(t0() + 600, login_send, login("a1", "2026-12-01T13:00:00Z"));
    assert_eq!(sends(&d.take_commands()).len(), 1, "call 1 goes on");
    // Sends carry the call's timeout for the shell to enforce.
    let mut d = signed_in();
    d.call(t0(), 7, sql(RequestKind::Read), Some(1234));
    let out = d.take_commands();
    assert!(matches!(&out[0], Command::Send { request, .. } if request.timeout_ms == 1234));
}

#[test]
fn an_upload_is_sent_again_once_after_token_expired_with_a_fresh_token() {
    let upload = || {
        CallSpec::Request(RequestSpec {
            method: "POST",
            url: "http://db.test/v1/api/sql".into(),
            body: Body::Form(vec![
                FormPart::Text {
                    name: "sql".into(),
                    value: "INSERT INTO t (f) VALUES (FILE(\"a\"))".into(),
                },
                FormPart::File {
                    name: "file:a".into(),
                    file: "a".into(),
                },
            ]),
            authenticated: true,
            kind: RequestKind::Upload,
            decode: Decode::Text(Box::new(|status, body| {
                decode_sql_response(status, body, None)
            })),
        })
    };
    let mut d = signed_in();
    d.call(t0(), 1, upload(), None);
    let out = d.take_commands();
    let Command::Send { send, request } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        request.call,
        Some(1),
        "the shell finds the call's files by it"
    );
    assert!(matches!(&request.body, Body::Form(parts) if parts.len() == 2));
    d.response(t0(), *send, answer(401, EXPIRED));
    let refresh = sends(&d.take_commands());
    d.response(t0(), refresh[0].0, login("a2", "2026-12-01T13:00:00Z"));
    let again = sends(&d.take_commands());
    assert_eq!(again[0].2.as_deref(), Some("Bearer a2"));
    // A network error on an upload is final.
    d.transport_error(t0(), again[0].0, KalamError::network("reset"));
    assert_eq!(rejected(&d.take_commands()), [(1, "NETWORK".to_string())]);
}

#[test]
fn credentials_replaced_mid_flight_supersede_the_old_sign_in() {
    let mut d = driver(basic(), false);
    d.call(t0(), 1, sql(RequestKind::Read), None);
    let old_login = sends(&d.take_commands())[0].0;
    d.set_credentials(
        t0(),
        Credentials::Basic {
            user: "bob".into(),
            password: "pw".into(),
        },
    );
    let out = d.take_commands();
    let new_login = out
        .iter()
        .find_map(|c| match c {
            Command::Send { send, request } if is_login(&request.url) => {
                Some((*send, request.body.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert!(matches!(&new_login.1, Body::Json(b) if b.contains("bob")));
    // The old identity's answer arrives late and is dropped.
    d.response(
        t0(),
        old_login,
        login("alice-token", "2026-12-01T13:00:00Z"),
    );
    assert!(d.take_commands().is_empty());
    assert_eq!(d.auth().access_token(), None);
    d.response(
        t0(),
        new_login.0,
        login("bob-token", "2026-12-01T13:00:00Z"),
    );
    let queries = sends(&d.take_commands());
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].2.as_deref(), Some("Bearer bob-token"));

    // A JWT replaces at once: the waiters go on with it.
    let mut d = driver(basic(), false);
    d.call(t0(), 1, sql(RequestKind::Read), None);
    d.take_commands();
    d.set_credentials(t0(), Credentials::Jwt { token: "j".into() });
    let queries = sends(&d.take_commands());
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].2.as_deref(), Some("Bearer j"));
}

#[test]
fn auth_calls_resolve_with_the_login_or_the_token() {
    let mut d = driver(basic(), false);
    d.call(t0(), 1, CallSpec::Login, None);
    d.call(t0(), 2, CallSpec::AccessToken { force: false }, None);
    let out = d.take_commands();
    assert_eq!(sends(&out).len(), 1);
    d.response(t0(), sends(&out)[0].0, login("a1", "2026-12-01T13:00:00Z"));
    let out = d.take_commands();
    let values: HashMap<CallId, Resolved> = out
        .into_iter()
        .filter_map(|c| match c {
            Command::Resolve { call, value } => Some((call, value)),
            _ => None,
        })
        .collect();
    assert!(matches!(&values[&1], Resolved::Text(t) if t.contains("\"access_token\":\"a1\"")));
    assert_eq!(values[&2], Resolved::Text("a1".into()));

    // Forced: renewed even though the token looks valid.
    d.call(t0(), 3, CallSpec::AccessToken { force: true }, None);
    let refresh = sends(&d.take_commands());
    assert!(refresh[0].1.ends_with(paths::REFRESH));
    d.response(t0(), refresh[0].0, login("a2", "2026-12-01T13:00:00Z"));
    let out = d.take_commands();
    assert!(out.contains(&Command::Resolve {
        call: 3,
        value: Resolved::Text("a2".into())
    }));

    // A refresh with an explicit token; a refused one is the call's error.
    d.call(
        t0(),
        4,
        CallSpec::Refresh {
            refresh_token: Some("other".into()),
        },
        None,
    );
    let refresh = sends(&d.take_commands());
    assert_eq!(refresh[0].2.as_deref(), Some("Bearer other"));
    d.response(
        t0(),
        refresh[0].0,
        answer(403, r#"{"error":"FORBIDDEN","message":"no"}"#),
    );
    assert_eq!(rejected(&d.take_commands()).len(), 1);
}

#[test]
fn unauthenticated_requests_carry_no_token_and_are_not_renewed() {
    let mut d = signed_in();
    d.call(
        t0(),
        1,
        CallSpec::Request(RequestSpec {
            method: "GET",
            url: "http://db.test/v1/api/healthcheck".into(),
            body: Body::None,
            authenticated: false,
            kind: RequestKind::Read,
            decode: Decode::Text(Box::new(ok_text)),
        }),
        None,
    );
    let out = sends(&d.take_commands());
    assert_eq!(out[0].2, None);
    d.response(t0(), out[0].0, answer(401, EXPIRED));
    assert_eq!(
        rejected(&d.take_commands()),
        [(1, "TOKEN_EXPIRED".to_string())]
    );
}
