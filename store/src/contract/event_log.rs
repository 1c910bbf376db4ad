//! The `EventLog` contract suite.

use bytes::Bytes;

use super::unique;
use crate::event_log::{EventLog, LogEntry, LogRecord};

/// Runs every scenario against one backend.
pub async fn run_all(log: &dyn EventLog) {
    empty_append_returns_no_results(log).await;
    append_returns_one_position_per_record_and_reads_back_in_order(log).await;
    read_resumes_after_a_position_and_respects_max(log).await;
    checkpoints_are_per_consumer_and_partition(log).await;
}

async fn read_all_with_key(log: &dyn EventLog, partition_key: &str) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    for partition in log.partitions().await.unwrap() {
        let mut after: Option<String> = None;
        // An open partition has no end: stop after reads that return nothing.
        let mut empty_reads = 0;
        while empty_reads < 3 {
            let page = log
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

async fn empty_append_returns_no_results(log: &dyn EventLog) {
    assert!(log.append(&[]).await.unwrap().is_empty());
}

async fn append_returns_one_position_per_record_and_reads_back_in_order(log: &dyn EventLog) {
    let key = unique("customer");
    let records: Vec<LogRecord> = (0..5)
        .map(|index| LogRecord {
            partition_key: key.clone(),
            data: Bytes::from(format!("record-{index}")),
        })
        .collect();
    let results = log.append(&records).await.unwrap();
    assert_eq!(results.len(), records.len());
    let positions: Vec<String> = results.into_iter().map(|result| result.unwrap()).collect();

    let read = read_all_with_key(log, &key).await;
    let data: Vec<Bytes> = read.iter().map(|entry| entry.data.clone()).collect();
    let expected: Vec<Bytes> = records.iter().map(|record| record.data.clone()).collect();
    assert_eq!(data, expected, "records read back in append order");
    let read_positions: Vec<String> = read.iter().map(|entry| entry.position.clone()).collect();
    assert_eq!(
        read_positions, positions,
        "read positions match append results"
    );
}

async fn read_resumes_after_a_position_and_respects_max(log: &dyn EventLog) {
    let key = unique("customer");
    let records: Vec<LogRecord> = (0..4)
        .map(|index| LogRecord {
            partition_key: key.clone(),
            data: Bytes::from(format!("r{index}")),
        })
        .collect();
    log.append(&records).await.unwrap();
    let all = read_all_with_key(log, &key).await;
    let partition = all[0].partition.clone();

    let after_first = log
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

    let after_last = log
        .read(&partition, Some(&all[3].position), 10)
        .await
        .unwrap()
        .entries;
    assert!(
        after_last.iter().all(|entry| entry.partition_key != key),
        "nothing of ours after the last record"
    );
}

async fn checkpoints_are_per_consumer_and_partition(log: &dyn EventLog) {
    let consumer = unique("consumer");
    let other_consumer = unique("consumer");
    let partition = log
        .partitions()
        .await
        .unwrap()
        .first()
        .map(|partition| partition.id.clone())
        .unwrap_or_else(|| "0".into());
    assert_eq!(
        log.load_checkpoint(&consumer, &partition).await.unwrap(),
        None
    );

    log.commit_checkpoint(&consumer, &partition, "00000000000000000007")
        .await
        .unwrap();
    assert_eq!(
        log.load_checkpoint(&consumer, &partition)
            .await
            .unwrap()
            .as_deref(),
        Some("00000000000000000007")
    );
    log.commit_checkpoint(&consumer, &partition, "00000000000000000009")
        .await
        .unwrap();
    assert_eq!(
        log.load_checkpoint(&consumer, &partition)
            .await
            .unwrap()
            .as_deref(),
        Some("00000000000000000009")
    );
    assert_eq!(
        log.load_checkpoint(&other_consumer, &partition)
            .await
            .unwrap(),
        None
    );
}
