//! The event log's appender and reader on a Kinesis Data Stream (checkpoints live in
//! DynamoDB, in [`super::dynamo_checkpoints`]).
//!
//! - Producer: `PutRecords` in batches of at most 500 records and 5 MiB, partition key =
//!   the record's (the customer id). Each record gets its own result, so the caller retries
//!   only the failed ones.
//! - Reader: `ListShards` gives the partitions with their parent shards (ordered so parents
//!   come first), and `GetShardIterator` + `GetRecords` read a shard after a sequence
//!   number. The next iterator is cached per shard, so a consumer that reads on from where
//!   it stopped makes one `GetRecords` call per read. A closed shard read to its end
//!   reports `end_of_partition`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_kinesis::Client as KinesisClient;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use bytes::Bytes;

use super::errors::{aws_error, is_retryable_code};
use crate::event_log::{
    AppendFailure, AppendResult, EventAppender, EventReader, LogEntry, LogRecord, PartitionInfo,
    ReadBatch,
};
use crate::{Result, StoreError};

/// Most records in one `PutRecords` call.
pub const MAX_PUT_RECORDS: usize = 500;
/// Most bytes (data plus partition keys) in one `PutRecords` call.
pub const MAX_PUT_BYTES: usize = 5 * 1024 * 1024;
/// Most records one `GetRecords` call returns.
const MAX_GET_RECORDS: usize = 10_000;
/// Empty `GetRecords` pages followed while the shard is behind its tip.
const MAX_EMPTY_PAGES: usize = 5;

