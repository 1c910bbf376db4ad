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

/// Runs every scenario against an empty spool: reading and removing through `peek` and
/// `pop`, then through `peek_now` and `pop_now` where the spool has them.
pub async fn run_all(spool: &dyn Spool) {
    for access in [Access::Tasks, Access::CallingThread] {
        first_in_first_out(spool, access).await;
        popping_more_than_held_empties_it(spool, access).await;
    }
}

/// How a scenario reads and removes records.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// `peek` and `pop`.
    Tasks,
    /// `peek_now` and `pop_now`, else `peek` and `pop` when the spool has no such path.
    CallingThread,
}

impl Access {
    async fn peek(self, spool: &dyn Spool, max: usize) -> Vec<LogRecord> {
        crate::spool::peek_on(spool, max, matches!(self, Self::CallingThread))
            .await
            .unwrap()
    }

    async fn pop(self, spool: &dyn Spool, count: usize) {
        crate::spool::pop_on(spool, count, matches!(self, Self::CallingThread))
            .await
            .unwrap();
    }
}

async fn first_in_first_out(spool: &dyn Spool, access: Access) {
    assert_eq!(spool.level().records, 0);
    assert!(access.peek(spool, 10).await.is_empty());
    spool
        .push(&(0..5).map(numbered).collect::<Vec<_>>())
        .await
        .unwrap();
    spool.push(&[numbered(5)]).await.unwrap();
    spool.push(&[]).await.unwrap();
    assert_eq!(spool.level().records, 6);
    assert!(spool.level().bytes > 0);
    assert_eq!(
        access.peek(spool, 4).await,
        (0..4).map(numbered).collect::<Vec<_>>()
    );
    assert_eq!(
        access.peek(spool, 4).await,
        (0..4).map(numbered).collect::<Vec<_>>(),
        "peek removes nothing"
    );
    access.pop(spool, 2).await;
    assert_eq!(spool.level().records, 4);
    spool.push(&[numbered(6)]).await.unwrap();
    assert_eq!(
        access.peek(spool, 100).await,
        (2..7).map(numbered).collect::<Vec<_>>()
    );
    access.pop(spool, 5).await;
    assert_eq!(spool.level().records, 0);
    assert_eq!(spool.level().bytes, 0);
    assert!(access.peek(spool, 10).await.is_empty());
}

async fn popping_more_than_held_empties_it(spool: &dyn Spool, access: Access) {
    spool.push(&[numbered(7), numbered(8)]).await.unwrap();
    access.pop(spool, 10).await;
    assert_eq!(spool.level().records, 0);
    spool.push(&[numbered(9)]).await.unwrap();
    assert_eq!(access.peek(spool, 10).await, vec![numbered(9)]);
    access.pop(spool, 1).await;
}

/// `level` is what the drainer decides by: after pushes and pops that ran at the same time
/// have settled, it must count exactly the records held, or a record can sit unsent
/// behind a level of 0 until the next push. Pushes one record at a time (as the group
/// commit does) while a drainer-like task pops whatever the level says is there, once
/// through `peek` and `pop` and once through `peek_now` and `pop_now` (as the drainer does
/// where the spool has them).
pub async fn level_settles_on_the_records_held(spool: std::sync::Arc<dyn Spool>) {
    for access in [Access::Tasks, Access::CallingThread] {
        level_settles_with(&spool, access).await;
    }
}

async fn level_settles_with(spool: &std::sync::Arc<dyn Spool>, access: Access) {
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
                    let records = access.peek(spool.as_ref(), 64).await;
                    access.pop(spool.as_ref(), records.len()).await;
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
