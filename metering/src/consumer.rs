//! The consumer loop: read a batch per partition from its checkpoint, quarantine what does
//! not decode, apply the rest to counters and Parquet, then commit the checkpoint.
//!
//! Every step is idempotent, so a batch that fails anywhere is retried whole: counters
//! dedupe by `event_id`, Parquet and quarantine keys are deterministic, and the checkpoint
//! moves only after both projections are written.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::ObjectStore;
use schemas::UsageEvent;
use store::{Counters, EventLog, LogEntry, ReadBatch, SourcedEvent};

use crate::Result;
use crate::parquet_sink::write_usage_parquet;
use crate::quarantine::quarantine_record;

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The checkpoint name; consumers with different names read independently.
    pub consumer_name: String,
    /// Most records read per partition per pass.
    pub batch_records: usize,
    /// How long to wait when a pass found nothing new.
    pub idle_poll: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            consumer_name: "metering".into(),
            batch_records: 1000,
            idle_poll: Duration::from_millis(200),
        }
    }
}

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

/// What one pass over the partitions did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub records_read: usize,
    pub events_counted: usize,
    pub duplicates_skipped: usize,
    pub records_quarantined: usize,
}

/// The metering consumer over one log, counters and object store.
pub struct MeteringConsumer {
    log: Arc<dyn EventLog>,
    counters: Arc<dyn Counters>,
    objects: Arc<dyn ObjectStore>,
    settings: ConsumerSettings,
    pub stats: Arc<ConsumerStats>,
    /// Closed partitions read to their end; their children may now be read.
    finished: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for MeteringConsumer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MeteringConsumer")
            .field("settings", &self.settings)
            .finish()
    }
}

impl MeteringConsumer {
    /// A consumer over the given ports.
    pub fn new(
        log: Arc<dyn EventLog>,
        counters: Arc<dyn Counters>,
        objects: Arc<dyn ObjectStore>,
        settings: ConsumerSettings,
    ) -> Self {
        Self {
            log,
            counters,
            objects,
            settings,
            stats: Arc::new(ConsumerStats::default()),
            finished: Mutex::new(HashSet::new()),
        }
    }

    fn finished_partitions(&self) -> HashSet<String> {
        self.finished
            .lock()
            .map(|finished| finished.clone())
            .unwrap_or_default()
    }

    /// Processes at most one batch per partition.
    pub async fn run_pass(&self) -> Result<PassReport> {
        let mut total = PassReport::default();
        let partitions = self.log.partitions().await?;
        let present: HashSet<String> = partitions
            .iter()
            .map(|partition| partition.id.clone())
            .collect();
        let mut finished = self.finished_partitions();
        for partition in partitions {
            if finished.contains(&partition.id) {
                continue;
            }
            let parent_unfinished = partition
                .parents
                .iter()
                .any(|parent| present.contains(parent) && !finished.contains(parent));
            if parent_unfinished {
                continue;
            }
            let (report, end_of_partition) = self
                .process_next_batch(&partition.id)
                .await
                .inspect_err(|_| {
                    self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                })?;
            if end_of_partition {
                finished.insert(partition.id.clone());
                if let Ok(mut shared) = self.finished.lock() {
                    shared.insert(partition.id.clone());
                }
            }
            total.records_read += report.records_read;
            total.events_counted += report.events_counted;
            total.duplicates_skipped += report.duplicates_skipped;
            total.records_quarantined += report.records_quarantined;
        }
        Ok(total)
    }

    /// Runs passes until one reads nothing: everything in the log now is applied.
    pub async fn drain(&self) -> Result<PassReport> {
        let mut total = PassReport::default();
        loop {
            let report = self.run_pass().await?;
            if report.records_read == 0 {
                return Ok(total);
            }
            total.records_read += report.records_read;
            total.events_counted += report.events_counted;
            total.duplicates_skipped += report.duplicates_skipped;
            total.records_quarantined += report.records_quarantined;
        }
    }

    /// Tails the log until `shutdown` completes, then drains what is left and returns.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = self.settings.idle_poll;
        loop {
            let wait = match self.run_pass().await {
                Ok(report) if report.records_read > 0 => {
                    backoff = self.settings.idle_poll;
                    Duration::ZERO
                }
                Ok(_) => self.settings.idle_poll,
                Err(error) => {
                    tracing::warn!(error = %error, retryable = error.is_retryable(), "metering batch failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        match self.drain().await {
            Ok(report) => tracing::info!(
                records = report.records_read,
                "metering drained at shutdown"
            ),
            Err(error) => {
                tracing::error!(error = %error, "metering could not drain at shutdown; the next start resumes from the checkpoint")
            }
        }
    }

    async fn process_next_batch(&self, partition: &str) -> Result<(PassReport, bool)> {
        let name = &self.settings.consumer_name;
        let checkpoint = self.log.load_checkpoint(name, partition).await?;
        let batch = self
            .log
            .read(
                partition,
                checkpoint.as_deref(),
                self.settings.batch_records,
            )
            .await?;
        let ReadBatch {
            entries,
            end_of_partition,
        } = batch;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok((PassReport::default(), end_of_partition));
        };

        let mut sourced = Vec::with_capacity(entries.len());
        let mut quarantined = 0;
        for entry in &entries {
            match UsageEvent::decode_json(&entry.data) {
                Ok(event) => sourced.push(SourcedEvent {
                    source: source_of(entry),
                    event,
                }),
                Err(error) => {
                    tracing::error!(partition, position = %entry.position, error = %error, "undecodable usage record quarantined");
                    quarantine_record(&self.objects, entry, &error.to_string()).await?;
                    quarantined += 1;
                }
            }
        }

        let applied = self.counters.apply(&sourced).await?;
        let owned: Vec<&UsageEvent> = sourced
            .iter()
            .zip(&applied.owned)
            .filter(|(_, owned)| **owned)
            .map(|(sourced, _)| &sourced.event)
            .collect();
        let written =
            write_usage_parquet(&self.objects, partition, &first.position, &owned).await?;
        self.log
            .commit_checkpoint(name, partition, &last.position)
            .await?;

        let stats = &self.stats;
        stats
            .records_read
            .fetch_add(count(entries.len()), Ordering::Relaxed);
        stats
            .events_counted
            .fetch_add(count(applied.counted), Ordering::Relaxed);
        stats
            .duplicates_skipped
            .fetch_add(count(applied.duplicates), Ordering::Relaxed);
        stats
            .records_quarantined
            .fetch_add(count(quarantined), Ordering::Relaxed);
        stats
            .parquet_objects_written
            .fetch_add(count(written.len()), Ordering::Relaxed);
        if applied.duplicates > 0 {
            tracing::info!(
                partition,
                duplicates = applied.duplicates,
                "duplicate usage events skipped"
            );
        }
        let report = PassReport {
            records_read: entries.len(),
            events_counted: applied.counted,
            duplicates_skipped: applied.duplicates,
            records_quarantined: quarantined,
        };
        Ok((report, end_of_partition))
    }
}

fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The dedupe source of a log entry: `partition/position`.
pub fn source_of(entry: &LogEntry) -> String {
    format!("{}/{}", entry.partition, entry.position)
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
