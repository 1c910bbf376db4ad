use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use schemas::Outcome;
use store::contract::{day, event_on, sourced_at};

use super::{PRODUCER_RETENTION_DAYS, ParquetState};
use crate::object_keys::parquet_state_key;
use crate::parquet_buffer::project_batch;
use schemas::UsageEvent;
use store::SourcedEvent;

fn events(count: usize) -> Vec<UsageEvent> {
    (0..count)
        .map(|_| event_on("c", day(0), "m", Outcome::Success, 1, 1))
        .collect()
}

/// The events at positions `first..`, one per record, in `partition`.
fn batch(partition: &str, first: u64, events: &[UsageEvent]) -> Vec<SourcedEvent> {
    (first..)
        .zip(events)
        .map(|(position, event)| sourced_at(partition, position, event.clone()))
        .collect()
}

async fn parquet_rows(objects: &Arc<dyn ObjectStore>) -> Vec<UsageEvent> {
    let rows = crate::reconcile::parquet_events(objects, day(0), day(0))
        .await
        .unwrap();
    sorted(rows)
}

fn sorted(mut events: Vec<UsageEvent>) -> Vec<UsageEvent> {
    events.sort_by_key(|event| event.event_id);
    events
}

#[tokio::test]
async fn a_crash_between_the_files_and_the_state_is_repaired_by_the_retry() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let all = events(5);
    let first_try = batch("p", 1, &all[..3]);
    project_batch(&objects, "p", &[], "3", &first_try)
        .await
        .unwrap();
    // The process died after the files, before the state: as if the state were never written.
    objects.delete(&parquet_state_key("p")).await.unwrap();
    let retry = batch("p", 1, &all);
    let projected = project_batch(&objects, "p", &[], "5", &retry)
        .await
        .unwrap();
    assert_eq!(projected.len(), 5);
    assert_eq!(parquet_rows(&objects).await, sorted(all));
}

#[tokio::test]
async fn a_batch_already_written_writes_nothing_and_a_longer_one_only_its_rest() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let all = events(6);
    project_batch(&objects, "p", &[], "4", &batch("p", 1, &all[..4]))
        .await
        .unwrap();
    let first_four = batch("p", 1, &all[..4]);
    let again = project_batch(&objects, "p", &[], "4", &first_four)
        .await
        .unwrap();
    assert!(again.is_empty());
    let whole = batch("p", 1, &all);
    let longer = project_batch(&objects, "p", &[], "6", &whole)
        .await
        .unwrap();
    assert_eq!(longer.len(), 2);
    assert_eq!(parquet_rows(&objects).await, sorted(all));
}

#[tokio::test]
async fn a_copy_sent_again_at_a_later_position_is_written_once() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let all = events(3);
    project_batch(&objects, "p", &[], "2", &batch("p", 1, &all[..2]))
        .await
        .unwrap();
    // The proxy sent event 2 again (an ambiguous append), then event 3.
    let resent = vec![all[1].clone(), all[2].clone()];
    let resent = batch("p", 3, &resent);
    let projected = project_batch(&objects, "p", &[], "4", &resent)
        .await
        .unwrap();
    assert_eq!(projected, vec![&all[2]]);
    assert_eq!(parquet_rows(&objects).await, sorted(all));
}

#[tokio::test]
async fn a_new_child_partition_starts_from_its_parents_numbers() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let all = events(2);
    project_batch(&objects, "parent", &[], "1", &batch("parent", 1, &all[..1]))
        .await
        .unwrap();
    // After a reshard the copy of event 1 lands in the child, next to event 2.
    let in_child = batch("child", 1, &all);
    let projected = project_batch(&objects, "child", &["parent".to_owned()], "2", &in_child)
        .await
        .unwrap();
    assert_eq!(projected, vec![&all[1]]);
    assert_eq!(parquet_rows(&objects).await, sorted(all));
}

#[tokio::test]
async fn a_damaged_state_is_an_error_that_names_the_fix() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    objects
        .put(&parquet_state_key("p"), b"{not json".to_vec().into())
        .await
        .unwrap();
    let error = project_batch(&objects, "p", &[], "1", &batch("p", 1, &events(1)))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("tollgate replay"), "{error}");
}

/// Producers that send nothing more are forgotten after the retention, so the state stays
/// the size of the live fleet; a state written before days were kept starts counting now.
#[test]
fn silent_producers_are_forgotten_after_the_retention() {
    let mut state = ParquetState::default();
    for producer in ["old", "recent", "legacy"] {
        state
            .producers
            .entry(producer.to_owned())
            .or_default()
            .insert(1);
    }
    state.mark_taken("old", 100);
    state.mark_taken("recent", 100 + PRODUCER_RETENTION_DAYS);
    state.mark_taken("old", 90); // an earlier day never moves it back
    state.forget_silent_producers(100 + PRODUCER_RETENTION_DAYS);
    assert_eq!(state.producers.len(), 3, "still within the retention");
    state.forget_silent_producers(101 + PRODUCER_RETENTION_DAYS);
    let mut kept: Vec<&String> = state.producers.keys().collect();
    kept.sort();
    assert_eq!(kept, ["legacy", "recent"]);
    assert_eq!(
        state.last_taken_day["legacy"],
        100 + PRODUCER_RETENTION_DAYS,
        "first seen without a day at the earlier load"
    );
}
