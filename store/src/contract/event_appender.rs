//! The `EventAppender` contract suite.

use bytes::Bytes;

use super::unique;
use crate::event_log::{EventAppender, LogRecord};

/// Runs every scenario against one backend.
pub async fn run_all(appender: &dyn EventAppender) {
    empty_append_returns_no_results(appender).await;
    append_returns_one_distinct_position_per_record(appender).await;
    append_now_keeps_the_append_contract(appender).await;
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

/// `append_now`, where a backend has it, returns one result per record like `append`, at
/// positions after those appended before it.
async fn append_now_keeps_the_append_contract(appender: &dyn EventAppender) {
    let key = unique("customer");
    let record = |index: usize| LogRecord {
        partition_key: key.clone(),
        data: Bytes::from(format!("now-{index}")),
    };
    assert!(
        appender
            .append_now(&[])
            .is_none_or(|appended| appended.unwrap().is_empty())
    );
    let before = appender.append(&[record(0)]).await.unwrap()[0]
        .clone()
        .unwrap();
    let records: Vec<LogRecord> = (1..4).map(record).collect();
    let Some(appended) = appender.append_now(&records) else {
        return;
    };
    let positions: Vec<String> = appended
        .unwrap()
        .into_iter()
        .map(|result| result.unwrap())
        .collect();
    assert_eq!(positions.len(), records.len(), "one result per record");
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]) && positions[0] > before,
        "positions follow the earlier append, in order: {before} then {positions:?}"
    );
}
