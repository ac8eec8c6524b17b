//! The live shell's options, parsed from the JSON the TypeScript passes: the client's
//! options into a [`LiveConfig`] and a subscription's into [`SubscribeOptions`]. Bad values
//! are `INVALID_ARGUMENT` with the messages the TypeScript tests expect.

use serde_json::Value;

use crate::core::error::KalamError;
use crate::core::http::url::BaseUrl;
use crate::core::live::connection::DEFAULT_COALESCE_MS;
use crate::core::live::{LiveConfig, ReconnectConfig, SubscribeOptions};
use crate::core::seq_id::SeqId;

fn field<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn uint(obj: &Value, key: &str) -> Result<Option<u64>, KalamError> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            KalamError::invalid_argument(format!("{key} must be a non-negative integer"))
        }),
    }
}

pub(crate) fn config_from_json(text: &str) -> Result<LiveConfig, KalamError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| KalamError::invalid_argument(format!("bad live options: {e}")))?;
    let url = field(&v, "url")
        .and_then(Value::as_str)
        .ok_or_else(|| KalamError::invalid_argument("url is required"))?;
    let base = BaseUrl::parse(url)?;
    let mut config = LiveConfig::new(base.ws_url(true));
    config.coalesce_ms = DEFAULT_COALESCE_MS;
    config.disable_compression = field(&v, "disableCompression")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(ms) = uint(&v, "pingIntervalMs")? {
        config.ping_interval_ms = ms;
    }
    if let Some(ms) = uint(&v, "connectTimeoutMs")? {
        config.connect_timeout_ms = ms;
    }
    if let Some(n) = uint(&v, "batchSize")? {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        crate::core::live::connection::check_batch_size(n)?;
        config.default_batch_size = n;
    }
    if let Some(r) = field(&v, "reconnect") {
        let mut rc = ReconnectConfig::default();
        if let Some(enabled) = field(r, "enabled").and_then(Value::as_bool) {
            rc.enabled = enabled;
        }
        if let Some(ms) = uint(r, "initialDelayMs")? {
            rc.base_delay_ms = ms.max(1);
        }
        if let Some(ms) = uint(r, "maxDelayMs")? {
            rc.max_delay_ms = ms;
        }
        rc.max_attempts = uint(r, "maxAttempts")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        config.reconnect = rc;
    }
    if let Some(l) = field(&v, "liveness") {
        if let Some(ms) = uint(l, "idleMs")? {
            config.liveness_idle_ms = ms;
        }
        if let Some(ms) = uint(l, "timeoutMs")? {
            config.liveness_timeout_ms = ms.max(1);
        }
    }
    if let Some(ms) = uint(&v, "snapshotTimeoutMs")? {
        config.snapshot_step_timeout_ms = ms;
    }
    match field(&v, "verify") {
        Some(Value::Bool(on)) => config.verify.enabled = *on,
        Some(vf) if vf.is_object() => {
            if let Some(on) = field(vf, "enabled").and_then(Value::as_bool) {
                config.verify.enabled = on;
            }
            if let Some(ms) = uint(vf, "intervalMs")? {
                config.verify.interval_ms = ms;
            }
            if let Some(n) = uint(vf, "afterBurst")? {
                config.verify.after_burst = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
        None => {}
        Some(_) => {
            return Err(KalamError::invalid_argument(
                "verify must be a boolean or { enabled, intervalMs, afterBurst }",
            ))
        }
    }
    Ok(config)
}

pub(crate) fn options_from_json(text: &str) -> Result<SubscribeOptions, KalamError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| KalamError::invalid_argument(format!("bad live options: {e}")))?;
    let small = |key: &str| -> Result<Option<u32>, KalamError> {
        uint(&v, key)?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| KalamError::invalid_argument(format!("{key} is too large")))
            })
            .transpose()
    };
    let from = match field(&v, "from") {
        None => None,
        Some(f) => Some(
            SeqId::from_json(f)
                .map_err(|e| KalamError::invalid_argument(format!("from: {}", e.message)))?,
        ),
    };
    let key_columns = match field(&v, "keyColumns") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| KalamError::invalid_argument("keyColumns must be column names"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(KalamError::invalid_argument("keyColumns must be an array")),
    };
    Ok(SubscribeOptions {
        batch_size: small("batchSize")?,
        last_rows: small("lastRows")?,
        from,
        key_columns,
        limit: uint(&v, "limit")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        verify: field(&v, "verify").and_then(Value::as_bool),
    })
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
}
