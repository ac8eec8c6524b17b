//! What [`super::LiveCore`] hands the shell: [`Output`] commands and notifications, the
//! public [`ConnectionState`], [`TimerId`]s, raw [`LiveEvent`]s and [`SubscriptionInfo`].

use super::frames::{ChangeEvent, InitialDataBatch, SubscriptionAck};
use super::materializer::RowsDelta;
use crate::core::error::KalamError;
use crate::core::seq_id::SeqId;

/// How a subscription reports to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// `live()`: a materialized row set, reported as [`RowsDelta`]s.
    Materialized,
    /// `liveEvents()`: raw [`LiveEvent`]s.
    Events,
}

impl SubscriptionMode {
    /// As `getSubscriptions()` lists it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionMode::Materialized => "materialized",
            SubscriptionMode::Events => "events",
        }
    }
}

/// Public connection state (its JSON: `payload::state_json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Disconnected,
    Connecting,
    Connected,
    Reconnecting { attempt: u32, delay_ms: u64 },
    NeedsAuth,
}

/// Timers the core asks the shell to run (one of each at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerId {
    Ping,
    Reconnect,
    ConnectTimeout,
    /// Sends frames held back by the send budget ([`LiveConfig::send_budget`]).
    Throttle,
    /// The liveness echo: when to send it, and its deadline.
    Liveness,
    /// Per-subscription deadlines, retries and self-verification (the earliest of them).
    Subs,
    /// The end of a coalescing window: held deltas are flushed ([`LiveConfig::coalesce_ms`]).
    Flush,
}

impl TimerId {
    pub const ALL: [TimerId; 7] = [
        TimerId::Ping,
        TimerId::Reconnect,
        TimerId::ConnectTimeout,
        TimerId::Throttle,
        TimerId::Liveness,
        TimerId::Subs,
        TimerId::Flush,
    ];

    pub fn as_u32(self) -> u32 {
        self as u32
    }

    #[cfg(test)]
    pub(super) fn from_u32(n: u32) -> Option<TimerId> {
        TimerId::ALL.get(n as usize).copied()
    }
}

/// A raw event of an `Events`-mode subscription (replays after a resume removed).
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    Ack(SubscriptionAck),
    Batch(InitialDataBatch),
    Change(ChangeEvent),
}

/// A command or notification for the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    OpenSocket {
        socket: u64,
        url: String,
    },
    SendText {
        socket: u64,
        text: String,
    },
    CloseSocket {
        socket: u64,
        code: u16,
        reason: String,
    },
    RequestToken,
    SetTimer {
        id: TimerId,
        delay_ms: u64,
    },
    CancelTimer {
        id: TimerId,
    },
    /// A materialized subscription's change set (see [`RowsDelta`]).
    Rows {
        subscription_id: String,
        delta: RowsDelta,
    },
    /// An `Events`-mode subscription's raw event.
    Event {
        subscription_id: String,
        event: LiveEvent,
    },
    /// The max applied `_seq` advanced (after the delta/event it belongs to).
    Checkpoint {
        subscription_id: String,
        last_seq_id: SeqId,
    },
    /// A subscription-scoped error (server code verbatim, or ours). `fatal`: the
    /// subscription is gone from the registry.
    SubscriptionError {
        subscription_id: String,
        error: KalamError,
        fatal: bool,
    },
    StateChanged(ConnectionState),
    /// Run `sql` (the checksum of [`super::verify`]: self-verification, or the row count of
    /// a snapshot the server's row cap could cut) over HTTP as the socket's user and call
    /// [`super::LiveCore::verify_result`] with `request` and its figures or error.
    Verify {
        subscription_id: String,
        request: u64,
        sql: String,
    },
    /// A connection-level error (close, timeout, auth failure, malformed frame, server
    /// error with a synthetic id such as `protocol` or `rate_limit`).
    ConnectionError(KalamError),
}

/// What `getSubscriptions()` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub id: String,
    pub sql: String,
    pub mode: SubscriptionMode,
    /// The checkpoint: max `_seq` applied.
    pub last_seq_id: Option<SeqId>,
    /// Acknowledged on the current socket with its snapshot loaded.
    pub live: bool,
}
