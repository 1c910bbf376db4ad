//! The `Spool` contract.

use bytes::Bytes;

use crate::LogRecord;
use crate::spool::Spool;

/// A record whose data names its index.
pub fn numbered(index: usize) -> LogRecord {
    LogRecord {
        partition_key: format!("customer-{}", index % 3),
        data: Bytes::from(format!("{{\"n\":{index}}}")),
    }
}

/// Runs every scenario against an empty spool.
pub async fn run_all(spool: &dyn Spool) {
    first_in_first_out(spool).await;
    popping_more_than_held_empties_it(spool).await;
}

async fn first_in_first_out(spool: &dyn Spool) {
    assert_eq!(spool.level().records, 0);
    assert!(spool.peek(10).await.unwrap().is_empty());
    spool
        .push(&(0..5).map(numbered).collect::<Vec<_>>())
        .await
        .unwrap();
    spool.push(&[numbered(5)]).await.unwrap();
    spool.push(&[]).await.unwrap();
    assert_eq!(spool.level().records, 6);
    assert!(spool.level().bytes > 0);
    assert_eq!(
        spool.peek(4).await.unwrap(),
        (0..4).map(numbered).collect::<Vec<_>>()
    );
    assert_eq!(
        spool.peek(4).await.unwrap(),
        (0..4).map(numbered).collect::<Vec<_>>(),
        "peek removes nothing"
    );
    spool.pop(2).await.unwrap();
    assert_eq!(spool.level().records, 4);
    spool.push(&[numbered(6)]).await.unwrap();
    assert_eq!(
        spool.peek(100).await.unwrap(),
        (2..7).map(numbered).collect::<Vec<_>>()
    );
    spool.pop(5).await.unwrap();
    assert_eq!(spool.level().records, 0);
    assert_eq!(spool.level().bytes, 0);
    assert!(spool.peek(10).await.unwrap().is_empty());
}

async fn popping_more_than_held_empties_it(spool: &dyn Spool) {
    spool.push(&[numbered(7), numbered(8)]).await.unwrap();
    spool.pop(10).await.unwrap();
    assert_eq!(spool.level().records, 0);
    spool.push(&[numbered(9)]).await.unwrap();
    assert_eq!(spool.peek(10).await.unwrap(), vec![numbered(9)]);
    spool.pop(1).await.unwrap();
}
