//! `HttpShell`: the wasm shell of the request/response half, shared by both packages. Each
//! operation is one call of [`HttpShell::run`] (one promise-returning export instead of one
//! per operation: each costs wasm glue): the operation's request is built here from
//! `core::http` (URLs, SQL bodies, decoders) and run by the sans-IO request driver
//! (`core::http::driver`: auth, retries, timeouts, aborts) through the executor. Answers are
//! JSON strings (a Blob for downloads); errors cross as plain `{code, message, status?,
//! retryable, details?}` objects that the TypeScript turns into `KalamError`s.

use std::rc::Rc;

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use crate::core::error::KalamError;
use crate::core::http::auth::{self, AuthState, Credentials};
use crate::core::http::driver::{
    ok_text, Body, CallSpec, Decode, DriverConfig, RequestDriver, RequestSpec, Resolved,
};
use crate::core::http::envelope::decode_sql_response;
use crate::core::http::retry::{whole_number_option, RequestKind, RetryPolicy};
use crate::core::http::sql::{self, params_from_json, SqlLimits, SqlRequest};
use crate::core::http::url::{paths, BaseUrl};
use crate::core::json::{parse, Value};
use crate::shell::net::promise::defer;

mod executor;
#[cfg(feature = "client")]
mod writes;

use executor::{Executor, Upload};

pub(crate) use crate::shell::net::to_js_error;

pub(crate) type JsResult<T> = Result<T, JsValue>;

/// The arguments of one operation (a JSON object from the TypeScript).
pub(crate) struct Args(Value);

impl Args {
    fn parse(json: Option<&str>) -> Result<Args, KalamError> {
        match json {
            None => Ok(Args(Value::Null)),
            Some(text) => parse(text)
                .map(Args)
                .map_err(|_| KalamError::invalid_argument("operation arguments must be JSON")),
        }
    }

    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.0.get(key)?.as_str().map(str::to_string)
    }

    pub(crate) fn required(&self, key: &'static str) -> Result<String, KalamError> {
        self.text(key)
            .ok_or_else(|| KalamError::invalid_argument(format!("missing argument {key}")))
    }

    fn flag(&self, key: &str) -> bool {
        self.0.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    #[cfg(feature = "client")]
    pub(crate) fn names(&self, key: &str) -> Vec<String> {
        self.0
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[cfg(feature = "consumer")]
    pub(crate) fn raw(&self) -> &Value {
        &self.0
    }
}

pub(crate) struct Shell {
    pub(crate) executor: Rc<Executor>,
    namespace: Option<String>,
    pub(crate) limits: SqlLimits,
}

#[wasm_bindgen]
pub struct HttpShell {
    shell: Rc<Shell>,
}

#[wasm_bindgen]
impl HttpShell {
    /// `credentials_json`: an `Auth.*` object as JSON (or undefined when only a provider is
    /// given); `auth_provider`: `() => AuthCredentials | Promise<AuthCredentials>`, asked
    /// whenever fresh credentials are needed.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: &str,
        credentials_json: Option<String>,
        auth_provider: Option<Function>,
        timeout_ms: f64,
        max_retries: f64,
        namespace: Option<String>,
    ) -> JsResult<HttpShell> {
        let base = BaseUrl::parse(url).map_err(to_js_error)?;
        // setTimeout's largest delay; more retries than 100 only hide an outage.
        let timeout_ms =
            whole_number_option("timeoutMs", timeout_ms, i32::MAX as u32).map_err(to_js_error)?;
        let max_retries =
            whole_number_option("maxRetries", max_retries, 100).map_err(to_js_error)?;
        let credentials = match credentials_json {
            Some(json) => Credentials::from_json(&json).map_err(to_js_error)?,
            None => Credentials::None,
        };
        let driver = RequestDriver::new(
            DriverConfig {
                base,
                timeout_ms,
                retry: RetryPolicy {
                    max_retries,
                    ..RetryPolicy::default()
                },
            },
            AuthState::new(credentials, auth_provider.is_some()),
            Box::new(js_sys::Math::random),
        );
        Ok(HttpShell {
            shell: Rc::new(Shell {
                executor: Executor::new(driver, auth_provider),
                namespace: namespace.filter(|n| !n.is_empty()),
                limits: SqlLimits::default(),
            }),
        })
    }

    /// Runs operation `op` with `args_json`. Operations: `query` {sql, params?, namespace?,
    /// fileTable?}, `executeAsUser` {sql, user, params?, namespace?}, `login`,
    /// `refreshToken` {token?}, `accessToken` {force}, `health`, `setupStatus`, `setup`
    /// {user, password, rootPassword, email?}, `me`; the client's `insert` {table, row},
    /// `update` {table, key, changes}, `delete` {table, key}, `queryWithFiles` {sql, names,
    /// params?, namespace?} with `files` (and `transport` for upload progress), `download`
    /// {path, userId?} (resolves with a Blob); the consumer's `consume` (the consume
    /// options) and `ack` {topic, groupId, partitionId, upto}; and `setCredentials` (the
    /// `Auth.*` object: replaces the credentials, e.g. after the app's user signs in again;
    /// a sign-in in flight for the old ones is superseded), which sends nothing. (The
    /// normalised base URL is `coreCall`'s `baseUrl`.) Returns a promise of the answer, or
    /// rejected with the error object.
    pub fn run(
        &self,
        op: String,
        args_json: Option<String>,
        signal: Option<AbortSignal>,
        timeout_ms: Option<u32>,
        files: Option<Array>,
        transport: Option<Function>,
    ) -> Promise {
        let mut call = Some((self.shell.clone(), op, args_json, signal, files, transport));
        Promise::new(&mut |resolve, reject| {
            let Some((shell, op, args_json, signal, files, transport)) = call.take() else {
                return;
            };
            // Started in a microtask, as the async export's body was, so what the caller
            // does right after `run(...)` (abort its signal, set credentials) lands as before.
            defer(Box::new(move || {
                let started = shell.prepare(&op, args_json.as_deref(), files, transport);
                match started {
                    Ok(Some((spec, upload))) => shell
                        .executor
                        .run(spec, signal, timeout_ms, upload, resolve, reject),
                    Ok(None) => {
                        let _ = resolve.call0(&JsValue::NULL);
                    }
                    Err(error) => {
                        let _ = reject.call1(&JsValue::NULL, &to_js_error(error));
                    }
                }
            }));
        })
    }
}

