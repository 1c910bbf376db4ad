//! The consumer loop: read a batch per partition from its checkpoint, quarantine what does
//! not decode, apply the rest to counters and Parquet, then commit the checkpoint.
//!
//! Every step is idempotent, so a batch that fails anywhere is retried whole: counters
//! dedupe by `event_id`, Parquet and quarantine keys are deterministic, and the checkpoint
//! moves only after both projections are written.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::ObjectStore;
use store::backend::Ports;
use store::dedupe::compare_positions;
use store::{Checkpoints, Counters, EventReader, ReadBatch};

use crate::Result;
use crate::alert_engine::AlertEngine;
use crate::apply::{BatchApplier, ConsumerStats, PassReport};
use crate::parquet_buffer::{FlushPolicy, ProjectionClock};

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The checkpoint name; consumers with different names read independently.
    pub consumer_name: String,
    /// Most records read per partition per pass.
    pub batch_records: usize,
    /// How long to wait when a pass found nothing new.
    pub idle_poll: Duration,
    /// When buffered Parquet is written out.
    pub parquet_flush: FlushPolicy,
    /// How often the current and the previous day's Parquet files are compacted while the
    /// consumer runs (`None`: never; `tollgate compact` and the compaction Lambda remain).
    pub compact_every: Option<Duration>,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            consumer_name: "metering".into(),
            batch_records: 1000,
            idle_poll: Duration::from_millis(200),
            parquet_flush: FlushPolicy::EVERY_BATCH,
            compact_every: None,
        }
    }
}

