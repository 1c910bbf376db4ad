use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use schemas::Outcome;
use schemas::parquet_codec::encode_events_parquet;
use store::contract::{day, event_on, sourced_at};

use super::*;
use crate::parquet_projection::ParquetState;

fn events_on(day_offset: u32, count: usize) -> Vec<UsageEvent> {
    (0..count)
        .map(|_| event_on("c", day(day_offset), "m", Outcome::Success, 1, 1))
        .collect()
}

fn batch(first: u64, events: &[UsageEvent]) -> Vec<SourcedEvent> {
    (first..)
        .zip(events)
        .map(|(position, event)| sourced_at("p", position, event.clone()))
        .collect()
}

fn last_position(batch: &[SourcedEvent]) -> String {
    batch.last().unwrap().position.to_string()
}

async fn file_names(objects: &Arc<dyn ObjectStore>) -> Vec<String> {
    use futures::TryStreamExt;
    let mut names: Vec<String> = objects
        .list(Some(&object_store::path::Path::from("usage")))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    names.sort();
    names
}

async fn rows(objects: &Arc<dyn ObjectStore>, first: u32, last: u32) -> Vec<uuid::Uuid> {
    let rows = crate::reconcile::parquet_events(objects, day(first), day(last))
        .await
        .unwrap();
    let mut ids: Vec<uuid::Uuid> = rows.iter().map(|event| event.event_id).collect();
    ids.sort();
    ids
}

fn ids(events: &[UsageEvent]) -> Vec<uuid::Uuid> {
    let mut ids: Vec<uuid::Uuid> = events.iter().map(|event| event.event_id).collect();
    ids.sort();
    ids
}

const HOUR_OR_1_GIB: FlushPolicy = FlushPolicy {
    max_bytes: 1 << 30,
    max_age: Duration::from_secs(3600),
};

#[tokio::test]
async fn batches_are_buffered_into_one_file_per_day_until_flushed() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let projection = ParquetProjection::new(Arc::clone(&objects), HOUR_OR_1_GIB);
    let mut all = events_on(0, 30);
    all.extend(events_on(1, 5));
    for (index, chunk) in all.chunks(7).enumerate() {
        let sourced = batch(index as u64 * 7 + 1, chunk);
        let taken = projection
            .take("p", &[], &last_position(&sourced), &sourced)
            .await
            .unwrap();
        assert_eq!(taken.len(), chunk.len());
    }
    assert!(file_names(&objects).await.is_empty(), "nothing written yet");
    assert_eq!(
        projection
            .resume_from("p", &[], Some("40"))
            .await
            .unwrap()
            .as_deref(),
        Some("35"),
        "the read resumes where Parquet is, not at the later checkpoint"
    );
    let report = projection.flush_all().await.unwrap();
    assert_eq!((report.files.len(), report.rows), (2, 35));
    assert_eq!(projection.files_written(), 2);
    assert_eq!(file_names(&objects).await.len(), 2);
    assert_eq!(rows(&objects, 0, 1).await, ids(&all));
    let stored = ParquetState::load(&objects, "p").await.unwrap();
    assert_eq!(stored.through.as_deref(), Some("35"));
    assert!(stored.pending.is_empty());
    // A redelivery of everything takes nothing and writes nothing.
    let again = batch(1, &all);
    let taken = projection
        .take("p", &[], &last_position(&again), &again)
        .await
        .unwrap();
    assert!(taken.is_empty());
    assert_eq!(projection.flush_all().await.unwrap().files.len(), 0);
}

