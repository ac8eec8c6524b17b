//! The realtime core (sans-IO): WebSocket frame codecs, the live-rows materializer, the
//! subscription registry and connection state machine, and the reconnect policy.
//!
//! Nothing here touches the network or a clock: the wasm shell feeds inputs (API calls,
//! socket events, timer firings, `now_ms`) into [`LiveCore`] and executes the [`Output`]
//! commands it returns. See [`connection`] for the shell contract and the resume policy,
//! [`materializer`] for keys, ordering, `limit` and deltas.

pub mod config;
pub mod connection;
pub mod frames;
pub mod gzip;
pub mod materializer;
// The wasm shell's options and payload: pure, natively tested, used by `live_client.rs`.
#[cfg(any(target_arch = "wasm32", test))]
pub mod options;
pub mod ordered;
pub mod output;
#[cfg(any(target_arch = "wasm32", test))]
pub mod payload;
pub mod reconnect;
pub mod row;
pub mod sql;
pub mod verify;

pub use connection::{
    ConnectionState, LiveConfig, LiveCore, LiveEvent, Output, SubscribeOptions, SubscriptionInfo,
    SubscriptionMode, TimerId,
};
pub use frames::{ChangeEvent, ChangeType, ClientMessage, Row, ServerMessage};
pub use materializer::{KeyedRow, Materializer, RowKey, RowsDelta};
pub use reconnect::ReconnectConfig;
pub use verify::{Checksum, VerifyConfig};

#[cfg(test)]
mod tests;