/// What a call resolves with: JSON text, or a Blob for downloads.
fn answer(resolved: Resolved) -> Result<JsValue, KalamError> {
    match resolved {
        Resolved::Text(text) => Ok(JsValue::from_str(&text)),
        #[cfg(feature = "client")]
        Resolved::Bytes { content_type, body } => writes::blob(content_type, &body),
        #[cfg(not(feature = "client"))]
        Resolved::Bytes { .. } => Err(KalamError::protocol("unexpected bytes")),
    }
}

impl Shell {
    /// The call of `op`, or `None` for `setCredentials`, which is done here and sends
    /// nothing.
    fn prepare(
        &self,
        op: &str,
        args_json: Option<&str>,
        files: Option<Array>,
        transport: Option<Function>,
    ) -> Result<Option<(CallSpec, Option<Upload>)>, KalamError> {
        let args = Args::parse(args_json)?;
        // Not a request: one op here instead of one more export (each costs glue).
        if op == "setCredentials" {
            let credentials = Credentials::from_json(args_json.unwrap_or_default())?;
            self.executor
                .input(|d, now| d.set_credentials(now, credentials));
            return Ok(None);
        }
        // Only the client has multipart calls.
        #[cfg(not(feature = "client"))]
        let _ = (files, transport);
        #[allow(unused_mut)]
        let mut upload: Option<Upload> = None;
        let spec = match op {
            "query" => self.sql_call(
                args.required("sql")?,
                &args,
                args.text("fileTable").as_deref(),
            )?,
            "executeAsUser" => {
                let wrapped =
                    sql::execute_as_user(&args.required("sql")?, &args.required("user")?)?;
                self.sql_call(wrapped, &args, None)?
            }
            "login" => CallSpec::Login,
            "refreshToken" => CallSpec::Refresh {
                refresh_token: args.text("token"),
            },
            "accessToken" => CallSpec::AccessToken {
                force: args.flag("force"),
            },
            "health" => self.endpoint("GET", paths::HEALTHCHECK, Body::None, false, |s, b| {
                auth::parse_health_response(s, b).map(|_| b.to_string())
            }),
            "setupStatus" => self.endpoint("GET", paths::STATUS, Body::None, false, |s, b| {
                auth::parse_status_response(s, b).map(|_| b.to_string())
            }),
            "setup" => {
                let body = auth::setup_body(
                    &args.required("user")?,
                    &args.required("password")?,
                    &args.required("rootPassword")?,
                    args.text("email").as_deref(),
                )?;
                self.endpoint("POST", paths::SETUP, Body::Json(body), false, |s, b| {
                    auth::parse_setup_response(s, b).map(|_| b.to_string())
                })
            }
            "me" => self.endpoint("GET", paths::ME, Body::None, true, |s, b| {
                auth::parse_me_response(s, b).map(|_| b.to_string())
            }),
            #[cfg(feature = "consumer")]
            "consume" => self.consume_call(args_json.unwrap_or("{}"))?,
            #[cfg(feature = "consumer")]
            "ack" => self.ack_call(&args)?,
            #[cfg(feature = "client")]
            "insert" | "update" | "delete" => self.row_write(op, &args)?,
            #[cfg(feature = "client")]
            "queryWithFiles" => {
                let names = args.names("names");
                let files = files.unwrap_or_default();
                let spec = self.upload_call(&args, &names, &files)?;
                upload = Some(Upload {
                    names,
                    files,
                    transport,
                });
                spec
            }
            #[cfg(feature = "client")]
            "download" => self.download_call(&args)?,
            _ => {
                return Err(KalamError::invalid_argument(format!(
                    "unknown operation \"{op}\""
                )))
            }
        };
        Ok(Some((spec, upload)))
    }

