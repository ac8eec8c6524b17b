//! Authentication (PROTOCOL.md §3): request bodies and response parsing for login, refresh,
//! me, status, setup, logout and health; JWT `exp` reading; and [`AuthState`], the token
//! state machine the shell drives before each request.
//!
//! Driving [`AuthState`] (every method returns the next [`AuthStep`]):
//!
//! ```text
//! step = auth.prepare(now)
//! loop:
//!   Ready{authorization, generation} -> send the request with that header; remember generation
//!   Login{body}                      -> POST /v1/api/auth/login body   -> step = auth.complete_login(status, text, now)
//!   Refresh{authorization}           -> POST /v1/api/auth/refresh      -> step = auth.complete_refresh(status, text, now)
//!   CallProvider                     -> creds = await authProvider()   -> step = auth.set_credentials(creds, now)
//!                                       (provider threw)               -> step = auth.fail(err)
//!   Wait                             -> await the refresh in flight    -> step = auth.prepare(now)
//!   Fail(err)                        -> reject with err
//! after a TOKEN_EXPIRED answer to a request sent with generation g:
//!   step = auth.on_token_expired(g, now); run the loop; retry the request once.
//! ```
//!
//! Single flight: only one login/refresh/provider call runs at a time (others get `Wait`),
//! and a call that failed with an old generation just retries with the newer token instead
//! of refreshing again. Basic credentials are only ever sent to the login endpoint.

use crate::core::json::{json, parse, parse_slice, Map, Number, ObjectWriter, ToJson, Value};

use crate::core::base64;
use crate::core::error::{codes, KalamError, Result};
use crate::core::http::envelope::parse_error_body;

// ------------------------------------------------------------------------------------------
// Wire types
// ------------------------------------------------------------------------------------------

/// The user object of login / refresh / me / setup answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub id: String,
    /// Lowercase: `user`, `service`, `dba`, `system`.
    pub role: String,
    pub email: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `{"id","role","email","created_at"?,"updated_at"?}` (`email` written as `null`).
impl ToJson for UserInfo {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("id", &self.id)
            .field("role", &self.role)
            .field("email", &self.email)
            .opt_field("created_at", &self.created_at)
            .opt_field("updated_at", &self.updated_at);
        w.finish();
    }
}

/// `POST /v1/api/auth/login` and `/refresh` 200 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResponse {
    pub user: UserInfo,
    pub admin_ui_access: bool,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub refresh_expires_at: Option<String>,
}

/// Every field, absent ones as `null` (what the TypeScript `LoginResponse` reads).
impl ToJson for LoginResponse {
    fn write_json(&self, out: &mut String) {
        let mut w = ObjectWriter::new(out);
        w.field("user", &self.user)
            .field("admin_ui_access", &self.admin_ui_access)
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at);
        w.finish();
    }
}

impl LoginResponse {
    /// Access-token expiry in Unix ms (from `expires_at`, else the JWT `exp`).
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.expires_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .or_else(|| jwt_claims(&self.access_token).ok()?.exp_ms())
    }

    /// Refresh-token expiry in Unix ms (from `refresh_expires_at`, else the JWT `exp`).
    pub fn refresh_expires_at_ms(&self) -> Option<i64> {
        self.refresh_expires_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .or_else(|| jwt_claims(self.refresh_token.as_deref()?).ok()?.exp_ms())
    }
}

/// `GET /v1/api/auth/me` 200 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeResponse {
    pub user: UserInfo,
    pub admin_ui_access: bool,
}

/// `GET /v1/api/auth/status` 200 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupStatus {
    pub needs_setup: bool,
    pub message: Option<String>,
}

/// `POST /v1/api/auth/setup` 200 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupResponse {
    pub user: UserInfo,
    pub message: Option<String>,
}

/// `GET /health` and `/v1/api/healthcheck` 200 body (loopback peers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthInfo {
    pub status: String,
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub build_date: Option<String>,
}

/// Login field limits (§3.4).
pub const MAX_USER_BYTES: usize = 128;
pub const MAX_PASSWORD_BYTES: usize = 256;

