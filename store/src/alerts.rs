//! The `Alerts` port: which alerts were raised, so each (rule, customer, window) is
//! delivered once, and `tollgate alerts` can list them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::alert::{Alert, RecordedAlert};

use crate::Result;

/// Raised alerts.
///
/// Contracts every backend keeps:
/// - `record` returns `true` the first time an alert's key is recorded and `false` after,
///   also under concurrent callers: exactly one of them delivers it.
/// - `since` lists alerts raised at or after a time, oldest first.
#[async_trait]
pub trait Alerts: Send + Sync {
    /// Records an alert raised at `at`; `true` when its key is new.
    async fn record(&self, alert: &Alert, at: DateTime<Utc>) -> Result<bool>;

    /// Alerts raised at or after `since`, oldest first.
    async fn since(&self, since: DateTime<Utc>) -> Result<Vec<RecordedAlert>>;
}
