//! The live shell's options, parsed from the JSON the TypeScript passes: the client's
//! options into a [`LiveConfig`] and a subscription's into [`SubscribeOptions`]. Bad values
//! are `INVALID_ARGUMENT` with the messages the TypeScript tests expect.

use crate::core::json::Value;

use crate::core::error::KalamError;
use crate::core::http::url::BaseUrl;
use crate::core::live::connection::{check_batch_size, DEFAULT_COALESCE_MS};
use crate::core::live::{LiveConfig, ReconnectConfig, SubscribeOptions, VerifyConfig};
use crate::core::seq_id::SeqId;

// Why tables and not `#[derive(Deserialize)]` structs: measured on the release client,
// serde structs for these options grew the .wasm by 20.4 KB raw / 7.9 KB gzip over the
// field-by-field reader (serde's untagged enums for `verify` and `keyColumns`, and a typed
// `from_str` per struct), and their errors do not name the option. These tables cost
// 0.7 KB raw / 0.6 KB gzip over that reader and keep each option's name and type in one
// place.

/// How one option is read: the JSON type it must have and where its value goes.
enum Opt<T> {
    /// A non-negative integer, else `"{name} must be a non-negative integer"`.
    Uint(fn(&mut T, u64)),
    /// As `Uint`, and at most `u32::MAX`, else `"{name} is too large"`.
    Uint32(fn(&mut T, u32)),
    /// A boolean; a value of another type is ignored (as it always was).
    Bool(fn(&mut T, bool)),
    /// Its own reader, given the option's name and (non-null) value.
    Custom(fn(&mut T, &str, &Value) -> Result<(), KalamError>),
}