fn check_user_password(user: &str, password: &str) -> Result<()> {
    if user.is_empty() {
        return Err(KalamError::invalid_argument("the user name is empty"));
    }
    if user.len() > MAX_USER_BYTES {
        return Err(KalamError::invalid_argument(format!(
            "the user name is longer than {MAX_USER_BYTES} bytes"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(KalamError::invalid_argument(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// `{"user":…,"password":…}` for `POST /v1/api/auth/login`.
pub fn login_body(user: &str, password: &str) -> Result<String> {
    check_user_password(user, password)?;
    Ok(json!({ "user": user, "password": password }).to_string())
}

/// Body for `POST /v1/api/auth/setup` (first-run; does not log in).
pub fn setup_body(
    user: &str,
    password: &str,
    root_password: &str,
    email: Option<&str>,
) -> Result<String> {
    check_user_password(user, password)?;
    Ok(json!({
        "user": user, "password": password, "root_password": root_password, "email": email
    })
    .to_string())
}

/// The `Authorization` header value for a token (exact `Bearer ` prefix, §1.1).
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A JSON object read field by field (hand-written readers instead of serde derives: a
/// derive pulls serde's typed deserializer and float formatting into the .wasm). Absent or
/// `null` optional fields are `None`; a field of the wrong type is an error naming it.
struct Fields(Map);

type Field<T> = std::result::Result<T, String>;

impl Fields {
    fn of(value: Value) -> Field<Fields> {
        match value {
            Value::Object(map) => Ok(Fields(map)),
            _ => Err("not a JSON object".into()),
        }
    }

    fn opt_str(&mut self, key: &str) -> Field<Option<String>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{key}` is not a string")),
        }
    }

    fn str(&mut self, key: &str) -> Field<String> {
        self.opt_str(key)?
            .ok_or_else(|| format!("`{key}` is missing"))
    }

    /// `default`: the value when the field is absent (`None`: it is required).
    fn bool(&mut self, key: &str, default: Option<bool>) -> Field<bool> {
        match self.0.remove(key) {
            Some(Value::Bool(b)) => Ok(b),
            None => default.ok_or_else(|| format!("`{key}` is missing")),
            Some(_) => Err(format!("`{key}` is not a boolean")),
        }
    }

    fn opt_number(&mut self, key: &str) -> Field<Option<Number>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n)),
            Some(_) => Err(format!("`{key}` is not a number")),
        }
    }

    fn user(&mut self) -> Field<UserInfo> {
        let mut u = Fields::of(self.0.remove("user").unwrap_or(Value::Null))
            .map_err(|_| String::from("`user` is not a JSON object"))?;
        Ok(UserInfo {
            id: u.str("id")?,
            role: u.str("role")?,
            email: u.opt_str("email")?,
            created_at: u.opt_str("created_at")?,
            updated_at: u.opt_str("updated_at")?,
        })
    }
}

fn parse_json_answer<T>(
    status: u16,
    body: &str,
    what: &str,
    read: fn(&mut Fields) -> Field<T>,
) -> Result<T> {
    if !(200..300).contains(&status) {
        return Err(parse_error_body(status, body));
    }
    parse(body)
        .map_err(|e| e.to_string())
        .and_then(Fields::of)
        .and_then(|mut f| read(&mut f))
        .map_err(|e| {
            KalamError::protocol(format!("unexpected {what} response: {e}")).with_status(status)
        })
}

/// Login or refresh answer. Errors: `{"error":"unauthorized",…}` → `UNAUTHORIZED`,
/// `ACCOUNT_LOCKED`, `RATE_LIMITED` (retryable), `FORBIDDEN`, `SETUP_REQUIRED`, … with the
/// HTTP status; text/plain 400 → `HTTP_ERROR`.
pub fn parse_login_response(status: u16, body: &str) -> Result<LoginResponse> {
    let resp = parse_json_answer(status, body, "login", |f| {
        Ok(LoginResponse {
            user: f.user()?,
            admin_ui_access: f.bool("admin_ui_access", Some(false))?,
            access_token: f.str("access_token")?,
            refresh_token: f.opt_str("refresh_token")?,
            expires_at: f.opt_str("expires_at")?,
            refresh_expires_at: f.opt_str("refresh_expires_at")?,
        })
    })?;
    if resp.access_token.is_empty() {
        return Err(KalamError::protocol("login response without access_token").with_status(status));
    }
    Ok(resp)
}

pub fn parse_me_response(status: u16, body: &str) -> Result<MeResponse> {
    parse_json_answer(status, body, "me", |f| {
        Ok(MeResponse {
            user: f.user()?,
            admin_ui_access: f.bool("admin_ui_access", Some(false))?,
        })
    })
}

pub fn parse_status_response(status: u16, body: &str) -> Result<SetupStatus> {
    parse_json_answer(status, body, "status", |f| {
        Ok(SetupStatus {
            needs_setup: f.bool("needs_setup", None)?,
            message: f.opt_str("message")?,
        })
    })
}

pub fn parse_setup_response(status: u16, body: &str) -> Result<SetupResponse> {
    parse_json_answer(status, body, "setup", |f| {
        Ok(SetupResponse {
            user: f.user()?,
            message: f.opt_str("message")?,
        })
    })
}

pub fn parse_health_response(status: u16, body: &str) -> Result<HealthInfo> {
    parse_json_answer(status, body, "health", |f| {
        Ok(HealthInfo {
            status: f.str("status")?,
            version: f.opt_str("version")?,
            api_version: f.opt_str("api_version")?,
            build_date: f.opt_str("build_date")?,
        })
    })
}

// ------------------------------------------------------------------------------------------
// Time and JWT
// ------------------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 (`2026-11-24T14:44:35.688166386+00:00`, `…Z`, any fraction length, `t`/space
/// separator) → Unix milliseconds. `None` if malformed.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i];
        let ms_digits: String = frac.chars().chain("000".chars()).take(3).collect();
        millis = ms_digits.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            let off = h * 60 + m;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// The JWT claims a client reads (no signature check, §3.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JwtClaims {
    pub sub: Option<String>,
    pub iss: Option<String>,
    /// Unix seconds (NumericDate: may have a fraction), exact.
    pub exp: Option<Number>,
    pub iat: Option<Number>,
    pub role: Option<String>,
    pub token_type: Option<String>,
}

impl JwtClaims {
    pub fn exp_ms(&self) -> Option<i64> {
        self.exp.as_ref().map(seconds_to_ms)
    }
    pub fn iat_ms(&self) -> Option<i64> {
        self.iat.as_ref().map(seconds_to_ms)
    }
}

/// Seconds → milliseconds, truncated and saturating like `(s * 1000.0) as i64`, on the
/// exact digits (no float parse).
fn seconds_to_ms(seconds: &Number) -> i64 {
    let ms = seconds.trunc_scaled(3);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// Decodes the payload of a JWT (`header.payload.signature`, base64url). Opaque tokens
/// (not three segments, or undecodable) → `INVALID_ARGUMENT`.
pub fn jwt_claims(token: &str) -> Result<JwtClaims> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KalamError::invalid_argument("the token is not a JWT"));
    };
    let bytes = base64::decode_url(payload).map_err(|e| {
        KalamError::invalid_argument(format!("the JWT payload is not base64url: {e}"))
    })?;
    let value = parse_slice(&bytes)
        .map_err(|e| KalamError::invalid_argument(format!("the JWT payload is not JSON: {e}")))?;
    let read = |mut f: Fields| -> Field<JwtClaims> {
        Ok(JwtClaims {
            sub: f.opt_str("sub")?,
            iss: f.opt_str("iss")?,
            exp: f.opt_number("exp")?,
            iat: f.opt_number("iat")?,
            role: f.opt_str("role")?,
            token_type: f.opt_str("token_type")?,
        })
    };
    Fields::of(value)
        .and_then(read)
        .map_err(|e| KalamError::invalid_argument(format!("the JWT payload: {e}")))
}

// ------------------------------------------------------------------------------------------
// The state machine
// ------------------------------------------------------------------------------------------

/// What the app configured (or the auth provider returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    /// Exchanged on `POST /v1/api/auth/login` only; never sent anywhere else.
    Basic {
        user: String,
        password: String,
    },
    Jwt {
        token: String,
    },
}

impl Credentials {
    /// From the JS `Auth.*` object: `{"type":"basic","username"|"user":…,"password":…}`,
    /// `{"type":"jwt","token":…}`, `{"type":"none"}` (or `null`).
    pub fn from_json(text: &str) -> Result<Credentials> {
        let v = parse(text)
            .map_err(|e| KalamError::invalid_argument(format!("credentials are not JSON: {e}")))?;
        if v.is_null() {
            return Ok(Credentials::None);
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        match s("type") {
            Some("none") => Ok(Credentials::None),
            Some("jwt") => match s("token") {
                Some(t) if !t.is_empty() => Ok(Credentials::Jwt {
                    token: t.to_string(),
                }),
                _ => Err(KalamError::invalid_argument("jwt credentials need a token")),
            },
            Some("basic") => {
                let user = s("username").or_else(|| s("user")).unwrap_or_default();
                let password = s("password").unwrap_or_default();
                check_user_password(user, password)?;
                Ok(Credentials::Basic {
                    user: user.to_string(),
                    password: password.to_string(),
                })
            }
            _ => Err(KalamError::invalid_argument(
                "credentials need type \"basic\", \"jwt\" or \"none\"",
            )),
        }
    }
}

/// The next thing the shell must do (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum AuthStep {
    /// Send the request with this `Authorization` value (`None`: no header). Remember
    /// `generation` for [`AuthState::on_token_expired`].
    Ready {
        authorization: Option<String>,
        generation: u64,
    },
    /// `POST /v1/api/auth/login` with this JSON body (no Authorization header).
    Login {
        body: String,
    },
    /// `POST /v1/api/auth/refresh` with this `Authorization` value and no body.
    Refresh {
        authorization: String,
    },
    /// Call the app's auth provider, then [`AuthState::set_credentials`].
    CallProvider,
    /// A login/refresh is already running: wait for it, then [`AuthState::prepare`].
    Wait,
    Fail(KalamError),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    value: String,
    expires_ms: Option<i64>,
    issued_ms: Option<i64>,
}

impl Token {
    fn new(value: String, expires_ms: Option<i64>) -> Token {
        let claims = jwt_claims(&value).ok();
        Token {
            expires_ms: expires_ms.or_else(|| claims.as_ref()?.exp_ms()),
            issued_ms: claims.as_ref().and_then(JwtClaims::iat_ms),
            value,
        }
    }
}

/// Refresh this long before `exp` at most (and at most 10% of the token's lifetime).
pub const REFRESH_LEAD_MS: i64 = 60_000;
/// A refresh token this close to expiry is not used.
const REFRESH_TOKEN_MARGIN_MS: i64 = 5_000;

/// Token state for one client. See the module docs for how to drive it.
#[derive(Debug, Clone)]
pub struct AuthState {
    credentials: Credentials,
    has_provider: bool,
    access: Option<Token>,
    refresh: Option<Token>,
    last_login: Option<LoginResponse>,
    generation: u64,
    in_flight: bool,
    /// The server rejected the provider's last credentials: ask the provider again before
    /// the next login instead of resending them.
    stale: bool,
}

impl AuthState {
    /// `has_provider`: the app gave an async auth provider that can be asked again for
    /// fresh credentials (JWT apps renew through it).
    pub fn new(credentials: Credentials, has_provider: bool) -> AuthState {
        let mut state = AuthState {
            credentials: Credentials::None,
            has_provider,
            access: None,
            refresh: None,
            last_login: None,
            generation: 0,
            in_flight: false,
            stale: false,
        };
        state.install(credentials);
        state
    }

    fn install(&mut self, credentials: Credentials) {
        if let Credentials::Jwt { token } = &credentials {
            self.access = Some(Token::new(token.clone(), None));
            self.refresh = None;
        } else if self.credentials != credentials {
            self.access = None;
            self.refresh = None;
        }
        self.credentials = credentials;
    }

    /// Bumped whenever the access token changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Whether a login/refresh/provider call is running.
    pub fn is_refreshing(&self) -> bool {
        self.in_flight
    }

    pub fn access_token(&self) -> Option<&str> {
        self.access.as_ref().map(|t| t.value.as_str())
    }

    /// The current `Authorization` header value, if there is an access token.
    pub fn authorization(&self) -> Option<String> {
        self.access_token().map(bearer)
    }

    /// The last successful login/refresh answer (what `login()` / `refreshToken()` resolve
    /// with).
    pub fn last_login(&self) -> Option<&LoginResponse> {
        self.last_login.as_ref()
    }

    /// Access-token expiry (Unix ms), when known.
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.access.as_ref()?.expires_ms
    }

    /// Whether the access token is due for renewal at `now_ms`: within
    /// `min(60 s, 10% of its lifetime)` of `exp`. Unknown expiry → false.
    pub fn needs_refresh(&self, now_ms: i64) -> bool {
        let Some(token) = &self.access else {
            return false;
        };
        let Some(exp) = token.expires_ms else {
            return false;
        };
        let lead = match token.issued_ms {
            Some(iat) if exp > iat => REFRESH_LEAD_MS.min((exp - iat) / 10),
            _ => REFRESH_LEAD_MS,
        };
        now_ms >= exp - lead
    }

    fn usable_refresh(&self, now_ms: i64) -> Option<String> {
        let t = self.refresh.as_ref()?;
        match t.expires_ms {
            Some(exp) if exp - REFRESH_TOKEN_MARGIN_MS <= now_ms => None,
            _ => Some(bearer(&t.value)),
        }
    }

    fn ready(&self) -> AuthStep {
        AuthStep::Ready {
            authorization: self.authorization(),
            generation: self.generation,
        }
    }

    /// Starts renewing (single flight): refresh token → basic login → provider.
    fn start_renewal(&mut self, now_ms: i64) -> Option<AuthStep> {
        let step = if let Some(authorization) = self.usable_refresh(now_ms) {
            AuthStep::Refresh { authorization }
        } else if self.stale && self.has_provider {
            AuthStep::CallProvider
        } else if let Credentials::Basic { user, password } = &self.credentials {
            match login_body(user, password) {
                Ok(body) => AuthStep::Login { body },
                Err(e) => return Some(AuthStep::Fail(e)),
            }
        } else if self.has_provider {
            AuthStep::CallProvider
        } else {
            return None;
        };
        self.in_flight = true;
        Some(step)
    }

    /// Before a request: what to do to get a usable access token.
    pub fn prepare(&mut self, now_ms: i64) -> AuthStep {
        if self.in_flight {
            return AuthStep::Wait;
        }
        let have_token = self.access.is_some();
        match &self.credentials {
            Credentials::None if !have_token => {
                // Ask the provider once up front; after it answered "none", go without.
                if self.has_provider && self.generation == 0 {
                    self.in_flight = true;
                    return AuthStep::CallProvider;
                }
                return self.ready();
            }
            Credentials::Basic { .. } if !have_token => {
                return self.start_renewal(now_ms).unwrap_or_else(|| self.ready());
            }
            _ => {}
        }
        if self.needs_refresh(now_ms) {
            // Without a way to renew, send the token anyway: the server has 60 s leeway and
            // clocks drift; it answers TOKEN_EXPIRED if it really is expired.
            if let Some(step) = self.start_renewal(now_ms) {
                return step;
            }
        }
        self.ready()
    }

    /// After a `TOKEN_EXPIRED` answer to a request sent with `failed_generation`: retry at
    /// once if the token changed meanwhile, wait if a renewal runs, else start one. No way
    /// to renew (a fixed `Auth.jwt` without provider) → `Fail(TOKEN_EXPIRED)`, the server's
    /// code, so the app knows to supply a new token.
    pub fn on_token_expired(&mut self, failed_generation: u64, now_ms: i64) -> AuthStep {
        if failed_generation != self.generation {
            return if self.in_flight {
                AuthStep::Wait
            } else {
                self.ready()
            };
        }
        if self.in_flight {
            return AuthStep::Wait;
        }
        match self.start_renewal(now_ms) {
            Some(step) => step,
            None => AuthStep::Fail(
                KalamError::new(
                    crate::core::http::envelope::TOKEN_EXPIRED,
                    "the access token expired and no credentials can renew it",
                )
                .with_status(401),
            ),
        }
    }

    /// Forces a login with the configured basic credentials (the public `login()`). With an
    /// auth provider and no basic credentials yet (or rejected ones), the provider is asked
    /// first; the shell checks afterwards that it gave basic credentials.
    pub fn begin_login(&mut self) -> AuthStep {
        if self.in_flight {
            return AuthStep::Wait;
        }
        if self.has_provider
            && (self.stale || !matches!(self.credentials, Credentials::Basic { .. }))
        {
            self.in_flight = true;
            return AuthStep::CallProvider;
        }
        match &self.credentials {
            Credentials::Basic { user, password } => match login_body(user, password) {
                Ok(body) => {
                    self.in_flight = true;
                    AuthStep::Login { body }
                }
                Err(e) => AuthStep::Fail(e),
            },
            _ => AuthStep::Fail(KalamError::invalid_argument(
                "login() needs basic (user/password) credentials",
            )),
        }
    }

    /// Forces a refresh (the public `refreshToken()`): refresh token, else re-login, else
    /// the provider.
    pub fn begin_refresh(&mut self, now_ms: i64) -> AuthStep {
        if self.in_flight {
            return AuthStep::Wait;
        }
        self.start_renewal(now_ms).unwrap_or_else(|| {
            AuthStep::Fail(KalamError::new(
                codes::AUTH_FAILED,
                "no refresh token, credentials or auth provider to refresh with",
            ))
        })
    }

    fn accept(&mut self, resp: LoginResponse) -> AuthStep {
        let access_exp = resp.expires_at_ms();
        let refresh_exp = resp.refresh_expires_at_ms();
        self.access = Some(Token::new(resp.access_token.clone(), access_exp));
        self.refresh = resp
            .refresh_token
            .clone()
            .filter(|t| !t.is_empty())
            .map(|t| Token::new(t, refresh_exp));
        self.last_login = Some(resp);
        self.generation += 1;
        self.in_flight = false;
        self.ready()
    }

    /// The login answer. Failure ends the flight with the server's error (e.g.
    /// `UNAUTHORIZED` 401, `ACCOUNT_LOCKED`, `RATE_LIMITED` 429 retryable). Rejected
    /// credentials (401/403) that came from the auth provider are not sent again: the next
    /// renewal asks the provider first.
    pub fn complete_login(&mut self, status: u16, body: &str, _now_ms: i64) -> AuthStep {
        match parse_login_response(status, body) {
            Ok(resp) => self.accept(resp),
            Err(e) => {
                self.in_flight = false;
                if matches!(status, 401 | 403) && self.has_provider {
                    self.stale = true;
                }
                AuthStep::Fail(e)
            }
        }
    }

    /// The refresh answer. A 401 (expired/invalid refresh token) drops the refresh token
    /// and falls back to a basic login or the provider when there is one; other failures
    /// end the flight with the error (tokens kept).
    pub fn complete_refresh(&mut self, status: u16, body: &str, now_ms: i64) -> AuthStep {
        match parse_login_response(status, body) {
            Ok(resp) => self.accept(resp),
            Err(e) => {
                self.in_flight = false;
                if status == 401 {
                    self.refresh = None;
                    if let Some(step) = self.start_renewal(now_ms) {
                        return step;
                    }
                }
                AuthStep::Fail(e)
            }
        }
    }

    /// New credentials (from the auth provider, or set by the app). JWT → installed,
    /// `Ready`; Basic → continues with a `Login`; None → `Ready` without a header.
    pub fn set_credentials(&mut self, credentials: Credentials, _now_ms: i64) -> AuthStep {
        self.in_flight = false;
        self.stale = false;
        let changed = self.credentials != credentials;
        self.install(credentials);
        match &self.credentials {
            Credentials::Jwt { .. } => {
                self.generation += 1;
                self.ready()
            }
            Credentials::Basic { .. } => {
                if changed {
                    self.generation += 1;
                }
                self.begin_login()
            }
            Credentials::None => {
                self.access = None;
                self.refresh = None;
                self.generation += 1;
                self.ready()
            }
        }
    }

    /// The renewal failed outside the core (provider threw, network error): ends the
    /// flight. Transport failures (`NETWORK`, `TIMEOUT`, `ABORTED`) are returned as they
    /// are, so apps can tell "offline" from "refused"; anything else becomes
    /// `Fail(AUTH_FAILED)` carrying the cause's message and `retryable`.
    pub fn fail(&mut self, cause: KalamError) -> AuthStep {
        self.in_flight = false;
        if matches!(
            cause.code.as_str(),
            codes::NETWORK | codes::TIMEOUT | codes::ABORTED
        ) {
            return AuthStep::Fail(cause);
        }
        let mut err =
            KalamError::new(codes::AUTH_FAILED, cause.message.clone()).retryable(cause.retryable);
        err.status = cause.status;
        err.details = Some(cause.code);
        AuthStep::Fail(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::http::envelope::tests::http_exchanges;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            base64::encode_url(br#"{"typ":"JWT","alg":"HS256"}"#),
            base64::encode_url(payload.as_bytes())
        )
    }

    fn login_json(access: &str, refresh: &str, exp: &str) -> String {
        json!({
            "user": {"id": "alice", "role": "user", "email": null},
            "admin_ui_access": false,
            "expires_at": exp,
            "access_token": access,
            "refresh_token": refresh,
            "refresh_expires_at": "2026-11-30T14:44:35.688167009+00:00"
        })
        .to_string()
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2026-11-24T14:44:35.688166386+00:00"),
            Some(1_795_531_475_688)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-24T16:44:35.5+02:00"),
            Some(1_795_531_475_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00-01:30"),
            Some(951_787_800_000)
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Some(-1000));
        for bad in [
            "",
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T14:44:35",
            "2026-11-24T14:44:35.Z",
            "2026-11-24T14:44:35+0000",
            "2026-11-24T14:44:35Zx",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_jwt_claims() {
        // The recorded (expired, throwaway) access token from 10-auth.json.
        let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZTQ0NTA3MiIsImlzcyI6ImthbGFtZGIiLCJleHAiOjE3OTU1MzE0NzUsImlhdCI6MTc5NTQ0NTA3NSwiZW1haWwiOm51bGwsInJvbGUiOiJ1c2VyIiwidG9rZW5fdHlwZSI6ImFjY2VzcyJ9.8Exuix7RXRV9FZ4oHn4OeJCj03iyge8eq4APhsduv-c";
        let c = jwt_claims(token).unwrap();
        assert_eq!(c.sub.as_deref(), Some("alice445072"));
        assert_eq!(c.exp_ms(), Some(1_795_531_475_000));
        assert_eq!(c.iat_ms(), Some(1_795_445_075_000));
        assert_eq!(c.role.as_deref(), Some("user"));
        assert_eq!(c.token_type.as_deref(), Some("access"));
        for bad in [
            "opaque",
            "a.b",
            "a.!!!.c",
            "a.b.c.d",
            &format!("x.{}.y", base64::encode_url(b"nope")),
        ] {
            assert_eq!(
                jwt_claims(bad).unwrap_err().code,
                codes::INVALID_ARGUMENT,
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_recorded_auth_answers() {
        let logins = http_exchanges("10-auth.json", "/v1/api/auth/login");
        for (req, status, body) in &logins {
            let res = parse_login_response(*status, body);
            match status {
                200 => {
                    let r = res.unwrap();
                    assert_eq!(r.user.id, "alice445072");
                    assert_eq!(r.expires_at_ms(), Some(1_795_531_475_688));
                    assert!(r.refresh_expires_at_ms().unwrap() > r.expires_at_ms().unwrap());
                    assert_eq!(r.user.email, None);
                }
                401 => assert_eq!(res.unwrap_err().code, "UNAUTHORIZED", "{req}"),
                400 => {
                    let e = res.unwrap_err();
                    assert_eq!((e.code.as_str(), e.status), (codes::HTTP_ERROR, Some(400)));
                    assert!(e.message.starts_with("Json deserialize error"));
                }
                _ => panic!("unexpected {status}"),
            }
        }
        for (_, status, body) in http_exchanges("10-auth.json", "/v1/api/auth/refresh") {
            let res = parse_login_response(status, &body);
            if status == 200 {
                assert!(res.unwrap().refresh_token.is_some());
            } else {
                let e = res.unwrap_err();
                assert_eq!(
                    (e.code.as_str(), e.message.as_str()),
                    ("UNAUTHORIZED", "Refresh endpoint requires a refresh token")
                );
            }
        }
        for (_, status, body) in http_exchanges("10-auth.json", "/v1/api/auth/me") {
            let me = parse_me_response(status, &body).unwrap();
            assert_eq!((me.user.role.as_str(), me.admin_ui_access), ("user", false));
        }
        for (_, status, body) in http_exchanges("10-auth.json", "/v1/api/auth/status") {
            assert!(!parse_status_response(status, &body).unwrap().needs_setup);
        }
        for (_, status, body) in http_exchanges("10-auth.json", "/v1/api/healthcheck") {
            let h = parse_health_response(status, &body).unwrap();
            assert_eq!(
                (h.status.as_str(), h.api_version.as_deref()),
                ("healthy", Some("v1"))
            );
        }
        let e = parse_health_response(
            403,
            r#"{"error":"Access denied. Health endpoint is localhost-only."}"#,
        )
        .unwrap_err();
        assert_eq!(e.status, Some(403));
        let e =
            parse_login_response(429, r#"{"error":"rate_limited","message":"slow"}"#).unwrap_err();
        assert!(e.retryable);
        let e = parse_setup_response(409, r#"{"error":"already_configured","message":"done"}"#)
            .unwrap_err();
        assert_eq!(e.code, "ALREADY_CONFIGURED");
        assert_eq!(
            parse_login_response(200, "{}").unwrap_err().code,
            codes::PROTOCOL
        );
        // Hand-written readers: a field of the wrong type, a missing required field or a
        // non-object body is PROTOCOL with the status, naming the field.
        for (body, names) in [
            (
                r#"{"user":{"id":"a","role":"user"},"access_token":7}"#,
                "access_token",
            ),
            (r#"{"user":{"id":"a"},"access_token":"t"}"#, "role"),
            (r#"{"user":1,"access_token":"t"}"#, "user"),
            (
                r#"{"user":{"id":"a","role":"user"},"access_token":"t","admin_ui_access":null}"#,
                "admin_ui_access",
            ),
            ("[]", "object"),
        ] {
            let e = parse_login_response(200, body).unwrap_err();
            assert_eq!(
                (e.code.as_str(), e.status),
                (codes::PROTOCOL, Some(200)),
                "{body}"
            );
            assert!(e.message.contains(names), "{}", e.message);
        }
        assert!(parse_status_response(200, "{}").is_err());
        let c = jwt_claims(&jwt(r#"{"sub":null,"exp":5}"#)).unwrap();
        assert_eq!((c.exp_ms(), c.sub), (Some(5000), None));
        let c = jwt_claims(&jwt(r#"{"exp":1795531475.6789,"iat":-1.5}"#)).unwrap();
        assert_eq!(
            (c.exp_ms(), c.iat_ms()),
            (Some(1_795_531_475_678), Some(-1500))
        );
        let c = jwt_claims(&jwt(r#"{"exp":1e300}"#)).unwrap();
        assert_eq!(c.exp_ms(), Some(i64::MAX));
        assert!(jwt_claims(&jwt(r#"{"exp":"soon"}"#)).is_err());
    }

    #[test]
    fn login_responses_are_written_back_like_the_derive() {
        let body = r#"{"user":{"id":"alice","role":"user","email":null,"created_at":"c"},"admin_ui_access":true,"expires_at":"2026-11-30T14:44:35Z","access_token":"a","refresh_token":"r"}"#;
        let resp = parse_login_response(200, body).unwrap();
        assert_eq!(
            resp.to_json(),
            r#"{"user":{"id":"alice","role":"user","email":null,"created_at":"c"},"admin_ui_access":true,"access_token":"a","refresh_token":"r","expires_at":"2026-11-30T14:44:35Z","refresh_expires_at":null}"#
        );
    }

    #[test]
    fn bodies() {
        let text = login_body("alice", "p\"w").unwrap();
        assert_eq!(text, r#"{"user":"alice","password":"p\"w"}"#);
        let login = parse(&text).unwrap();
        assert_eq!(login, json!({"user": "alice", "password": "p\"w"}));
        assert!(login_body("", "x").is_err());
        assert!(login_body(&"u".repeat(129), "x").is_err());
        assert!(login_body("u", &"p".repeat(257)).is_err());
        let v = parse(&setup_body("admin", "pw", "root", None).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"user": "admin", "password": "pw", "root_password": "root", "email": null})
        );
        assert_eq!(bearer("t"), "Bearer t");
        assert_eq!(
            Credentials::from_json(r#"{"type":"basic","username":"a","password":"b"}"#).unwrap(),
            Credentials::Basic {
                user: "a".into(),
                password: "b".into()
            }
        );
        assert_eq!(
            Credentials::from_json(r#"{"type":"jwt","token":"t"}"#).unwrap(),
            Credentials::Jwt { token: "t".into() }
        );
        assert_eq!(
            Credentials::from_json(r#"{"type":"none"}"#).unwrap(),
            Credentials::None
        );
        assert_eq!(Credentials::from_json("null").unwrap(), Credentials::None);
        assert!(Credentials::from_json(r#"{"type":"jwt"}"#).is_err());
        assert!(Credentials::from_json(r#"{"type":"oauth"}"#).is_err());
    }

    const NOW: i64 = 1_795_445_075_000; // 2026-11-23T14:44:35Z

    #[test]
    fn basic_credentials_log_in_first_and_never_leak() {
        let mut auth = AuthState::new(
            Credentials::Basic {
                user: "alice".into(),
                password: "pw".into(),
            },
            false,
        );
        let AuthStep::Login { body } = auth.prepare(NOW) else {
            panic!()
        };
        assert!(body.contains("\"pw\""));
        assert_eq!(auth.prepare(NOW), AuthStep::Wait);
        let access = jwt(&format!(
            r#"{{"exp":{},"iat":{}}}"#,
            NOW / 1000 + 86_400,
            NOW / 1000
        ));
        let step =
            auth.complete_login(200, &login_json(&access, "r1", "2026-11-24T14:44:35Z"), NOW);
        assert_eq!(
            step,
            AuthStep::Ready {
                authorization: Some(format!("Bearer {access}")),
                generation: 1
            }
        );
        assert_eq!(auth.prepare(NOW + 1000), step);
        assert!(!auth.authorization().unwrap().contains("pw"));
        // Near expiry: refresh with the refresh token.
        let exp = NOW + 86_400_000;
        assert!(!auth.needs_refresh(exp - 60_001));
        assert!(auth.needs_refresh(exp - 60_000));
        assert_eq!(
            auth.prepare(exp - 30_000),
            AuthStep::Refresh {
                authorization: "Bearer r1".into()
            }
        );
        let step = auth.complete_refresh(
            200,
            &login_json("a2", "r2", "2026-11-25T14:44:35Z"),
            exp - 30_000,
        );
        assert_eq!(
            step,
            AuthStep::Ready {
                authorization: Some("Bearer a2".into()),
                generation: 2
            }
        );
        // A rejected refresh token falls back to a login.
        auth.on_token_expired(2, NOW);
        let step = auth.complete_refresh(
            401,
            r#"{"error":"unauthorized","message":"Invalid credentials"}"#,
            NOW,
        );
        assert!(matches!(step, AuthStep::Login { .. }));
        let step = auth.complete_login(
            401,
            r#"{"error":"unauthorized","message":"Invalid credentials"}"#,
            NOW,
        );
        let AuthStep::Fail(e) = step else { panic!() };
        assert_eq!((e.code.as_str(), e.status), ("UNAUTHORIZED", Some(401)));
        assert!(!auth.is_refreshing());
    }

    #[test]
    fn token_expired_is_single_flight() {
        let mut auth = AuthState::new(
            Credentials::Basic {
                user: "a".into(),
                password: "b".into(),
            },
            false,
        );
        auth.prepare(NOW);
        auth.complete_login(200, &login_json("a1", "r1", "2026-11-24T14:44:35Z"), NOW);
        let g = auth.generation();
        // Three concurrent calls fail with TOKEN_EXPIRED: one refresh, two waiters.
        assert!(matches!(
            auth.on_token_expired(g, NOW),
            AuthStep::Refresh { .. }
        ));
        assert_eq!(auth.on_token_expired(g, NOW), AuthStep::Wait);
        assert_eq!(auth.on_token_expired(g, NOW), AuthStep::Wait);
        let ready =
            auth.complete_refresh(200, &login_json("a2", "r2", "2026-11-24T14:44:35Z"), NOW);
        assert_eq!(auth.prepare(NOW), ready);
        // A late failure from the old generation retries with the new token.
        assert_eq!(auth.on_token_expired(g, NOW), ready);
        // Without any way to renew, TOKEN_EXPIRED fails.
        let mut plain = AuthState::new(
            Credentials::Jwt {
                token: "opaque".into(),
            },
            false,
        );
        let AuthStep::Fail(e) = plain.on_token_expired(plain.generation(), NOW) else {
            panic!()
        };
        assert_eq!(
            (e.code.as_str(), e.status, e.retryable),
            ("TOKEN_EXPIRED", Some(401), false)
        );
    }

    #[test]
    fn jwt_apps_renew_through_the_provider() {
        let exp = NOW / 1000 + 600;
        let t1 = jwt(&format!(r#"{{"exp":{exp},"iat":{}}}"#, exp - 600));
        let mut auth = AuthState::new(Credentials::Jwt { token: t1.clone() }, true);
        assert_eq!(auth.expires_at_ms(), Some(exp * 1000));
        assert_eq!(
            auth.prepare(NOW),
            AuthStep::Ready {
                authorization: Some(format!("Bearer {t1}")),
                generation: 0
            }
        );
        // 10% of a 10-minute lifetime = 60 s; lead is min(60 s, 10%).
        assert_eq!(auth.prepare(exp * 1000 - 59_000), AuthStep::CallProvider);
        assert_eq!(auth.prepare(exp * 1000 - 59_000), AuthStep::Wait);
        let step = auth.set_credentials(Credentials::Jwt { token: "t2".into() }, NOW);
        assert_eq!(
            step,
            AuthStep::Ready {
                authorization: Some("Bearer t2".into()),
                generation: 1
            }
        );
        // Provider failure ends the flight.
        auth.on_token_expired(1, NOW);
        let thrown = KalamError::new(codes::AUTH_FAILED, "vault offline").retryable(true);
        let AuthStep::Fail(e) = auth.fail(thrown) else {
            panic!()
        };
        assert_eq!((e.code.as_str(), e.retryable), (codes::AUTH_FAILED, true));
        assert_eq!(e.message, "vault offline");
        assert!(!auth.is_refreshing());
        // A transport failure of the renewal keeps its code (offline is not "refused").
        auth.on_token_expired(1, NOW);
        let AuthStep::Fail(e) = auth.fail(KalamError::network("offline")) else {
            panic!()
        };
        assert_eq!((e.code.as_str(), e.retryable), (codes::NETWORK, true));
        assert!(!auth.is_refreshing());
        // Short-lived token: lead is 10% of the lifetime.
        let short = jwt(&format!(
            r#"{{"exp":{},"iat":{}}}"#,
            NOW / 1000 + 100,
            NOW / 1000
        ));
        let auth = AuthState::new(Credentials::Jwt { token: short }, false);
        assert!(!auth.needs_refresh(NOW + 89_999));
        assert!(auth.needs_refresh(NOW + 90_000));
        // Without a provider an expiring token is still sent.
        let mut auth = auth;
        assert!(matches!(
            auth.prepare(NOW + 99_000),
            AuthStep::Ready {
                authorization: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn provider_and_no_auth() {
        let mut none = AuthState::new(Credentials::None, false);
        assert_eq!(
            none.prepare(NOW),
            AuthStep::Ready {
                authorization: None,
                generation: 0
            }
        );
        assert!(matches!(none.begin_login(), AuthStep::Fail(_)));
        let mut lazy = AuthState::new(Credentials::None, true);
        assert_eq!(lazy.prepare(NOW), AuthStep::CallProvider);
        let step = lazy.set_credentials(
            Credentials::Basic {
                user: "u".into(),
                password: "p".into(),
            },
            NOW,
        );
        assert!(matches!(step, AuthStep::Login { .. }));
        assert!(lazy.is_refreshing());
        lazy.complete_login(200, &login_json("a", "r", "2026-11-24T14:44:35Z"), NOW);
        assert_eq!(lazy.last_login().unwrap().user.id, "alice");
    }

    #[test]
    fn login_asks_the_provider_and_rejected_credentials_are_not_resent() {
        let basic = |p: &str| Credentials::Basic {
            user: "u".into(),
            password: p.into(),
        };
        // login() before any request: the provider is asked first.
        let mut auth = AuthState::new(Credentials::None, true);
        assert_eq!(auth.begin_login(), AuthStep::CallProvider);
        assert!(auth.is_refreshing());
        let AuthStep::Login { body } = auth.set_credentials(basic("wrong"), NOW) else {
            panic!()
        };
        assert!(body.contains("wrong"));
        let rejected = r#"{"error":"unauthorized","message":"Invalid credentials"}"#;
        let AuthStep::Fail(e) = auth.complete_login(401, rejected, NOW) else {
            panic!()
        };
        assert_eq!((e.code.as_str(), e.status), ("UNAUTHORIZED", Some(401)));
        // The next request asks the provider again rather than resending the bad password.
        assert_eq!(auth.prepare(NOW), AuthStep::CallProvider);
        let AuthStep::Login { body } = auth.set_credentials(basic("right"), NOW) else {
            panic!()
        };
        assert!(body.contains("right"));
        assert!(matches!(
            auth.complete_login(200, &login_json("a", "r", "2026-11-24T14:44:35Z"), NOW),
            AuthStep::Ready { .. }
        ));
        // Fixed basic credentials (no provider) are simply tried again.
        let mut fixed = AuthState::new(basic("wrong"), false);
        assert!(matches!(fixed.prepare(NOW), AuthStep::Login { .. }));
        fixed.complete_login(401, rejected, NOW);
        assert!(matches!(fixed.prepare(NOW), AuthStep::Login { .. }));
    }
}
