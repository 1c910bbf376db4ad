//! The `Counters` port: per customer, UTC day and model counters, and per customer and UTC
//! hour counters, each event counted exactly once, by its producer's sequence number.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::{DailyUsage, HourlyUsage, UsageEvent};

use crate::Result;

/// An event and where it sits in the log: its record's partition and position. The events
/// of one record (a frame) share a position, and a run's events their partition: shared
/// strings, so a run of events does not copy them once per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedEvent {
    pub partition: Arc<str>,
    /// Decimal, increasing within the partition (see `dedupe::compare_positions`).
    pub position: Arc<str>,
    pub event: UsageEvent,
}

/// What one `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Events counted for the first time by this call.
    pub counted: usize,
    /// Events already counted (a producer's number seen before, or earlier in this batch).
    pub duplicates: usize,
}

/// How long hourly cells are kept: the alert rules look back at most this far.
pub const HOURLY_RETENTION_DAYS: i64 = 35;

/// Counters per (customer, UTC day, model), and per (customer, UTC hour).
///
/// Contracts every backend keeps:
/// - `apply` counts each `(proxy_instance, instance_seq)` at most once, ever (see
///   `crate::dedupe`): an event whose number its producer already had counted, by any
///   earlier apply or earlier in the same batch, is a duplicate, whatever its position.
/// - A batch is the events of consecutive records of one partition, in log order. Applying
///   it again, whole or any part of it, or a batch that starts at the same record and goes
///   further, counts only what was not counted, even after a failure part-way through an
///   earlier apply: what one apply wrote is never lost and never written twice.
/// - `read_daily` returns cells for days in `from..=to`, ordered by day then model, and omits
///   cells with no events. An unknown customer reads as empty.
/// - The hourly cells count each event once too. `read_hourly` returns the hours in
///   `from..=to` (starts of UTC hours), oldest first, omitting empty hours. Hours older than
///   [`HOURLY_RETENTION_DAYS`] may have been dropped.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Counts a batch of events, idempotently by producer sequence number and log position.
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
