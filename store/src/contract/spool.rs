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

/// `level` is what the drainer decides by: after pushes and pops that ran at the same time
/// have settled, it must count exactly the records held, or a record can sit unsent
/// behind a level of 0 until the next push. Pushes one record at a time (as the group
/// commit does) while a drainer-like task pops whatever the level says is there.
pub async fn level_settles_on_the_records_held(spool: std::sync::Arc<dyn Spool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    const PUSHES: usize = 4_000;
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let drainer = {
        let (spool, done) = (spool.clone(), done.clone());
        tokio::spawn(async move {
            let mut delivered = 0;
            let mut idle_since_done = 0;
            while idle_since_done < 200 {
                if spool.level().records > 0 {
                    let records = spool.peek(64).await.unwrap();
                    spool.pop(records.len()).await.unwrap();
                    delivered += records.len();
                } else if done.load(Ordering::Acquire) {
                    idle_since_done += 1;
                }
                tokio::task::yield_now().await;
            }
            delivered
        })
    };
    for index in 0..PUSHES {
        let record = [numbered(index)];
        match spool.push_now(&record) {
            Some(pushed) => pushed.unwrap(),
            None => spool.push(&record).await.unwrap(),
        }
        if index % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    done.store(true, Ordering::Release);
    let delivered = drainer.await.unwrap();
    let left = spool.peek(PUSHES).await.unwrap().len();
    assert_eq!(
        (delivered, left, spool.level().records),
        (PUSHES, 0, 0),
        "every record delivered, and the level agrees with what is held"
    );
}
