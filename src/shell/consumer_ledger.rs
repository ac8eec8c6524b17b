//! Consumer-bundle export beyond `HttpShell`: the ledger of `core::topics` (which offsets
//! may be acked, when to probe the committed offset, which redeliveries to skip), so the
//! TypeScript run loop only moves data and sleeps (the backoff rule is `coreCall`'s
//! `backoffMs`, `shell::exports`). Calls are per batch.

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::core::error::KalamError;
use crate::core::json::{json, Value};
use crate::core::topics::{self, StartPosition, Step};
use crate::shell::http_shell::to_js_error;

#[inline(never)]
fn offset(text: &str) -> Result<u64, KalamError> {
    text.trim().parse().map_err(|_| {
        KalamError::invalid_argument(format!(
            "an offset must be a non-negative integer, got \"{text}\""
        ))
    })
}

fn millis(ms: f64) -> topics::Millis {
    if ms.is_finite() && ms > 0.0 {
        ms as topics::Millis
    } else {
        0
    }
}

/// Item `i` of `args` as a number; out of line, as most ops read one.
#[inline(never)]
fn number_at(args: &Array, i: u32) -> f64 {
    args.get(i).as_f64().unwrap_or(0.0)
}

/// The offsets of `args` from item `from` on. A loop, not `collect::<Result<..>>`, whose
/// adapter is a monomorph of its own; out of line, as three ops use it.
#[inline(never)]
fn offsets_from(args: &Array, from: u32) -> Result<Vec<u64>, KalamError> {
    let mut offsets = Vec::new();
    for i in from..args.length() {
        offsets.push(offset(&args.get(i).as_string().unwrap_or_default())?);
    }
    Ok(offsets)
}

/// One (topic, group) as seen by one consumer client, every partition.
#[wasm_bindgen]
pub struct ConsumerLedger {
    inner: topics::TopicLedger,
}

#[wasm_bindgen]
impl ConsumerLedger {
    /// `start_json`: the configured start (`"earliest"`, `"latest"`, `{"offset":"n"}`, ...).
    #[wasm_bindgen(constructor)]
    pub fn new(start_json: &str, visibility_timeout_ms: f64) -> Result<ConsumerLedger, JsValue> {
        let start = crate::core::json::parse(start_json).map_err(|e| {
            to_js_error(KalamError::invalid_argument(format!(
                "start is not JSON: {e}"
            )))
        })?;
        let start = StartPosition::from_json(&start).map_err(to_js_error)?;
        let visibility = if visibility_timeout_ms.is_finite() && visibility_timeout_ms >= 0.0 {
            visibility_timeout_ms as topics::Millis
        } else {
            return Err(to_js_error(KalamError::invalid_argument(
                "visibilityTimeoutMs must be a non-negative number",
            )));
        };
        Ok(ConsumerLedger {
            inner: topics::TopicLedger::new(start, visibility),
        })
    }

    /// Every ledger call but the constructor, in one export (each export costs a shim in the
    /// .wasm and a wrapper in the JS glue): `op` with `args`, a JS array whose first item is
    /// the partition where there is one. Offsets are decimal strings; times are `Date.now()`
    /// milliseconds. Ops and their answers (`undefined` when none is listed):
    /// - `pollStart` [p] → the `start` to send with the next poll or probe of `p` (JSON);
    /// - `delivered` [p, next_offset, sent_ms, ...offsets] → a poll sent at `sent_ms`
    ///   answered: one character per offset, `1` to hand it to the handler, `0` for committed
    ///   or already processed ones;
    /// - `pollFailed` [p, sent_ms];
    /// - `processed` [p, ...offsets]: the handler succeeded (or `ackOnFailed` gave up on them);
    /// - `abandon` [p, ...offsets]: offsets this consumer will not process (left for redelivery);
    /// - `abandonUnfinished` []: the loop stopped, every delivered, unfinished offset is left
    ///   for redelivery;
    /// - `steps` [now_ms] → what to send now, as JSON `[[partition, "ack", "upto"] |
    ///   [partition, "probe"], ...]`;
    /// - `holding` [now_ms] → whether processed offsets wait for a commit this consumer cannot
    ///   prove yet;
    /// - `probed` [p, now_ms, next_offset?]: a probe's answer, `next_offset` when it carried
    ///   no messages;
    /// - `probeRetryLater` [p, now_ms]: a probe failed in transit, try again later;
    /// - `acked` [p, upto]: the server confirmed an ack up to `upto` (inclusive).
    ///
    /// A bad offset or op throws an `INVALID_ARGUMENT` KalamError object.
    pub fn apply(&mut self, op: &str, args: Array) -> Result<JsValue, JsValue> {
        self.call(op, &args).map_err(to_js_error)
    }
}

impl ConsumerLedger {
    fn call(&mut self, op: &str, args: &Array) -> Result<JsValue, KalamError> {
        let text = |i: u32| args.get(i).as_string().unwrap_or_default();
        let number = |i: u32| number_at(args, i);
        let offsets = |from: u32| offsets_from(args, from);
        let p = number(0) as u32;
        let ledger = &mut self.inner;
        match op {
            "pollStart" => {
                return Ok(JsValue::from(match ledger.poll_start(p) {
                    StartPosition::Earliest => r#""earliest""#.to_string(),
                    StartPosition::Latest => r#""latest""#.to_string(),
                    StartPosition::Offset(n) => format!(r#"{{"offset":"{n}"}}"#),
                }))
            }
            "delivered" => {
                let offsets = offsets(3)?;
                let next = offset(&text(1))?;
                let hand: String = ledger
                    .partition(p)
                    .delivered(&offsets, next, millis(number(2)))
                    .into_iter()
                    .map(|h| if h { '1' } else { '0' })
                    .collect();
                return Ok(JsValue::from(hand));
            }
            "pollFailed" => ledger.partition(p).poll_failed(millis(number(1))),
            "processed" => {
                for o in offsets(1)? {
                    ledger.partition(p).processed(o);
                }
            }
            "abandon" => {
                for o in offsets(1)? {
                    ledger.partition(p).abandon(o);
                }
            }
            "abandonUnfinished" => ledger.abandon_unfinished(),
            "steps" => {
                let steps: Vec<Value> = ledger
                    .steps(millis(number(0)))
                    .into_iter()
                    .map(|(p, s)| match s {
                        Step::Ack(x) => json!([p, "ack", x.to_string()]),
                        _ => json!([p, "probe"]),
                    })
                    .collect();
                return Ok(JsValue::from(Value::Array(steps).to_string()));
            }
            "holding" => return Ok(JsValue::from(ledger.holding(millis(number(0))))),
            "probed" => {
                let next = args.get(2).as_string().as_deref().map(offset).transpose()?;
                ledger.partition(p).probed(millis(number(1)), next);
            }
            "probeRetryLater" => ledger.partition(p).probe_retry_later(millis(number(1))),
            "acked" => {
                let upto = offset(&text(1))?;
                ledger.partition(p).acked(upto);
            }
            _ => return Err(KalamError::invalid_argument("unknown ledger call")),
        }
        Ok(JsValue::UNDEFINED)
    }
}
