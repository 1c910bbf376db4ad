//! The `EventReader` contract suite. Records are written with the same backend's
//! appender, then read back.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::unique;
use crate::Result;
use crate::event_log::{EventAppender, EventReader, LogEntry, LogRecord, PartitionInfo, ReadBatch};

/// A reader that answers its first reads empty and not caught up, then reads `log`: as a
/// Kinesis shard behind its tip answers empty pages before its records.
pub struct EmptyReadsFirst {
    log: Arc<dyn EventReader>,
    empty_reads_left: Mutex<usize>,
}

impl EmptyReadsFirst {
    /// `log`, after `empty_reads` empty reads.
    pub fn new(log: Arc<dyn EventReader>, empty_reads: usize) -> Self {
        Self {
            log,
            empty_reads_left: Mutex::new(empty_reads),
        }
    }
}

#[async_trait]
impl EventReader for EmptyReadsFirst {
    async fn partitions(&self) -> Result<Vec<PartitionInfo>> {
        self.log.partitions().await
    }

    async fn read(
        &self,
        partition: &str,
        after: Option<&str>,
        max_records: usize,
    ) -> Result<ReadBatch> {
        {
            let mut left = self.empty_reads_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Ok(ReadBatch::default());
            }
        }
        self.log.read(partition, after, max_records).await
    }
}

/// Runs every scenario against one backend: `appender` writes to the log `reader` reads.
pub async fn run_all(appender: &dyn EventAppender, reader: &dyn EventReader) {
    appended_records_read_back_in_order_at_their_positions(appender, reader).await;
    read_resumes_after_a_position_and_respects_max(appender, reader).await;
}

/// Most reads a helper makes before deciding a reader never catches up.
const MAX_READS: usize = 1000;

/// Every record of `partition` after `after`, read the way the contract asks: on from the
/// last position (or the same `after` after an empty read) until `caught_up` or
/// `end_of_partition`. Empty reads before that are not the end.
pub async fn read_until_caught_up(
    reader: &dyn EventReader,
    partition: &str,
    after: Option<String>,
    max_records: usize,
) -> Vec<LogEntry> {
    let mut after = after;
    let mut entries = Vec::new();
    for _ in 0..MAX_READS {
        let page = reader
            .read(partition, after.as_deref(), max_records)
            .await
            .unwrap();
        assert!(
            page.entries.len() <= max_records,
            "max_records is respected"
        );
        assert!(
            !page.end_of_partition || page.caught_up,
            "end_of_partition implies caught_up"
        );
        if let Some(last) = page.entries.last() {
            after = Some(last.position.clone());
        }
        entries.extend(page.entries);
        if page.caught_up || page.end_of_partition {
            return entries;
        }
    }
    panic!("{partition} never caught up in {MAX_READS} reads");
}

/// Every record of the log with `partition_key`, every partition from its start.
pub async fn read_all_with_key(reader: &dyn EventReader, partition_key: &str) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    for partition in reader.partitions().await.unwrap() {
        entries.extend(
            read_until_caught_up(reader, &partition.id, None, 100)
                .await
                .into_iter()
                .filter(|entry| entry.partition_key == partition_key),
        );
    }
    entries
}

async fn appended_records_read_back_in_order_at_their_positions(
    appender: &dyn EventAppender,
    reader: &dyn EventReader,
) {
    let key = unique("customer");
    let records: Vec<LogRecord> = (0..5)
        .map(|index| LogRecord {
            partition_key: key.clone(),
            data: Bytes::from(format!("record-{index}")),
        })
        .collect();
    let results = appender.append(&records).await.unwrap();
    assert_eq!(results.len(), records.len());
    let positions: Vec<String> = results.into_iter().map(|result| result.unwrap()).collect();

    let read = read_all_with_key(reader, &key).await;
    let data: Vec<Bytes> = read.iter().map(|entry| entry.data.clone()).collect();
    let expected: Vec<Bytes> = records.iter().map(|record| record.data.clone()).collect();
    assert_eq!(data, expected, "records read back in append order");
    let read_positions: Vec<String> = read.iter().map(|entry| entry.position.clone()).collect();
    assert_eq!(
        read_positions, positions,
        "read positions match append results"
    );
}

async fn read_resumes_after_a_position_and_respects_max(
    appender: &dyn EventAppender,
    reader: &dyn EventReader,
) {
    let key = unique("customer");
    let records: Vec<LogRecord> = (0..4)
        .map(|index| LogRecord {
            partition_key: key.clone(),
            data: Bytes::from(format!("r{index}")),
        })
        .collect();
    appender.append(&records).await.unwrap();
    let all = read_all_with_key(reader, &key).await;
    let partition = all[0].partition.clone();

    // One read may return fewer records than follow, even none: read on until caught up.
    let after_first = reader
        .read(&partition, Some(&all[0].position), 2)
        .await
        .unwrap();
    assert!(after_first.entries.len() <= 2, "max_records is respected");
    assert!(
        !after_first.entries.is_empty() || !after_first.caught_up,
        "a read that returns nothing while records follow is not caught up"
    );
    let after_first: Vec<LogEntry> =
        read_until_caught_up(reader, &partition, Some(all[0].position.clone()), 2)
            .await
            .into_iter()
            .filter(|entry| entry.partition_key == key)
            .collect();
    let data: Vec<Bytes> = after_first.iter().map(|entry| entry.data.clone()).collect();
    assert_eq!(
        data,
        vec![Bytes::from("r1"), Bytes::from("r2"), Bytes::from("r3")],
        "the records after the first, in order"
    );

    let after_last =
        read_until_caught_up(reader, &partition, Some(all[3].position.clone()), 10).await;
    assert!(
        after_last.iter().all(|entry| entry.partition_key != key),
        "nothing of ours after the last record"
    );
}
