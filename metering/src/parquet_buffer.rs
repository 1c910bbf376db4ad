//! Parquet buffered across batches: events are appended to in-memory Parquet files (their
//! encoded pages, not the events), one per partition and day, and written out when the
//! buffer is large or old enough, at shutdown, or when asked. Large files are what Athena
//! and DuckDB read fast and what S3 charges least for; the counters do not wait for them.
//!
//! The exactly-once protocol (state, `pending`, recovery) is in
//! [`crate::parquet_projection`]. What is in a buffer is not durable: after a crash, the
//! consumer reads the log again from the state's `through` ([`ParquetProjection::through`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use schemas::UsageEvent;
use schemas::parquet_codec::{UsageParquetEncoder, UsageParquetFile};
use store::SourcedEvent;
use store::dedupe::{classify_batch, compare_positions};
use tokio::sync::Mutex;

use crate::Result;
use crate::object_keys::BatchObjectKey;
use crate::parquet_projection::ParquetState;

/// When a partition's buffer is written out: when its files reach `max_bytes` (encoded)
/// or its first event was taken `max_age` ago, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    pub max_bytes: usize,
    pub max_age: Duration,
}

impl FlushPolicy {
    /// Every batch is written out as it is applied (the Lambda consumer, and tests that
    /// read Parquet while the consumer runs).
    pub const EVERY_BATCH: Self = Self {
        max_bytes: 0,
        max_age: Duration::ZERO,
    };

    /// The server consumer's default: 128 MiB or 5 minutes, like Firehose's largest buffer.
    pub const SERVER_DEFAULT: Self = Self {
        max_bytes: 128 * 1024 * 1024,
        max_age: Duration::from_secs(300),
    };

    fn is_due(&self, bytes: usize, age: Duration) -> bool {
        bytes >= self.max_bytes || age >= self.max_age
    }
}

/// Where a buffer's age comes from: the process's monotonic clock, or one a benchmark
/// moves (to run an hour of traffic in seconds).
#[derive(Debug, Clone, Default)]
pub enum ProjectionClock {
    #[default]
    System,
    /// Milliseconds, set by the owner.
    Manual(Arc<AtomicU64>),
}

impl ProjectionClock {
    fn now(&self) -> Duration {
        static START: LazyLock<Instant> = LazyLock::new(Instant::now);
        match self {
            Self::System => START.elapsed(),
            Self::Manual(millis) => Duration::from_millis(millis.load(Ordering::Relaxed)),
        }
    }
}

/// One partition's progress: as stored, and as in memory (stored plus the buffer).
struct PartitionProgress {
    committed: ParquetState,
    working: ParquetState,
    buffer: Option<OpenBuffer>,
}

/// Events taken since the last flush, encoded into one file per day.
struct OpenBuffer {
    first_position: String,
    days: BTreeMap<NaiveDate, UsageParquetFile>,
    opened_at: Duration,
}

impl OpenBuffer {
    fn encoded_bytes(&self) -> usize {
        self.days
            .values()
            .map(UsageParquetFile::encoded_bytes)
            .sum()
    }
}

/// What a flush wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub files: Vec<BatchObjectKey>,
    pub rows: usize,
}

/// The Parquet projection of a consumer: per partition, its progress and its buffer.
pub struct ParquetProjection {
    objects: Arc<dyn ObjectStore>,
    policy: FlushPolicy,
    clock: ProjectionClock,
    encoder: UsageParquetEncoder,
    partitions: Mutex<HashMap<String, PartitionProgress>>,
    /// Partitions whose buffer was dropped after a failure, until their next flush says so.
    lost: std::sync::Mutex<std::collections::HashSet<String>>,
    files_written: AtomicU64,
}

impl std::fmt::Debug for ParquetProjection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ParquetProjection")
            .field("policy", &self.policy)
            .finish()
    }
}

impl ParquetProjection {
    /// A projection writing under `objects` with `policy`.
    pub fn new(objects: Arc<dyn ObjectStore>, policy: FlushPolicy) -> Self {
        Self {
            objects,
            policy,
            clock: ProjectionClock::System,
            encoder: UsageParquetEncoder::new(),
            partitions: Mutex::new(HashMap::new()),
            lost: std::sync::Mutex::new(std::collections::HashSet::new()),
            files_written: AtomicU64::new(0),
        }
    }

    /// Measures buffer ages on `clock`.
    pub fn with_clock(mut self, clock: ProjectionClock) -> Self {
        self.clock = clock;
        self
    }

    /// Parquet files written since the projection was made.
    pub fn files_written(&self) -> u64 {
        self.files_written.load(Ordering::Relaxed)
    }

    /// The flush policy.
    pub fn policy(&self) -> FlushPolicy {
        self.policy
    }

