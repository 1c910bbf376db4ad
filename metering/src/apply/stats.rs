//! The consumer's running totals and a run's report; which projections an applier writes.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals, for logs, metrics and tests.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub records_read: AtomicU64,
    pub events_counted: AtomicU64,
    pub duplicates_skipped: AtomicU64,
    pub records_quarantined: AtomicU64,
    pub parquet_objects_written: AtomicU64,
    pub failed_batches: AtomicU64,
}

impl ConsumerStats {
    /// The consumer's metrics; `tollgate_metering_records_quarantined_total` is the one to
    /// alarm on.
    pub fn samples(&self) -> Vec<telemetry::metrics::Sample> {
        let counter = |name, help, value: &AtomicU64| telemetry::metrics::Sample {
            name,
            help,
            counter: true,
            value: value.load(Ordering::Relaxed) as f64,
        };
        vec![
            counter(
                "tollgate_metering_records_read_total",
                "Log records read by the metering consumer.",
                &self.records_read,
            ),
            counter(
                "tollgate_metering_events_counted_total",
                "Usage events counted for the first time.",
                &self.events_counted,
            ),
            counter(
                "tollgate_metering_duplicates_skipped_total",
                "Usage events already counted (redeliveries, producer retries).",
                &self.duplicates_skipped,
            ),
            counter(
                "tollgate_metering_records_quarantined_total",
                "Log records that could not be metered and were quarantined with their payload.",
                &self.records_quarantined,
            ),
            counter(
                "tollgate_metering_parquet_objects_written_total",
                "Parquet objects written.",
                &self.parquet_objects_written,
            ),
            counter(
                "tollgate_metering_failed_batches_total",
                "Batches that failed and will be applied again.",
                &self.failed_batches,
            ),
        ]
    }
}

/// What applying one run of entries did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub records_read: usize,
    pub events_counted: usize,
    pub duplicates_skipped: usize,
    pub records_quarantined: usize,
}

impl PassReport {
    /// Adds another report's numbers.
    pub fn add(&mut self, other: &Self) {
        self.records_read += other.records_read;
        self.events_counted += other.events_counted;
        self.duplicates_skipped += other.duplicates_skipped;
        self.records_quarantined += other.records_quarantined;
    }
}

/// Which projections an applier writes. A server consumer writes both; on AWS, two
/// metering functions can share the stream: one counting with short batches (limits stay
/// current), one writing Parquet with long ones (large files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MeteringRole {
    /// Counters, archive, watermarks and alerts, then Parquet.
    #[default]
    All,
    /// Counters, archive, watermarks and alerts; no Parquet.
    Counters,
    /// Parquet only (quarantine is the counting consumer's job).
    Parquet,
}

pub(super) fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}
