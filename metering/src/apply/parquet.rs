//! The applier's Parquet side: how it buffers, where the consumer reads from when Parquet
//! is behind the counters, and writing the buffers out.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use schemas::UsageEvent;
use store::SourcedEvent;

use super::BatchApplier;
use crate::Result;
use crate::parquet_buffer::{FlushPolicy, ParquetProjection};

impl BatchApplier {
    /// Buffers Parquet across batches and writes it out by `policy` (every batch unless
    /// set), with buffer ages on `clock`.
    pub fn with_parquet_flush(
        mut self,
        policy: FlushPolicy,
        clock: crate::parquet_buffer::ProjectionClock,
    ) -> Self {
        if self.parquet.is_some() {
            self.parquet =
                Some(ParquetProjection::new(Arc::clone(&self.objects), policy).with_clock(clock));
        }
        self
    }

    /// Where the consumer reads `partition` from, given the counters' checkpoint: earlier
    /// than it when Parquet is behind (see `ParquetProjection::resume_from`).
    pub async fn read_start(
        &self,
        partition: &str,
        checkpoint: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(parquet) = &self.parquet else {
            return Ok(checkpoint.map(str::to_owned));
        };
        let parents = self.parents_of(partition).await?;
        parquet.resume_from(partition, &parents, checkpoint).await
    }

    /// Writes out the Parquet buffers that are due by size or age.
    pub async fn flush_parquet_due(&self) -> Result<()> {
        self.flush_counted(true).await
    }

    /// Writes out every Parquet buffer.
    pub async fn flush_parquet(&self) -> Result<()> {
        self.flush_counted(false).await
    }

    async fn flush_counted(&self, only_due: bool) -> Result<()> {
        let Some(parquet) = &self.parquet else {
            return Ok(());
        };
        let before = parquet.files_written();
        let flushed = if only_due {
            parquet.flush_due().await
        } else {
            parquet.flush_all().await
        };
        self.count_parquet_files(before);
        flushed.map(|_| ())
    }

    /// Writes out one partition's Parquet buffer and forgets its progress (the next batch
    /// reads the stored state: the Lambda consumer's next invocation may run elsewhere).
    pub async fn flush_parquet_partition(&self, partition: &str) -> Result<()> {
        let Some(parquet) = &self.parquet else {
            return Ok(());
        };
        let before = parquet.files_written();
        let flushed = parquet.flush_partition(partition, false).await;
        self.count_parquet_files(before);
        flushed.map(|_| ())
    }

    fn count_parquet_files(&self, before: u64) {
        if let Some(parquet) = &self.parquet {
            self.stats.parquet_objects_written.fetch_add(
                parquet.files_written().saturating_sub(before),
                Ordering::Relaxed,
            );
        }
    }

    /// Takes a run's events into Parquet (when this applier writes it); the events taken.
    pub(super) async fn take_into_parquet<'a>(
        &self,
        partition: &str,
        last_position: &str,
        sourced: &'a [SourcedEvent],
    ) -> Result<Option<Vec<&'a UsageEvent>>> {
        let Some(parquet) = &self.parquet else {
            return Ok(None);
        };
        let parents = self.parents_of(partition).await?;
        let before = parquet.files_written();
        let taken = parquet
            .take(partition, &parents, last_position, sourced)
            .await;
        self.count_parquet_files(before);
        taken.map(Some)
    }
}
