//! Consumer-bundle exports beyond `HttpShell`: the ledger of `core::topics` (which offsets
//! may be acked, when to probe the committed offset, which redeliveries to skip) and the
//! backoff rule, so the TypeScript run loop only moves data and sleeps. Calls are per batch.

use wasm_bindgen::prelude::*;

use crate::core::error::KalamError;
use crate::core::topics::{self, StartPosition, Step};
use crate::shell::http_shell::to_js_error;

fn offset(text: &str) -> Result<u64, JsValue> {
    text.trim().parse().map_err(|_| {
        to_js_error(KalamError::invalid_argument(format!(
            "an offset must be a non-negative integer, got {text:?}"
        )))
    })
}

fn millis(ms: f64) -> topics::Millis {
    if ms.is_finite() && ms > 0.0 {
        ms as topics::Millis
    } else {
        0
    }
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
        let start: serde_json::Value = serde_json::from_str(start_json).map_err(|e| {
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

    /// The `start` to send with the next poll or probe of `partition` (JSON).
    #[wasm_bindgen(js_name = pollStart)]
    pub fn poll_start(&self, partition: u32) -> String {
        match self.inner.poll_start(partition) {
            StartPosition::Earliest => r#""earliest""#.into(),
            StartPosition::Latest => r#""latest""#.into(),
            StartPosition::Offset(n) => format!(r#"{{"offset":"{n}"}}"#),
        }
    }

    /// A poll sent at `sent_ms` answered: returns 1 per offset to hand to the handler, 0 for
    /// committed or already processed ones.
    pub fn delivered(
        &mut self,
        partition: u32,
        offsets: Vec<String>,
        next_offset: &str,
        sent_ms: f64,
    ) -> Result<Vec<u8>, JsValue> {
        let offsets = offsets
            .iter()
            .map(|o| offset(o))
            .collect::<Result<Vec<_>, _>>()?;
        let next = offset(next_offset)?;
        Ok(self
            .inner
            .partition(partition)
            .delivered(&offsets, next, millis(sent_ms))
            .into_iter()
            .map(u8::from)
            .collect())
    }

    #[wasm_bindgen(js_name = pollFailed)]
    pub fn poll_failed(&mut self, partition: u32, sent_ms: f64) {
        self.inner.partition(partition).poll_failed(millis(sent_ms));
    }

    /// Marks offsets processed (the handler succeeded, or `ackOnFailed` gave up on them).
    pub fn processed(&mut self, partition: u32, offsets: Vec<String>) -> Result<(), JsValue> {
        for o in offsets {
            self.inner.partition(partition).processed(offset(&o)?);
        }
        Ok(())
    }

    /// Offsets this consumer will not process (left for redelivery).
    pub fn abandon(&mut self, partition: u32, offsets: Vec<String>) -> Result<(), JsValue> {
        for o in offsets {
            self.inner.partition(partition).abandon(offset(&o)?);
        }
        Ok(())
    }

    /// The loop stopped: every delivered, unfinished offset is left for redelivery.
    #[wasm_bindgen(js_name = abandonUnfinished)]
    pub fn abandon_unfinished(&mut self) {
        self.inner.abandon_unfinished();
    }

    /// What to send now, as JSON `[[partition, "ack", "upto"] | [partition, "probe"], ...]`.
    pub fn steps(&mut self, now_ms: f64) -> String {
        let steps: Vec<serde_json::Value> = self
            .inner
            .steps(millis(now_ms))
            .into_iter()
            .map(|(p, s)| match s {
                Step::Ack(x) => serde_json::json!([p, "ack", x.to_string()]),
                _ => serde_json::json!([p, "probe"]),
            })
            .collect();
        serde_json::Value::Array(steps).to_string()
    }

    /// Whether processed offsets wait for a commit this consumer cannot prove yet.
    pub fn holding(&mut self, now_ms: f64) -> bool {
        self.inner.holding(millis(now_ms))
    }

    /// A probe's answer: `next_offset` when it carried no messages, else undefined.
    pub fn probed(
        &mut self,
        partition: u32,
        now_ms: f64,
        next_offset: Option<String>,
    ) -> Result<(), JsValue> {
        let next = next_offset.as_deref().map(offset).transpose()?;
        self.inner.partition(partition).probed(millis(now_ms), next);
        Ok(())
    }

    /// A probe failed in transit: try again later.
    #[wasm_bindgen(js_name = probeRetryLater)]
    pub fn probe_retry_later(&mut self, partition: u32, now_ms: f64) {
        self.inner
            .partition(partition)
            .probe_retry_later(millis(now_ms));
    }

    /// The server confirmed an ack up to `upto` (inclusive).
    pub fn acked(&mut self, partition: u32, upto: &str) -> Result<(), JsValue> {
        self.inner.partition(partition).acked(offset(upto)?);
        Ok(())
    }

    /// Offsets delivered and not committed by this consumer, over every partition.
    pub fn outstanding(&self, partition: u32) -> usize {
        self.inner.get(partition).map_or(0, |l| l.outstanding())
    }
}
