//! The embedded log's retention: which records are settled, and moving them out of the
//! database into the data directory's raw archive, so the database's size follows the
//! retention window, not the installation's history.
//!
//! A record is settled when every reader that resumes from the log is past it: every
//! consumer's checkpoint in its partition, and the Parquet projection's own progress
//! (`state/parquet/<partition>.json`, which can lag the counters while Parquet buffers),
//! and it was appended longer ago than the window. Settled records are archived (each file
//! durable before the next step), then deleted, then the space is given back. A crash
//! between archiving and deleting leaves the records in both; readers take the archive and
//! then the log after the highest archived position (`raw::archived_log_records`), and the
//! next run deletes them.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::backend::Ports;
use store::dedupe::compare_positions;
use store::{LogFootprint, LogRetention};

use crate::Result;
use crate::fault::crash_point;
use crate::parquet_projection::ParquetState;

/// The default window, in hours: a day, as a Kinesis stream keeps records by default. At
/// 1,000 calls/s that is about 86 million events, some 6 GB of database in frames of ten
/// events (`bench/retention.sh`: 67 MB per million events).
pub const DEFAULT_WINDOW_HOURS: u64 = 24;

/// How the log's retention runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetentionSettings {
    /// Settled records stay in the log at least this long after they were appended.
    pub window: Duration,
    /// How often `serve` looks for settled records.
    pub check_every: Duration,
}

impl Default for LogRetentionSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(DEFAULT_WINDOW_HOURS * 3600),
            check_every: Duration::from_secs(300),
        }
    }
}

/// What one retention run did to one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionRetention {
    pub partition: String,
    /// The last position every reader is past, if any.
    pub settled_through: Option<String>,
    /// Who is furthest behind (a consumer's name, `parquet`), or why nothing is settled.
    pub held_back_by: Option<String>,
    pub records_archived: u64,
    pub files_written: u64,
    /// The highest position in the archive after the run.
    pub archived_through: Option<String>,
    pub records_deleted: u64,
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// False when the backend's log expires records itself (AWS): nothing was done.
    pub applicable: bool,
    pub window_seconds: u64,
    pub partitions: Vec<PartitionRetention>,
    /// Bytes the database file shrank by.
    pub bytes_reclaimed: u64,
    pub before: LogFootprint,
    pub after: LogFootprint,
}

impl RetentionReport {
    /// Records archived in every partition.
    pub fn records_archived(&self) -> u64 {
        self.partitions.iter().map(|p| p.records_archived).sum()
    }

    /// Records deleted from the log in every partition.
    pub fn records_deleted(&self) -> u64 {
        self.partitions.iter().map(|p| p.records_deleted).sum()
    }
}

/// The last position of `partition` that every consumer and the Parquet projection are
/// past, with who is furthest behind. Nothing is settled while a partition has no
/// consumer checkpoint or no Parquet progress.
pub async fn settled_through(
    ports: &Ports,
    retention: &dyn LogRetention,
    partition: &str,
) -> Result<(Option<String>, String)> {
    let mut readers = retention.checkpoints_in(partition).await?;
    if readers.is_empty() {
        return Ok((None, "no consumer has a checkpoint".into()));
    }
    match ParquetState::load(&ports.objects, partition).await?.through {
        Some(through) => readers.push(("parquet".into(), through)),
        None => return Ok((None, "parquet has no progress yet".into())),
    }
    let lowest = readers
        .into_iter()
        .min_by(|(_, left), (_, right)| compare_positions(left, right))
        .map(|(reader, position)| (Some(position), reader));
    Ok(lowest.unwrap_or((None, String::new())))
}

/// Moves the settled records of every partition older than `settings.window` (at `now`)
/// into the archive, deletes them from the log, and gives the space back. Safe to run
/// again at any time, also after a crash anywhere in it, and next to a running consumer.
pub async fn retire_settled_log(
    ports: &Ports,
    settings: &LogRetentionSettings,
    now: DateTime<Utc>,
) -> Result<RetentionReport> {
    let mut report = RetentionReport {
        window_seconds: settings.window.as_secs(),
        ..RetentionReport::default()
    };
    let Some(retention) = ports.log_retention.clone() else {
        return Ok(report);
    };
    report.applicable = true;
    report.before = retention.footprint().await?;
    let appended_before = chrono::Duration::from_std(settings.window)
        .ok()
        .and_then(|window| now.checked_sub_signed(window))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    for partition in ports.event_reader.partitions().await? {
        let (settled, held_back_by) =
            settled_through(ports, retention.as_ref(), &partition.id).await?;
        let mut done = PartitionRetention {
            partition: partition.id.clone(),
            held_back_by: Some(held_back_by),
            ..PartitionRetention::default()
        };
        let started = std::time::Instant::now();
        if let Some(through) = &settled {
            let archived = retention
                .archive_settled(&partition.id, through, appended_before)
                .await?;
            done.records_archived = archived.records;
            done.files_written = archived.files;
            done.archived_through = archived.archived_through;
        }
        let archived_in = started.elapsed();
        crash_point("retention_after_archive");
        // Also after a run that archived and crashed before deleting.
        done.records_deleted = retention.delete_archived(&partition.id).await?;
        tracing::debug!(
            partition = %partition.id,
            archive_ms = archived_in.as_millis() as u64,
            delete_ms = (started.elapsed() - archived_in).as_millis() as u64,
            "log retention: archived and deleted"
        );
        done.settled_through = settled;
        report.partitions.push(done);
    }
    let started = std::time::Instant::now();
    report.bytes_reclaimed = retention.reclaim_space().await?;
    tracing::debug!(
        reclaim_ms = started.elapsed().as_millis() as u64,
        bytes = report.bytes_reclaimed,
        "log retention: space given back"
    );
    report.after = retention.footprint().await?;
    Ok(report)
}

/// Runs the retention every `settings.check_every` until `stop` completes (what `serve`
/// runs next to its consumer). Failures are logged and retried at the next check.
pub async fn run_log_retention_until(
    ports: Ports,
    settings: LogRetentionSettings,
    stop: impl Future<Output = ()>,
) {
    if ports.log_retention.is_none() {
        return;
    }
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(settings.check_every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        match retire_settled_log(&ports, &settings, Utc::now()).await {
            Ok(report) if report.records_archived() > 0 || report.records_deleted() > 0 => {
                tracing::info!(
                    archived = report.records_archived(),
                    deleted = report.records_deleted(),
                    bytes_reclaimed = report.bytes_reclaimed,
                    database_bytes = report.after.database_bytes,
                    "moved settled log records into the archive"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "log retention failed; retrying at the next check");
            }
        }
    }
}

#[cfg(test)]
#[path = "log_retention_tests.rs"]
mod tests;