type Table<T> = [(&'static str, Opt<T>)];

/// Reads the options of `table` from `obj` in table order (the first bad one is the error).
/// Absent and `null` options leave `target` as it is; unknown names are ignored, and so is
/// an `obj` that is not an object.
fn read<T>(target: &mut T, obj: &Value, table: &Table<T>) -> Result<(), KalamError> {
    for (name, opt) in table {
        let Some(value) = obj.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        match opt {
            Opt::Uint(set) => set(target, uint(name, value)?),
            Opt::Uint32(set) => set(target, uint32(name, value)?),
            Opt::Bool(set) => {
                if let Some(on) = value.as_bool() {
                    set(target, on);
                }
            }
            Opt::Custom(read) => read(target, name, value)?,
        }
    }
    Ok(())
}

fn uint(name: &str, value: &Value) -> Result<u64, KalamError> {
    value.as_u64().ok_or_else(|| {
        KalamError::invalid_argument(format!("{name} must be a non-negative integer"))
    })
}

// Kept out of the generic `read` so that it is compiled once, not once per table type.
fn uint32(name: &str, value: &Value) -> Result<u32, KalamError> {
    u32::try_from(uint(name, value)?)
        .map_err(|_| KalamError::invalid_argument(format!("{name} is too large")))
}

fn saturating_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The client's options (`url` is read first, on its own: it is required).
const CLIENT: &Table<LiveConfig> = &[
    (
        "disableCompression",
        Opt::Bool(|c, on| c.disable_compression = on),
    ),
    ("pingIntervalMs", Opt::Uint(|c, ms| c.ping_interval_ms = ms)),
    (
        "connectTimeoutMs",
        Opt::Uint(|c, ms| c.connect_timeout_ms = ms),
    ),
    (
        "batchSize",
        Opt::Custom(|c, name, v| {
            let n = saturating_u32(uint(name, v)?);
            check_batch_size(n)?;
            c.default_batch_size = n;
            Ok(())
        }),
    ),
    (
        "reconnect",
        // Present: replaces the whole policy (unnamed fields take their defaults).
        Opt::Custom(|c, _, v| {
            let mut reconnect = ReconnectConfig::default();
            read(&mut reconnect, v, RECONNECT)?;
            c.reconnect = reconnect;
            Ok(())
        }),
    ),
    ("liveness", Opt::Custom(|c, _, v| read(c, v, LIVENESS))),
    (
        "snapshotTimeoutMs",
        Opt::Uint(|c, ms| c.snapshot_step_timeout_ms = ms),
    ),
    (
        "verify",
        Opt::Custom(|c, _, v| match v {
            Value::Bool(on) => {
                c.verify.enabled = *on;
                Ok(())
            }
            Value::Object(_) => read(&mut c.verify, v, VERIFY),
            _ => Err(KalamError::invalid_argument(
                "verify must be a boolean or { enabled, intervalMs, afterBurst }",
            )),
        }),
    ),
];

const RECONNECT: &Table<ReconnectConfig> = &[
    ("enabled", Opt::Bool(|r, on| r.enabled = on)),
    (
        "initialDelayMs",
        Opt::Uint(|r, ms| r.base_delay_ms = ms.max(1)),
    ),
    ("maxDelayMs", Opt::Uint(|r, ms| r.max_delay_ms = ms)),
    (
        "maxAttempts",
        Opt::Uint(|r, n| r.max_attempts = Some(saturating_u32(n))),
    ),
];

const LIVENESS: &Table<LiveConfig> = &[
    ("idleMs", Opt::Uint(|c, ms| c.liveness_idle_ms = ms)),
    (
        "timeoutMs",
        Opt::Uint(|c, ms| c.liveness_timeout_ms = ms.max(1)),
    ),
];

const VERIFY: &Table<VerifyConfig> = &[
    ("enabled", Opt::Bool(|v, on| v.enabled = on)),
    ("intervalMs", Opt::Uint(|v, ms| v.interval_ms = ms)),
    (
        "afterBurst",
        Opt::Uint(|v, n| v.after_burst = saturating_u32(n)),
    ),
];

/// A subscription's options.
const SUBSCRIBE: &Table<SubscribeOptions> = &[
    (
        "from",
        Opt::Custom(|o, name, v| {
            let seq = SeqId::from_json(v)
                .map_err(|e| KalamError::invalid_argument(format!("{name}: {}", e.message)))?;
            o.from = Some(seq);
            Ok(())
        }),
    ),
    (
        "keyColumns",
        // One name or an array of names.
        Opt::Custom(|o, _, v| {
            o.key_columns = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .map(|k| {
                        k.as_str().map(str::to_string).ok_or_else(|| {
                            KalamError::invalid_argument("keyColumns must be column names")
                        })
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(KalamError::invalid_argument("keyColumns must be an array")),
            };
            Ok(())
        }),
    ),
    ("batchSize", Opt::Uint32(|o, n| o.batch_size = Some(n))),
    ("lastRows", Opt::Uint32(|o, n| o.last_rows = Some(n))),
    (
        "limit",
        Opt::Uint(|o, n| o.limit = Some(usize::try_from(n).unwrap_or(usize::MAX))),
    ),
    ("verify", Opt::Bool(|o, on| o.verify = Some(on))),
];

fn parse(text: &str) -> Result<Value, KalamError> {
    crate::core::json::parse(text)
        .map_err(|e| KalamError::invalid_argument(format!("bad live options: {e}")))
}

pub(crate) fn config_from_json(text: &str) -> Result<LiveConfig, KalamError> {
    let v = parse(text)?;
    let url = v
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| KalamError::invalid_argument("url is required"))?;
    let base = BaseUrl::parse(url)?;
    let mut config = LiveConfig::new(base.ws_url(true));
    config.coalesce_ms = DEFAULT_COALESCE_MS;
    config.disable_compression = false;
    read(&mut config, &v, CLIENT)?;
    Ok(config)
}

pub(crate) fn options_from_json(text: &str) -> Result<SubscribeOptions, KalamError> {
    let mut options = SubscribeOptions::default();
    read(&mut options, &parse(text)?, SUBSCRIBE)?;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::codes;

    #[test]
    fn client_options_fill_the_config_and_refuse_bad_values() {
        let c = config_from_json(
            r#"{"url":"http://127.0.0.1:8080","pingIntervalMs":100,"batchSize":200,
            "reconnect":{"initialDelayMs":0,"maxAttempts":3},"verify":false}"#,
        )
        .unwrap();
        assert_eq!(c.ws_url, "ws://127.0.0.1:8080/v1/ws");
        assert_eq!(c.ping_interval_ms, 100);
        assert_eq!(c.default_batch_size, 200);
        assert_eq!(c.reconnect.base_delay_ms, 1, "at least 1 ms");
        assert_eq!(c.reconnect.max_attempts, Some(3));
        assert!(!c.verify.enabled);
        assert_eq!(
            c.coalesce_ms, DEFAULT_COALESCE_MS,
            "the shell coalesces bursts"
        );
        for bad in [
            r#"{}"#,
            r#"{"url":"http://h","batchSize":0}"#,
            r#"{"url":"http://h","verify":"yes"}"#,
            r#"not json"#,
        ] {
            let err = config_from_json(bad).unwrap_err();
            assert_eq!(err.code, codes::INVALID_ARGUMENT, "{bad}: {err:?}");
        }
    }

    #[test]
    fn subscribe_options_parse_and_refuse_bad_values() {
        let o = options_from_json(
            r#"{"batchSize":10,"lastRows":5,"from":"9007199254740993","keyColumns":"k","limit":7,"verify":false}"#,
        )
        .unwrap();
        assert_eq!(o.batch_size, Some(10));
        assert_eq!(o.last_rows, Some(5));
        assert_eq!(o.from, Some(SeqId::new(9_007_199_254_740_993)));
        assert_eq!(o.key_columns, ["k"]);
        assert_eq!(o.limit, Some(7));
        assert_eq!(o.verify, Some(false));
        assert_eq!(
            options_from_json("{}").unwrap(),
            SubscribeOptions::default()
        );
        let err = options_from_json(r#"{"keyColumns":[1]}"#).unwrap_err();
        assert_eq!(err.message, "keyColumns must be column names");
        let err = options_from_json(r#"{"keyColumns":{}}"#).unwrap_err();
        assert_eq!(err.message, "keyColumns must be an array");
        let err = options_from_json(r#"{"batchSize":99999999999}"#).unwrap_err();
        assert_eq!(err.code, codes::INVALID_ARGUMENT);
    }

    #[test]
    fn errors_name_the_option_and_nested_tables_fill_their_section() {
        let err = config_from_json(r#"{"url":"http://h","liveness":{"idleMs":-1}}"#).unwrap_err();
        assert_eq!(err.code, codes::INVALID_ARGUMENT);
        assert_eq!(err.message, "idleMs must be a non-negative integer");
        let err = options_from_json(r#"{"lastRows":4294967296}"#).unwrap_err();
        assert_eq!(err.message, "lastRows is too large");
        let err = options_from_json(r#"{"limit":"7"}"#).unwrap_err();
        assert_eq!(err.message, "limit must be a non-negative integer");
        let c = config_from_json(
            r#"{"url":"http://h","disableCompression":true,"liveness":{"timeoutMs":0},
            "reconnect":{"enabled":false,"maxDelayMs":null},
            "verify":{"intervalMs":5,"afterBurst":99999999999}}"#,
        )
        .unwrap();
        assert!(c.disable_compression);
        assert_eq!(c.liveness_timeout_ms, 1, "at least 1 ms");
        assert!(!c.reconnect.enabled);
        assert_eq!(
            c.reconnect.max_delay_ms,
            ReconnectConfig::default().max_delay_ms
        );
        assert_eq!(c.verify.interval_ms, 5);
        assert_eq!(c.verify.after_burst, u32::MAX);
        let o = options_from_json(r#"{"keyColumns":["a","b"],"verify":"no","batchSize":null}"#)
            .unwrap();
        assert_eq!(o.key_columns, ["a", "b"]);
        assert_eq!(
            (o.verify, o.batch_size),
            (None, None),
            "wrong-typed booleans and nulls are ignored"
        );
    }
}