/// Splits records into `PutRecords` batches within the count and size limits, keeping order.
pub fn split_put_batches(records: &[LogRecord]) -> Vec<&[LogRecord]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, record) in records.iter().enumerate() {
        let size = record.data.len() + record.partition_key.len();
        let count = index - start;
        if count > 0 && (count == MAX_PUT_RECORDS || bytes + size > MAX_PUT_BYTES) {
            batches.push(&records[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        batches.push(&records[start..]);
    }
    batches
}

/// Orders shards so that every parent comes before its children.
pub fn order_parents_first(mut partitions: Vec<PartitionInfo>) -> Vec<PartitionInfo> {
    partitions.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ordered: Vec<PartitionInfo> = Vec::with_capacity(partitions.len());
    let mut remaining = partitions;
    while !remaining.is_empty() {
        let placed: Vec<String> = ordered
            .iter()
            .map(|partition| partition.id.clone())
            .collect();
        let all_ids: Vec<String> = remaining
            .iter()
            .map(|partition| partition.id.clone())
            .collect();
        let (ready, waiting): (Vec<_>, Vec<_>) = remaining.into_iter().partition(|partition| {
            partition
                .parents
                .iter()
                .all(|parent| placed.contains(parent) || !all_ids.contains(parent))
        });
        if ready.is_empty() {
            // A cycle cannot happen in Kinesis; keep the rest in id order rather than loop.
            ordered.extend(waiting);
            break;
        }
        ordered.extend(ready);
        remaining = waiting;
    }
    ordered
}

/// The Kinesis event log.
#[derive(Debug)]
pub struct KinesisEventLog {
    kinesis: KinesisClient,
    stream_name: String,
    /// Per shard: the position the cached iterator continues after, and the iterator.
    iterators: Mutex<HashMap<String, (Option<String>, String)>>,
}

impl KinesisEventLog {
    /// A log over `stream_name`.
    pub fn new(kinesis: KinesisClient, stream_name: impl Into<String>) -> Self {
        Self {
            kinesis,
            stream_name: stream_name.into(),
            iterators: Mutex::new(HashMap::new()),
        }
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    async fn put_batch(&self, batch: &[LogRecord]) -> Vec<AppendResult> {
        let mut entries = Vec::with_capacity(batch.len());
        for record in batch {
            let entry = PutRecordsRequestEntry::builder()
                .data(Blob::new(record.data.to_vec()))
                .partition_key(&record.partition_key)
                .build();
            match entry {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    return failed_batch(batch.len(), false, format!("invalid record: {error}"));
                }
            }
        }
        let output = self
            .kinesis
            .put_records()
            .stream_name(&self.stream_name)
            .set_records(Some(entries))
            .send()
            .await;
        match output {
            Ok(output) if output.records().len() == batch.len() => output
                .records()
                .iter()
                .map(
                    |result| match (result.error_code(), result.sequence_number()) {
                        (None, Some(sequence_number)) => Ok(sequence_number.to_owned()),
                        (code, _) => Err(AppendFailure {
                            retryable: code.is_none() || is_retryable_code(code),
                            message: format!(
                                "{}: {}",
                                code.unwrap_or("NoSequenceNumber"),
                                result.error_message().unwrap_or_default()
                            ),
                        }),
                    },
                )
                .collect(),
            Ok(output) => failed_batch(
                batch.len(),
                true,
                format!(
                    "PutRecords answered {} results for {} records",
                    output.records().len(),
                    batch.len()
                ),
            ),
            Err(error) => {
                let error = aws_error("PutRecords", &self.stream_name, error);
                failed_batch(batch.len(), error.is_retryable(), error.to_string())
            }
        }
    }

    fn cached_iterator(&self, shard_id: &str, after: Option<&str>) -> Option<String> {
        let iterators = self.iterators.lock().ok()?;
        let (cached_after, iterator) = iterators.get(shard_id)?;
        (cached_after.as_deref() == after).then(|| iterator.clone())
    }

    fn cache_iterator(&self, shard_id: &str, after: Option<String>, iterator: Option<String>) {
        if let Ok(mut iterators) = self.iterators.lock() {
            match iterator {
                Some(iterator) => {
                    iterators.insert(shard_id.to_owned(), (after, iterator));
                }
                None => {
                    iterators.remove(shard_id);
                }
            }
        }
    }

    async fn fresh_iterator(&self, shard_id: &str, after: Option<&str>) -> Result<String> {
        let request = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.stream_name)
            .shard_id(shard_id);
        let request = match after {
            Some(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence_number),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let output = request
            .send()
            .await
            .map_err(|error| aws_error("GetShardIterator", &self.stream_name, error))?;
        output.shard_iterator.ok_or_else(|| {
            StoreError::Unavailable(format!(
                "GetShardIterator on {} returned no iterator",
                self.stream_name
            ))
        })
    }
}

fn failed_batch(count: usize, retryable: bool, message: String) -> Vec<AppendResult> {
    (0..count)
        .map(|_| {
            Err(AppendFailure {
                retryable,
                message: message.clone(),
            })
        })
        .collect()
}

#[async_trait]
impl EventAppender for KinesisEventLog {
    async fn append(&self, records: &[LogRecord]) -> Result<Vec<AppendResult>> {
        let mut results = Vec::with_capacity(records.len());
        for batch in split_put_batches(records) {
            results.extend(self.put_batch(batch).await);
        }
        Ok(results)
    }
}

#[async_trait]
impl EventReader for KinesisEventLog {
    async fn partitions(&self) -> Result<Vec<PartitionInfo>> {
        let mut partitions = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = self.kinesis.list_shards();
            let request = match next_token.take() {
                Some(token) => request.next_token(token),
                None => request.stream_name(&self.stream_name),
            };
            let output = request
                .send()
                .await
                .map_err(|error| aws_error("ListShards", &self.stream_name, error))?;
            for shard in output.shards() {
                let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect();
                partitions.push(PartitionInfo {
                    id: shard.shard_id().to_owned(),
                    parents,
                });
            }
            match output.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => break,
            }
        }
        Ok(order_parents_first(partitions))
    }

    async fn read(
        &self,
        partition: &str,
        after: Option<&str>,
        max_records: usize,
    ) -> Result<ReadBatch> {
        let limit = i32::try_from(max_records.clamp(1, MAX_GET_RECORDS)).unwrap_or(1000);
        let mut iterator = match self.cached_iterator(partition, after) {
            Some(iterator) => iterator,
            None => self.fresh_iterator(partition, after).await?,
        };
        let mut refreshed = false;
        let mut empty_pages = 0;
        loop {
            let output = match self
                .kinesis
                .get_records()
                .shard_iterator(&iterator)
                .limit(limit)
                .send()
                .await
            {
                Ok(output) => output,
                Err(error)
                    if !refreshed
                        && error
                            .as_service_error()
                            .is_some_and(|service| service.is_expired_iterator_exception()) =>
                {
                    refreshed = true;
                    iterator = self.fresh_iterator(partition, after).await?;
                    continue;
                }
                Err(error) => {
                    self.cache_iterator(partition, None, None);
                    return Err(aws_error("GetRecords", &self.stream_name, error));
                }
            };
            let entries: Vec<LogEntry> = output
                .records()
                .iter()
                .map(|record| LogEntry {
                    partition: partition.to_owned(),
                    position: record.sequence_number().to_owned(),
                    partition_key: record.partition_key().to_owned(),
                    data: Bytes::copy_from_slice(record.data().as_ref()),
                })
                .collect();
            let behind = output.millis_behind_latest().unwrap_or(0) > 0;
            let next = output.next_shard_iterator.clone();
            let last_position = entries
                .last()
                .map(|entry| entry.position.clone())
                .or_else(|| after.map(str::to_owned));
            if entries.is_empty()
                && behind
                && empty_pages < MAX_EMPTY_PAGES
                && let Some(next_iterator) = &next
            {
                empty_pages += 1;
                iterator = next_iterator.clone();
                continue;
            }
            let end_of_partition = next.is_none();
            self.cache_iterator(partition, last_position, next);
            return Ok(ReadBatch {
                entries,
                end_of_partition,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(size: usize) -> LogRecord {
        LogRecord {
            partition_key: "customer".into(),
            data: Bytes::from(vec![b'x'; size]),
        }
    }

    #[test]
    fn batches_respect_count_and_size_limits() {
        let records: Vec<LogRecord> = (0..1201).map(|_| record(100)).collect();
        let sizes: Vec<usize> = split_put_batches(&records)
            .iter()
            .map(|batch| batch.len())
            .collect();
        assert_eq!(sizes, vec![500, 500, 201]);

        let big: Vec<LogRecord> = (0..12).map(|_| record(1024 * 1024 - 8)).collect();
        for batch in split_put_batches(&big) {
            let bytes: usize = batch
                .iter()
                .map(|record| record.data.len() + record.partition_key.len())
                .sum();
            assert!(bytes <= MAX_PUT_BYTES);
        }
        assert_eq!(
            split_put_batches(&big)
                .iter()
                .map(|batch| batch.len())
                .sum::<usize>(),
            12
        );
        assert!(split_put_batches(&[]).is_empty());
    }

    #[test]
    fn parents_come_before_children() {
        let shard = |id: &str, parents: &[&str]| PartitionInfo {
            id: id.into(),
            parents: parents.iter().map(|parent| (*parent).to_owned()).collect(),
        };
        let ordered = order_parents_first(vec![
            shard(
                "shardId-000000000003",
                &["shardId-000000000001", "shardId-000000000002"],
            ),
            shard("shardId-000000000002", &["shardId-000000000000"]),
            shard("shardId-000000000001", &["shardId-000000000000"]),
            shard("shardId-000000000000", &[]),
            shard("shardId-000000000004", &["shardId-gone"]),
        ]);
        let ids: Vec<&str> = ordered
            .iter()
            .map(|partition| partition.id.as_str())
            .collect();
        assert_eq!(
            ids,
            vec![
                "shardId-000000000000",
                "shardId-000000000004",
                "shardId-000000000001",
                "shardId-000000000002",
                "shardId-000000000003"
            ]
        );
    }
}