#[tokio::test]
async fn a_buffer_is_written_out_when_it_is_large_or_old_enough() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let millis = Arc::new(AtomicU64::new(0));
    let projection = ParquetProjection::new(
        Arc::clone(&objects),
        FlushPolicy {
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(300),
        },
    )
    .with_clock(ProjectionClock::Manual(Arc::clone(&millis)));
    let first = batch(1, &events_on(0, 10));
    projection
        .take("p", &[], &last_position(&first), &first)
        .await
        .unwrap();
    millis.store(299_000, Ordering::Relaxed);
    assert!(projection.flush_due().await.unwrap().files.is_empty());
    millis.store(300_000, Ordering::Relaxed);
    assert_eq!(projection.flush_due().await.unwrap().rows, 10);

    let small = ParquetProjection::new(
        Arc::clone(&objects),
        FlushPolicy {
            max_bytes: 1,
            max_age: Duration::from_secs(300),
        },
    );
    let next = batch(11, &events_on(0, 3));
    small
        .take("p", &[], &last_position(&next), &next)
        .await
        .unwrap();
    assert_eq!(small.files_written(), 1, "written out by size at once");
    assert_eq!(rows(&objects, 0, 0).await.len(), 13);
}

/// A flush that stopped after some of its files leaves them listed in `pending`; loading
/// the state deletes them, so a shorter re-flush leaves no stale file behind.
#[tokio::test]
async fn the_files_of_an_unfinished_flush_are_deleted_before_more_is_written() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let day0 = events_on(0, 4);
    let day1 = events_on(1, 2);
    // The crashed flush: positions 1-6 over two days, state stored with its keys pending.
    let stale_key = |day_offset| BatchObjectKey {
        day: day(day_offset),
        partition: "p".into(),
        first_position: "1".into(),
    };
    for (offset, events) in [(0, &day0), (1, &day1)] {
        let bytes = encode_events_parquet(events).unwrap();
        objects
            .put(&stale_key(offset).to_path(), PutPayload::from(bytes))
            .await
            .unwrap();
    }
    ParquetState {
        stored: true,
        pending: vec![stale_key(0).to_string(), stale_key(1).to_string()],
        ..ParquetState::default()
    }
    .store(&objects, "p")
    .await
    .unwrap();

    // After the restart, the consumer flushes sooner: only positions 1-4 (day 0).
    let projection = ParquetProjection::new(Arc::clone(&objects), HOUR_OR_1_GIB);
    let retry = batch(1, &day0);
    projection
        .take("p", &[], &last_position(&retry), &retry)
        .await
        .unwrap();
    projection.flush_all().await.unwrap();
    assert_eq!(
        rows(&objects, 0, 1).await,
        ids(&day0),
        "no stale day-1 rows"
    );
    // The rest comes later, once.
    let rest = batch(5, &day1);
    projection
        .take("p", &[], &last_position(&rest), &rest)
        .await
        .unwrap();
    projection.flush_all().await.unwrap();
    let mut all = day0.clone();
    all.extend(day1);
    assert_eq!(rows(&objects, 0, 1).await, ids(&all));
}

/// Without `keep`, the next batch reads the stored state (a Lambda invocation elsewhere
/// may have moved it); with it, memory is trusted.
#[tokio::test]
async fn a_flush_without_keep_rereads_the_stored_progress() {
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let here = ParquetProjection::new(Arc::clone(&objects), LAMBDA_TEST_POLICY);
    let elsewhere = ParquetProjection::new(Arc::clone(&objects), LAMBDA_TEST_POLICY);
    let all = events_on(0, 9);
    let first = batch(1, &all[..3]);
    here.take("p", &[], &last_position(&first), &first)
        .await
        .unwrap();
    here.flush_partition("p", false).await.unwrap();
    let second = batch(4, &all[3..6]);
    elsewhere
        .take("p", &[], &last_position(&second), &second)
        .await
        .unwrap();
    elsewhere.flush_partition("p", false).await.unwrap();
    // Back here: a redelivery of 4-9 takes only 7-9.
    let third = batch(4, &all[3..]);
    let taken = here
        .take("p", &[], &last_position(&third), &third)
        .await
        .unwrap();
    assert_eq!(taken.len(), 3);
    here.flush_partition("p", false).await.unwrap();
    assert_eq!(rows(&objects, 0, 0).await, ids(&all));
}

const LAMBDA_TEST_POLICY: FlushPolicy = FlushPolicy {
    max_bytes: 1 << 30,
    max_age: Duration::from_secs(u32::MAX as u64),
};
