//! The `EventAppender` contract suite.

use bytes::Bytes;

use super::unique;
use crate::event_log::{EventAppender, LogRecord};

/// Runs every scenario against one backend.
pub async fn run_all(appender: &dyn EventAppender) {
    empty_append_returns_no_results(appender).await;
    append_returns_one_distinct_position_per_record(appender).await;
}

async fn empty_append_returns_no_results(appender: &dyn EventAppender) {
    assert!(appender.append(&[]).await.unwrap().is_empty());
}

async fn append_returns_one_distinct_position_per_record(appender: &dyn EventAppender) {
    let key = unique("customer");
    let records: Vec<LogRecord> = (0..5)
        .map(|index| LogRecord {
            partition_key: key.clone(),
            data: Bytes::from(format!("record-{index}")),
        })
        .collect();
    let results = appender.append(&records).await.unwrap();
    assert_eq!(results.len(), records.len(), "one result per record");
    let mut positions: Vec<String> = results.into_iter().map(|result| result.unwrap()).collect();
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), records.len(), "positions are distinct");
}