    async fn progress<'m>(
        &self,
        partitions: &'m mut HashMap<String, PartitionProgress>,
        partition: &str,
        parents: &[String],
    ) -> Result<&'m mut PartitionProgress> {
        if !partitions.contains_key(partition) {
            let state = ParquetState::load_for_writing(&self.objects, partition, parents).await?;
            partitions.insert(
                partition.to_owned(),
                PartitionProgress {
                    committed: state.clone(),
                    working: state,
                    buffer: None,
                },
            );
        }
        partitions.get_mut(partition).ok_or_else(|| {
            crate::MeteringError::Invalid(format!("parquet progress of {partition} vanished"))
        })
    }

    /// Where the consumer reads `partition` from, given the counters' `checkpoint`: the
    /// checkpoint, or the last position Parquet holds (written or buffered) when that is
    /// earlier (after a restart, or a failed flush, the buffer is gone); `None` is the
    /// log's start. A partition Parquet meets for the first time starts at the checkpoint,
    /// and that is stored at once, so a buffer lost before its first flush is read again.
    pub async fn resume_from(
        &self,
        partition: &str,
        parents: &[String],
        checkpoint: Option<&str>,
    ) -> Result<Option<String>> {
        let mut partitions = self.partitions.lock().await;
        let progress = self.progress(&mut partitions, partition, parents).await?;
        if !progress.working.stored {
            progress.working.through = checkpoint.map(str::to_owned);
            progress.working.stored = true;
            progress.working.store(&self.objects, partition).await?;
            progress.committed = progress.working.clone();
            return Ok(progress.working.through.clone());
        }
        Ok(match (checkpoint, progress.working.through.as_deref()) {
            (Some(checkpoint), Some(through))
                if compare_positions(through, checkpoint) == std::cmp::Ordering::Less =>
            {
                Some(through.to_owned())
            }
            (Some(_), None) => None,
            (checkpoint, _) => checkpoint.map(str::to_owned),
        })
    }

    /// Takes the events of a batch (in log order, ending at `last_position`) that Parquet
    /// does not hold yet into the buffer, and writes the buffer out if it is due; returns
    /// the events taken.
    pub async fn take<'a>(
        &self,
        partition: &str,
        parents: &[String],
        last_position: &str,
        events: &'a [SourcedEvent],
    ) -> Result<Vec<&'a UsageEvent>> {
        let mut partitions = self.partitions.lock().await;
        let progress = self.progress(&mut partitions, partition, parents).await?;
        let taken = match self.take_into(progress, last_position, events) {
            Ok(taken) => taken,
            Err(error) => {
                // The buffer may hold part of the batch: drop it (the state is reloaded),
                // and make the partition's next flush fail, so the caller reads again from
                // the stored progress.
                partitions.remove(partition);
                if let Ok(mut lost) = self.lost.lock() {
                    lost.insert(partition.to_owned());
                }
                return Err(error);
            }
        };
        drop(partitions);
        if self.is_due(partition).await {
            self.flush_partition(partition, true).await?;
        }
        Ok(taken)
    }

    fn take_into<'a>(
        &self,
        progress: &mut PartitionProgress,
        last_position: &str,
        events: &'a [SourcedEvent],
    ) -> Result<Vec<&'a UsageEvent>> {
        if progress.working.covers(last_position) {
            return Ok(Vec::new());
        }
        let fresh_from = events
            .iter()
            .position(|sourced| !progress.working.covers(&sourced.position))
            .unwrap_or(events.len());
        let classified = classify_batch(&events[fresh_from..], &progress.working.producers);
        let written: Vec<&UsageEvent> = classified
            .new_events()
            .map(|sourced| &sourced.event)
            .collect();
        if let Some(first) = classified.new_events().next() {
            let now = self.clock.now();
            let buffer = progress.buffer.get_or_insert_with(|| OpenBuffer {
                first_position: first.position.to_string(),
                days: BTreeMap::new(),
                opened_at: now,
            });
            for (day, day_events) in crate::parquet_sink::group_by_day(written.iter().copied()) {
                let file = match buffer.days.entry(day) {
                    std::collections::btree_map::Entry::Occupied(found) => found.into_mut(),
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(self.encoder.start_file()?)
                    }
                };
                file.append(&day_events)?;
            }
        }
        let today = crate::parquet_projection::epoch_day_today();
        for (producer, numbers) in classified.taken() {
            progress
                .working
                .producers
                .entry(producer.to_owned())
                .or_default()
                .extend(&numbers);
            progress.working.mark_taken(producer, today);
        }
        progress.working.through = Some(last_position.to_owned());
        progress.working.stored = true;
        Ok(written)
    }

    async fn is_due(&self, partition: &str) -> bool {
        let partitions = self.partitions.lock().await;
        let Some(progress) = partitions.get(partition) else {
            return false;
        };
        let Some(buffer) = &progress.buffer else {
            // Nothing to write, but flushing every batch also moves `through` every batch.
            return self.policy.max_age.is_zero()
                && progress.working.through != progress.committed.through;
        };
        let age = self.clock.now().saturating_sub(buffer.opened_at);
        self.policy.is_due(buffer.encoded_bytes(), age)
    }

    /// Writes out the buffers that are due (by size or age).
    pub async fn flush_due(&self) -> Result<FlushReport> {
        self.flush_each(true).await
    }

    /// Writes out every buffer (at shutdown, or when the log is drained).
    pub async fn flush_all(&self) -> Result<FlushReport> {
        self.flush_each(false).await
    }

    async fn flush_each(&self, only_due: bool) -> Result<FlushReport> {
        let names: Vec<String> = self.partitions.lock().await.keys().cloned().collect();
        let mut report = FlushReport::default();
        for partition in names {
            if only_due && !self.is_due(&partition).await {
                continue;
            }
            let flushed = self.flush_partition(&partition, true).await?;
            report.files.extend(flushed.files);
            report.rows += flushed.rows;
        }
        Ok(report)
    }

    /// Writes out `partition`'s buffer: the state with the keys to write (`pending`), the
    /// files, then the state as in memory. `keep` keeps the progress in memory for the next
    /// batch; without it (the Lambda consumer, whose next invocation may run elsewhere) the
    /// next batch reads the stored state. A failure (here, or an earlier one that dropped
    /// the buffer) forgets the partition's progress, so the next batch reloads the stored
    /// state (and the consumer reads again from there).
    pub async fn flush_partition(&self, partition: &str, keep: bool) -> Result<FlushReport> {
        if self
            .lost
            .lock()
            .is_ok_and(|mut lost| lost.remove(partition))
        {
            return Err(crate::MeteringError::Invalid(format!(
                "the parquet buffer of {partition} was dropped after a failure; its events are read again from the stored progress"
            )));
        }
        let mut partitions = self.partitions.lock().await;
        let Some(mut progress) = partitions.remove(partition) else {
            return Ok(FlushReport::default());
        };
        let report = self.write_out(partition, &mut progress).await?;
        if keep {
            partitions.insert(partition.to_owned(), progress);
        }
        Ok(report)
    }

    async fn write_out(
        &self,
        partition: &str,
        progress: &mut PartitionProgress,
    ) -> Result<FlushReport> {
        let Some(buffer) = progress.buffer.take() else {
            if progress.working.through != progress.committed.through {
                progress.working.store(&self.objects, partition).await?;
                progress.committed = progress.working.clone();
            }
            return Ok(FlushReport::default());
        };
        let keys: Vec<BatchObjectKey> = buffer
            .days
            .keys()
            .map(|day| BatchObjectKey {
                day: *day,
                partition: partition.to_owned(),
                first_position: buffer.first_position.clone(),
            })
            .collect();
        let mut ahead = progress.committed.clone();
        ahead.pending = keys.iter().map(ToString::to_string).collect();
        ahead.store(&self.objects, partition).await?;
        let mut rows = 0;
        for (key, (_, file)) in keys.iter().zip(buffer.days) {
            rows += file.rows();
            let bytes = file.finish()?;
            self.objects
                .put(&key.to_path(), PutPayload::from(bytes))
                .await?;
            self.files_written.fetch_add(1, Ordering::Relaxed);
            crate::fault::crash_point("abort-during-parquet-flush");
        }
        progress.working.pending.clear();
        progress.working.store(&self.objects, partition).await?;
        progress.committed = progress.working.clone();
        Ok(FlushReport { files: keys, rows })
    }
}

/// Writes a batch of one partition's events (in log order) to Parquet at once, exactly
/// once per producer number, and moves the partition's progress to the batch's last
/// position; returns the events written. (A [`ParquetProjection`] that flushes every batch.)
///
/// A partition met for the first time starts from the producer numbers of `parents` (the
/// partitions a reshard split or merged it from, read to their end before it): a record
/// sent again after a reshard lands in the child while its original is in a parent.
pub async fn project_batch<'a>(
    objects: &Arc<dyn ObjectStore>,
    partition: &str,
    parents: &[String],
    last_position: &str,
    events: &'a [SourcedEvent],
) -> Result<Vec<&'a UsageEvent>> {
    let projection = ParquetProjection::new(Arc::clone(objects), FlushPolicy::EVERY_BATCH);
    let taken = projection
        .take(partition, parents, last_position, events)
        .await?;
    projection.flush_partition(partition, false).await?;
    Ok(taken)
}

#[cfg(test)]
#[path = "parquet_buffer_tests.rs"]
mod tests;
