//! The `Counters` port: per customer, UTC day and model counters, and per customer and UTC
//! hour counters, exactly once per `event_id`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::{DailyUsage, HourlyUsage, UsageEvent};

use crate::Result;

/// An event and the log record it came from (`partition/position`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedEvent {
    pub source: String,
    pub event: UsageEvent,
}

/// What one `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Events counted for the first time by this call.
    pub counted: usize,
    /// Events whose `event_id` was already counted from another source (or earlier in this batch).
    pub duplicates: usize,
    /// One flag per input event, in input order: whether the event's dedupe mark belongs to
    /// the source given with it (counted now, or by an earlier apply of the same record).
    /// Exactly the owned events belong in the Parquet projection.
    pub owned: Vec<bool>,
}

impl ApplyReport {
    /// How many input events are owned by their source.
    pub fn owned_count(&self) -> usize {
        self.owned.iter().filter(|owned| **owned).count()
    }
}

/// How long hourly cells are kept: the alert rules look back at most this far.
pub const HOURLY_RETENTION_DAYS: i64 = 35;

/// Counters per (customer, UTC day, model), and per (customer, UTC hour).
///
/// Contracts every backend keeps:
/// - `apply` counts each `event_id` at most once, ever: applying the same batch twice, or
///   overlapping batches, changes nothing the second time. The dedupe mark (`event_id` →
///   source) and the counter increments commit atomically: after a failure either both
///   happened or neither did.
/// - Re-applying an event from the source that first counted it reports it `owned`; from
///   any other source it is a duplicate and not owned.
/// - `read_daily` returns cells for days in `from..=to`, ordered by day then model, and omits
///   cells with no events. An unknown customer reads as empty.
/// - The hourly cells are written in the same atomic step as the daily ones, so they count
///   each event once too. `read_hourly` returns the hours in `from..=to` (starts of UTC
///   hours), oldest first, omitting empty hours. Hours older than
///   [`HOURLY_RETENTION_DAYS`] may have been dropped.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Applies a batch of events idempotently by `event_id`.
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport>;

    /// Reads one customer's counters for an inclusive range of UTC days.
    async fn read_daily(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>>;

    /// Reads one customer's hourly counters for an inclusive range of hours.
    async fn read_hourly(
        &self,
        customer_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlyUsage>>;
}
