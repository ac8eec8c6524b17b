//! Consumer-bundle exports beyond `HttpCore`: the ack bookkeeping of `core::topics`, so the
//! TypeScript run loop acks the highest contiguous processed offset per partition in one
//! request instead of one per message.

use wasm_bindgen::prelude::*;

use crate::core::error::KalamError;
use crate::core::topics;
use crate::http_client::to_js_error;

fn offset(text: &str) -> Result<u64, JsValue> {
    text.trim().parse().map_err(|_| {
        to_js_error(KalamError::invalid_argument(format!(
            "an offset must be a non-negative integer, got {text:?}"
        )))
    })
}

#[wasm_bindgen]
#[derive(Default)]
pub struct AckTracker {
    inner: topics::AckTracker,
}

#[wasm_bindgen]
impl AckTracker {
    #[wasm_bindgen(constructor)]
    pub fn new() -> AckTracker {
        AckTracker::default()
    }

    /// Registers offsets (exact decimal strings) handed to the application.
    pub fn delivered(&mut self, partition_id: u32, offsets: Vec<String>) -> Result<(), JsValue> {
        for o in offsets {
            self.inner.delivered(partition_id, offset(&o)?);
        }
        Ok(())
    }

    /// Marks offsets as processed (handled, or given up on with `ackOnFailed`).
    pub fn processed(&mut self, partition_id: u32, offsets: Vec<String>) -> Result<(), JsValue> {
        for o in offsets {
            self.inner.processed(partition_id, offset(&o)?);
        }
        Ok(())
    }

    /// Acks to send now as `[[partition, "upto"], ...]` JSON.
    #[wasm_bindgen(js_name = pendingAcks)]
    pub fn pending_acks(&self) -> String {
        let pairs: Vec<(u32, String)> = self
            .inner
            .pending_acks()
            .into_iter()
            .map(|(p, o)| (p, o.to_string()))
            .collect();
        serde_json::to_string(&pairs).expect("pairs serialize")
    }

    /// The server confirmed an ack up to `upto` (inclusive).
    pub fn acked(&mut self, partition_id: u32, upto: &str) -> Result<(), JsValue> {
        self.inner.acked(partition_id, offset(upto)?);
        Ok(())
    }
}
