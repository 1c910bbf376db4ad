//! The event log's appender and reader on a Kinesis Data Stream (checkpoints live in
//! DynamoDB, in [`super::dynamo_checkpoints`]).
//!
//! - Producer: `PutRecords` in batches of at most 500 records and 5 MiB, partition key =
//!   the record's (the customer id). Each record gets its own result, so the caller retries
//!   only the failed ones.
//! - Reader: `ListShards` gives the partitions with their parent shards (ordered so parents
//!   come first), and `GetShardIterator` + `GetRecords` read a shard after a sequence
//!   number. The next iterator is cached per shard, so a consumer that reads on from where
//!   it stopped makes one `GetRecords` call per read. Kinesis may answer empty pages
//!   before a shard's records: a read follows them while `MillisBehindLatest` is above 0,
//!   up to [`MAX_PAGES_PER_READ`] pages, and says whether it caught up (`MillisBehindLatest`
//!   0). A closed shard read to its end (no next iterator) reports `end_of_partition`.

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
/// Most `GetRecords` pages one read makes (a shard reads at most 5 a second). Empty pages
/// of a shard behind its tip are followed up to this budget; past it the read answers
/// empty and not caught up, and callers read again.
pub const MAX_PAGES_PER_READ: usize = 10;

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
        let limit = max_records.clamp(1, MAX_GET_RECORDS);
        let mut iterator = match self.cached_iterator(partition, after) {
            Some(iterator) => iterator,
            None => self.fresh_iterator(partition, after).await?,
        };
        let mut refreshed = false;
        let mut pages = 0;
        loop {
            let output = match self
                .kinesis
                .get_records()
                .shard_iterator(&iterator)
                .limit(i32::try_from(limit).unwrap_or(1000))
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
            pages += 1;
            let budget = PageBudget {
                page: pages,
                max_pages: MAX_PAGES_PER_READ,
                limit,
            };
            let batch = match shard_page(partition, &output, budget) {
                PageOutcome::FollowEmptyPage(next_iterator) => {
                    iterator = next_iterator;
                    continue;
                }
                PageOutcome::Answer(batch) => batch,
            };
            let last_position = batch
                .entries
                .last()
                .map(|entry| entry.position.clone())
                .or_else(|| after.map(str::to_owned));
            self.cache_iterator(partition, last_position, output.next_shard_iterator);
            return Ok(batch);
        }
    }
}

/// What to do with one `GetRecords` page.
#[derive(Debug, PartialEq, Eq)]
enum PageOutcome {
    /// An empty page of a shard behind its tip, within the page budget: read the next one.
    FollowEmptyPage(String),
    /// The read's answer.
    Answer(ReadBatch),
}

/// Where one `GetRecords` page stands in its read.
#[derive(Debug, Clone, Copy)]
struct PageBudget {
    /// This page's number in the read, from 1.
    page: usize,
    /// Most pages one read makes.
    max_pages: usize,
    /// The records asked for per page.
    limit: usize,
}

/// Reads one `GetRecords` page of `shard`. The shard is caught up when `MillisBehindLatest`
/// is 0 and the page is not full (a full page may have more records at the same instant
/// after it), and closed and read to its end when no next iterator comes back. Empty pages
/// of a shard behind its tip are followed up to the budget; past it the read answers empty
/// and not caught up, and the next read goes on from the cached iterator.
fn shard_page(
    shard: &str,
    output: &aws_sdk_kinesis::operation::get_records::GetRecordsOutput,
    budget: PageBudget,
) -> PageOutcome {
    let entries: Vec<LogEntry> = output
        .records()
        .iter()
        .map(|record| LogEntry {
            partition: shard.to_owned(),
            position: record.sequence_number().to_owned(),
            partition_key: record.partition_key().to_owned(),
            data: Bytes::copy_from_slice(record.data().as_ref()),
        })
        .collect();
    let end_of_partition = output.next_shard_iterator().is_none();
    // Kinesis always reports it; a reader that does not is taken at its word that the page
    // reached the tip.
    let behind = output.millis_behind_latest().unwrap_or(0) > 0;
    let caught_up = end_of_partition || (!behind && entries.len() < budget.limit);
    if entries.is_empty()
        && !caught_up
        && budget.page < budget.max_pages
        && let Some(next_iterator) = output.next_shard_iterator()
    {
        return PageOutcome::FollowEmptyPage(next_iterator.to_owned());
    }
    PageOutcome::Answer(ReadBatch {
        entries,
        caught_up,
        end_of_partition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::operation::get_records::GetRecordsOutput;

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

    fn page(records: usize, next: Option<&str>, millis_behind: i64) -> GetRecordsOutput {
        let records = (0..records)
            .map(|index| {
                aws_sdk_kinesis::types::Record::builder()
                    .sequence_number(format!("{index:05}"))
                    .partition_key("customer")
                    .data(Blob::new(format!("record-{index}")))
                    .build()
                    .unwrap()
            })
            .collect();
        GetRecordsOutput::builder()
            .set_records(Some(records))
            .set_next_shard_iterator(next.map(str::to_owned))
            .millis_behind_latest(millis_behind)
            .build()
            .unwrap()
    }

    /// The `page`th page of a read of at most 10 pages of 3 records.
    fn budget(page: usize) -> PageBudget {
        PageBudget {
            page,
            max_pages: 10,
            limit: 3,
        }
    }

    fn answer(outcome: PageOutcome) -> ReadBatch {
        match outcome {
            PageOutcome::Answer(batch) => batch,
            PageOutcome::FollowEmptyPage(next) => panic!("followed to {next}"),
        }
    }

    #[test]
    fn empty_pages_behind_the_tip_are_followed_within_the_budget() {
        assert_eq!(
            shard_page("s", &page(0, Some("next"), 5000), budget(1)),
            PageOutcome::FollowEmptyPage("next".into())
        );
        assert_eq!(
            shard_page("s", &page(0, Some("next"), 5000), budget(9)),
            PageOutcome::FollowEmptyPage("next".into())
        );
        let over_budget = answer(shard_page("s", &page(0, Some("next"), 5000), budget(10)));
        assert!(over_budget.entries.is_empty());
        assert!(!over_budget.caught_up, "behind the tip: read again");
        assert!(!over_budget.end_of_partition);
    }

    #[test]
    fn a_page_says_whether_the_shard_is_caught_up_or_ended() {
        let at_tip = answer(shard_page("s", &page(0, Some("next"), 0), budget(1)));
        assert!(at_tip.caught_up && !at_tip.end_of_partition);

        let records_behind = answer(shard_page("s", &page(3, Some("next"), 800), budget(1)));
        assert_eq!(records_behind.entries.len(), 3);
        assert_eq!(records_behind.entries[2].position, "00002");
        assert_eq!(records_behind.entries[0].partition, "s");
        assert!(!records_behind.caught_up, "records, and more behind them");

        let records_at_tip = answer(shard_page("s", &page(2, Some("next"), 0), budget(1)));
        assert!(records_at_tip.caught_up);
        let full_page_at_tip = answer(shard_page("s", &page(3, Some("next"), 0), budget(1)));
        assert!(
            !full_page_at_tip.caught_up,
            "a full page may have more records at the same instant after it"
        );

        // A closed shard: no next iterator, even while MillisBehindLatest is above 0.
        let closed = answer(shard_page("s", &page(0, None, 7000), budget(1)));
        assert!(closed.end_of_partition && closed.caught_up);
        let closed_with_records = answer(shard_page("s", &page(1, None, 0), budget(1)));
        assert!(closed_with_records.end_of_partition);
        assert_eq!(closed_with_records.entries.len(), 1);
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