    /// The call's namespace, else the client's.
    pub(crate) fn namespace(&self, args: &Args) -> Option<String> {
        args.text("namespace")
            .filter(|n| !n.is_empty())
            .or_else(|| self.namespace.clone())
    }

    pub(crate) fn params(args: &Args) -> Result<Vec<sql::Param>, KalamError> {
        match args.text("params") {
            Some(json) => params_from_json(&json),
            None => Ok(Vec::new()),
        }
    }

    fn sql_call(
        &self,
        sql_text: String,
        args: &Args,
        file_table: Option<&str>,
    ) -> Result<CallSpec, KalamError> {
        let request = SqlRequest::new(sql_text)
            .with_params(Self::params(args)?)
            .with_namespace(self.namespace(args));
        self.sql_spec(request, file_table)
    }

    /// One SQL request: reads are retried, writes only renewed once on `TOKEN_EXPIRED`.
    pub(crate) fn sql_spec(
        &self,
        request: SqlRequest,
        file_table: Option<&str>,
    ) -> Result<CallSpec, KalamError> {
        let body = request.to_json(&self.limits)?;
        let table = request.file_table_or(file_table);
        Ok(CallSpec::Request(RequestSpec {
            method: "POST",
            url: self.executor.driver().base().sql_url(),
            body: Body::Json(body),
            authenticated: true,
            kind: RequestKind::for_sql(&request.sql),
            decode: Decode::Text(Box::new(move |status, body| {
                decode_sql_response(status, body, table.as_ref())
            })),
        }))
    }

    fn endpoint(
        &self,
        method: &'static str,
        path: &str,
        body: Body,
        authenticated: bool,
        decode: fn(u16, &str) -> Result<String, KalamError>,
    ) -> CallSpec {
        CallSpec::Request(RequestSpec {
            method,
            url: self.executor.driver().base().endpoint(path),
            body,
            authenticated,
            // Not retried on errors (as before the driver): only renewed once on TOKEN_EXPIRED.
            kind: RequestKind::Write,
            decode: Decode::Text(Box::new(move |status, body| {
                ok_text(status, body).and_then(|b| decode(status, &b))
            })),
        })
    }

    #[cfg(feature = "consumer")]
    fn consume_call(&self, options_json: &str) -> Result<CallSpec, KalamError> {
        use crate::core::topics::{parse_consume_response, ConsumeRequest};
        let request = ConsumeRequest::from_options_json(options_json)?;
        let group_id = request.group_id.clone();
        Ok(CallSpec::Request(RequestSpec {
            method: "POST",
            url: self
                .executor
                .driver()
                .base()
                .endpoint(paths::TOPICS_CONSUME),
            body: Body::Json(request.body_json()),
            authenticated: true,
            // A poll changes nothing until it is acked: retried like a read.
            kind: RequestKind::Read,
            decode: Decode::Text(Box::new(move |status, body| {
                parse_consume_response(status, body, &group_id).map(|batch| batch.to_json())
            })),
        }))
    }

    #[cfg(feature = "consumer")]
    fn ack_call(&self, args: &Args) -> Result<CallSpec, KalamError> {
        use crate::core::topics::{ack_body, parse_ack_response};
        let upto_text = args.required("upto")?;
        let upto: u64 = upto_text.trim().parse().map_err(|_| {
            KalamError::invalid_argument(format!(
                "upto_offset must be a non-negative integer, got \"{upto_text}\""
            ))
        })?;
        let partition = args
            .raw()
            .get("partitionId")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        let body = ack_body(
            &args.required("topic")?,
            &args.required("groupId")?,
            partition,
            upto,
        );
        Ok(CallSpec::Request(RequestSpec {
            method: "POST",
            url: self.executor.driver().base().endpoint(paths::TOPICS_ACK),
            body: Body::Json(body),
            authenticated: true,
            // Acks are idempotent (commits never regress), so transport failures are retried.
            kind: RequestKind::Read,
            decode: Decode::Text(Box::new(|status, body| {
                let ack = parse_ack_response(status, body)?;
                Ok(format!(
                    r#"{{"success":{},"acknowledged_offset":"{}"}}"#,
                    ack.success, ack.acknowledged_offset
                ))
            })),
        }))
    }
}