/// The metering consumer over one log, counters and object store.
pub struct MeteringConsumer {
    log: Arc<dyn EventReader>,
    checkpoints: Arc<dyn Checkpoints>,
    applier: BatchApplier,
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
        log: Arc<dyn EventReader>,
        checkpoints: Arc<dyn Checkpoints>,
        counters: Arc<dyn Counters>,
        objects: Arc<dyn ObjectStore>,
        settings: ConsumerSettings,
    ) -> Self {
        Self::with_applier(
            log,
            checkpoints,
            BatchApplier::new(counters, objects)
                .with_parquet_flush(settings.parquet_flush, ProjectionClock::System),
            settings,
        )
    }

    /// A consumer over a backend's ports: archive and unknown-customer checks included, and
    /// the alert rules when an engine is given.
    pub fn from_ports(
        ports: &Ports,
        settings: ConsumerSettings,
        alerts: Option<Arc<AlertEngine>>,
    ) -> Self {
        Self::with_applier(
            ports.event_reader.clone(),
            ports.checkpoints.clone(),
            BatchApplier::from_ports(ports)
                .with_alert_engine(alerts)
                .with_parquet_flush(settings.parquet_flush, ProjectionClock::System),
            settings,
        )
    }

    /// The consumer's metrics (and its alert engine's), for a metrics endpoint.
    pub fn sample_source(&self) -> telemetry::metrics::SampleSource {
        let stats = Arc::clone(&self.stats);
        let alert_stats = self.applier.alert_stats();
        Arc::new(move || {
            let mut samples = stats.samples();
            if let Some(alert_stats) = &alert_stats {
                samples.extend(alert_stats.samples());
            }
            samples
        })
    }

    /// A consumer applying with a prepared applier.
    pub fn with_applier(
        log: Arc<dyn EventReader>,
        checkpoints: Arc<dyn Checkpoints>,
        applier: BatchApplier,
        settings: ConsumerSettings,
    ) -> Self {
        Self {
            log,
            checkpoints,
            stats: Arc::clone(&applier.stats),
            applier,
            settings,
            finished: Mutex::new(HashSet::new()),
        }
    }

    fn finished_partitions(&self) -> HashSet<String> {
        self.finished
            .lock()
            .map(|finished| finished.clone())
            .unwrap_or_default()
    }

    /// Writes out the Parquet buffers due by size or age (the tailing loop does it after
    /// every pass).
    pub async fn flush_parquet_due(&self) -> Result<()> {
        self.applier.flush_parquet_due().await
    }

    /// Processes at most one batch per partition.
    pub async fn run_pass(&self) -> Result<PassReport> {
        Ok(self.run_pass_to_tips().await?.0)
    }

    /// Processes at most one batch per partition; also says whether every partition read
    /// was caught up (an empty read of a partition behind its tip is not the end of it).
    async fn run_pass_to_tips(&self) -> Result<(PassReport, bool)> {
        let mut total = PassReport::default();
        let mut all_caught_up = true;
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
            let (report, tip) = self
                .process_next_batch(&partition.id)
                .await
                .inspect_err(|_| {
                    self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                })?;
            all_caught_up &= tip.caught_up;
            if tip.end_of_partition {
                finished.insert(partition.id.clone());
                if let Ok(mut shared) = self.finished.lock() {
                    shared.insert(partition.id.clone());
                }
            }
            total.add(&report);
        }
        Ok((total, all_caught_up))
    }

    /// Runs passes until one reads nothing and every partition is caught up, then writes
    /// out the Parquet buffers: everything in the log now is applied.
    pub async fn drain(&self) -> Result<PassReport> {
        let mut total = PassReport::default();
        loop {
            let (report, all_caught_up) = self.run_pass_to_tips().await?;
            if report.records_read == 0 && all_caught_up {
                self.applier.flush_parquet().await?;
                return Ok(total);
            }
            total.add(&report);
        }
    }

    /// Tails the log until `shutdown` completes, then drains what is left and returns.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = self.settings.idle_poll;
        let mut compaction = crate::live_compaction::LiveCompaction::new(
            self.settings.compact_every,
            self.applier.objects(),
        );
        loop {
            let pass = self.run_pass_to_tips().await;
            let flushed = self.flush_parquet_due().await;
            let pass = match (pass, flushed) {
                (Ok(done), Ok(())) => Ok(done),
                (Err(error), _) | (Ok(_), Err(error)) => Err(error),
            };
            compaction.run_if_due().await;
            let wait = match pass {
                Ok((report, all_caught_up)) if report.records_read > 0 || !all_caught_up => {
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

    /// Reads and applies a partition's next batch. The read starts at the counters'
    /// checkpoint, or earlier, at Parquet's progress, when Parquet is behind it (after a
    /// restart its buffer is gone): records up to the checkpoint then go to Parquet only.
    async fn process_next_batch(&self, partition: &str) -> Result<(PassReport, Tip)> {
        let name = &self.settings.consumer_name;
        let checkpoint = self.checkpoints.load_checkpoint(name, partition).await?;
        let start = self
            .applier
            .read_start(partition, checkpoint.as_deref())
            .await?;
        let batch = self
            .log
            .read(partition, start.as_deref(), self.settings.batch_records)
            .await?;
        let ReadBatch {
            entries,
            caught_up,
            end_of_partition,
        } = batch;
        let tip = Tip {
            caught_up,
            end_of_partition,
        };
        let counted = entries
            .iter()
            .take_while(|entry| {
                checkpoint.as_deref().is_some_and(|checkpoint| {
                    compare_positions(&entry.position, checkpoint) != std::cmp::Ordering::Greater
                })
            })
            .count();
        let (behind, ahead) = entries.split_at(counted);
        let mut report = self.applier.project_parquet_only(partition, behind).await?;
        let Some(last) = ahead.last() else {
            return Ok((report, tip));
        };
        report.add(&self.applier.apply_entries(partition, ahead).await?);
        self.checkpoints
            .commit_checkpoint(name, partition, &last.position)
            .await?;
        Ok((report, tip))
    }
}

/// Where a partition's read ended, relative to its tip.
#[derive(Debug, Clone, Copy)]
struct Tip {
    caught_up: bool,
    end_of_partition: bool,
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
