//! An alert raised by the metering rules (`metering::alerts`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `usage_80`, `usage_100`, `error_rate` or `unusual_usage`.
    pub rule: String,
    pub customer_id: String,
    /// The window it concerns (`day:2026-11-29`, `hour:2026-11-29T10`, …).
    pub window: String,
    pub message: String,
    pub value: f64,
    pub threshold: f64,
}

impl Alert {
    /// What deduplicates it: one alert per rule, customer and window.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.rule, self.customer_id, self.window)
    }
}

/// An alert as recorded, with when it was first raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedAlert {
    pub raised_at: DateTime<Utc>,
    #[serde(flatten)]
    pub alert: Alert,
}
