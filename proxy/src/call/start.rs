//! What a call is given when it is accepted, before anything else happens: its ids and
//! its clocks.

use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A call's identity and start times, minted once when the request is accepted.
#[derive(Debug, Clone)]
pub struct CallStart {
    /// The usage event's id (UUIDv7).
    pub event_id: Uuid,
    /// Tollgate's request id, sent back as `x-amzn-requestid`: the event id as text.
    pub request_id: String,
    /// When the call was accepted (the event's `occurred_at`).
    pub accepted_at: DateTime<Utc>,
    /// For the event's `latency_ms`.
    pub started: Instant,
}

impl CallStart {
    /// A call accepted now.
    pub fn now() -> Self {
        let started = Instant::now();
        let accepted_at = Utc::now();
        let event_id = Uuid::now_v7();
        Self {
            event_id,
            request_id: event_id.to_string(),
            accepted_at,
            started,
        }
    }
}
