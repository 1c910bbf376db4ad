//! The `Checkpoints` contract suite.

use super::unique;
use crate::event_log::Checkpoints;

/// Runs every scenario against one backend. `partition` is one of the log's partitions
/// (any name works for backends that do not check it).
pub async fn run_all(checkpoints: &dyn Checkpoints, partition: &str) {
    checkpoints_are_per_consumer_and_partition(checkpoints, partition).await;
}

async fn checkpoints_are_per_consumer_and_partition(
    checkpoints: &dyn Checkpoints,
    partition: &str,
) {
    let consumer = unique("consumer");
    let other_consumer = unique("consumer");
    let other_partition = unique("partition");
    assert_eq!(
        checkpoints
            .load_checkpoint(&consumer, partition)
            .await
            .unwrap(),
        None
    );

    checkpoints
        .commit_checkpoint(&consumer, partition, "00000000000000000007")
        .await
        .unwrap();
    assert_eq!(
        checkpoints
            .load_checkpoint(&consumer, partition)
            .await
            .unwrap()
            .as_deref(),
        Some("00000000000000000007")
    );
    checkpoints
        .commit_checkpoint(&consumer, partition, "00000000000000000009")
        .await
        .unwrap();
    assert_eq!(
        checkpoints
            .load_checkpoint(&consumer, partition)
            .await
            .unwrap()
            .as_deref(),
        Some("00000000000000000009")
    );
    assert_eq!(
        checkpoints
            .load_checkpoint(&other_consumer, partition)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        checkpoints
            .load_checkpoint(&consumer, &other_partition)
            .await
            .unwrap(),
        None
    );
}
