//! The `EventReader` contract suite. Records are written with the same backend's
//! appender, then read back.

use bytes::Bytes;

use super::unique;
use crate::event_log::{EventAppender, EventReader, LogEntry, LogRecord};

/// Runs every scenario against one backend: `appender` writes to the log `reader` reads.
pub async fn run_all(appender: &dyn EventAppender, reader: &dyn EventReader) {
    appended_records_read_back_in_order_at_their_positions(appender, reader).await;
    read_resumes_after_a_position_and_respects_max(appender, reader).await;
}

/// Every record of the log with `partition_key`, every partition from its start.
pub async fn read_all_with_key(reader: &dyn EventReader, partition_key: &str) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    for partition in reader.partitions().await.unwrap() {
        let mut after: Option<String> = None;
        // An open partition has no end: stop after reads that return nothing.
        let mut empty_reads = 0;
        while empty_reads < 3 {
            let page = reader
                .read(&partition.id, after.as_deref(), 100)
                .await
                .unwrap();
            let Some(last) = page.entries.last() else {
                if page.end_of_partition {
                    break;
                }
                empty_reads += 1;
                continue;
            };
            after = Some(last.position.clone());
            entries.extend(
                page.entries
                    .into_iter()
                    .filter(|entry| entry.partition_key == partition_key),
            );
        }
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

    let after_first = reader
        .read(&partition, Some(&all[0].position), 2)
        .await
        .unwrap()
        .entries;
    assert!(after_first.len() <= 2, "max_records is respected");
    assert!(!after_first.is_empty(), "records follow the first one");
    assert_eq!(after_first[0].data, Bytes::from("r1"));
    if let Some(second) = after_first.get(1) {
        assert_eq!(second.data, Bytes::from("r2"));
    }

    let after_last = reader
        .read(&partition, Some(&all[3].position), 10)
        .await
        .unwrap()
        .entries;
    assert!(
        after_last.iter().all(|entry| entry.partition_key != key),
        "nothing of ours after the last record"
    );
}
