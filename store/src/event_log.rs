//! The event log's ports: an append-only, partitioned log of usage-event records, seen
//! through three narrow traits. Producers (the proxy) hold only an [`EventAppender`];
//! consumers read with an [`EventReader`] and keep their place in [`Checkpoints`].

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// A record to append. The partition key decides the partition (the customer id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// A record read back, with where it sits in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub partition: String,
    /// Opaque, backend-defined, increasing within a partition.
    pub position: String,
    pub partition_key: String,
    pub data: Bytes,
}

/// A partition of the log, with the partitions it was split or merged from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: String,
    /// Partitions whose records come before this one's (Kinesis parent shards after a
    /// reshard). Consumers read them to their end before reading this one.
    pub parents: Vec<String>,
}

/// One read of a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub entries: Vec<LogEntry>,
    /// The read reached the partition's tip: when it ended, no record followed the last
    /// entry returned (or `after`, when none was). `false` means there may be more to read
    /// now, even when no entry was returned (a Kinesis shard behind its tip can answer
    /// empty pages before its records).
    pub caught_up: bool,
    /// The partition is closed and nothing follows the last entry returned (or `after`,
    /// when no entry was returned). Open partitions never set it; it implies `caught_up`.
    pub end_of_partition: bool,
}

/// Why one record of an append was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendFailure {
    /// Whether appending the same record again may succeed.
    pub retryable: bool,
    pub message: String,
}

/// The outcome of one record of an append: its position, or why it failed.
pub type AppendResult = std::result::Result<String, AppendFailure>;

/// The producer side of the log: appends batches of records.
///
/// Contract: `append` returns exactly one result per input record, in input order. A
/// record with an `Ok` result (its position) is durable; one with an `Err` result was not
/// written and may be retried alone. An `Err` from the call itself means nothing is known
/// about the batch, so callers retry it whole (consumers dedupe by `event_id`).
#[async_trait]
pub trait EventAppender: Send + Sync {
    /// Appends records; one result per record, in order.
    async fn append(&self, records: &[LogRecord]) -> Result<Vec<AppendResult>>;

    /// Appends records at once on the calling thread, for a log whose append is a short
    /// local write (the embedded log): a caller waiting for durability then needs no
    /// hand-off to another thread. `None` when this log has no such path, or cannot append
    /// without waiting right now (another writer holds it); the caller then uses
    /// [`EventAppender::append`]. `Some` has `append`'s contract.
    fn append_now(&self, _records: &[LogRecord]) -> Option<Result<Vec<AppendResult>>> {
        None
    }
}

/// Whether `log` appends on the calling thread ([`EventAppender::append_now`]), probed
/// with an empty batch.
pub fn appends_on_the_calling_thread(log: &dyn EventAppender) -> bool {
    matches!(log.append_now(&[]), Some(Ok(_)))
}

/// The consumer side of the log: its partitions and their records.
///
/// Contracts:
/// - `partitions` lists the partitions, each with its parents, parents before children.
/// - Within a partition, `read` returns records in append order, after `after`
///   (exclusive), at most `max_records` of them. `after = None` reads from the start.
/// - A read is bounded: it returns after a bounded amount of work (Kinesis: a few
///   `GetRecords` pages), so it may return fewer records than exist, even none while
///   records follow. An empty batch therefore does not mean the partition is read:
///   `caught_up` says the read reached the partition's tip, and `end_of_partition` that
///   a closed partition is finished. A caller that wants everything in a partition now
///   reads on from the last position (or the same `after` when nothing was returned)
///   until `caught_up` or `end_of_partition`.
#[async_trait]
pub trait EventReader: Send + Sync {
    /// The partitions that currently exist, in a stable order.
    async fn partitions(&self) -> Result<Vec<PartitionInfo>>;

    /// Reads up to `max_records` records of `partition` after position `after`.
    async fn read(
        &self,
        partition: &str,
        after: Option<&str>,
        max_records: usize,
    ) -> Result<ReadBatch>;
}

/// Where each consumer of the log has got to, per partition.
///
/// Contract: checkpoints are per consumer name and partition. `load_checkpoint` returns
/// `Ok(None)` when nothing was committed. A committed checkpoint survives restarts, and a
/// later commit replaces an earlier one.
#[async_trait]
pub trait Checkpoints: Send + Sync {
    /// The last committed position of `consumer` in `partition`.
    async fn load_checkpoint(&self, consumer: &str, partition: &str) -> Result<Option<String>>;

    /// Commits `position` as the last record `consumer` has fully applied in `partition`.
    async fn commit_checkpoint(
        &self,
        consumer: &str,
        partition: &str,
        position: &str,
    ) -> Result<()>;
}
