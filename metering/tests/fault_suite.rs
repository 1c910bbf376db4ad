//! The exactly-once fault suite for the metering side. Each test names the invariant it
//! proves and runs on the memory backend and on the embedded one (SQLite and local files).
//! The process-level faults (SIGKILL and SIGTERM under load, the log down for 10 s, a
//! poison record) are in `tests/tests/crash_loss.rs`, `proxy/tests/spool_faults.rs` and
//! `tests/tests/e2e_embedded.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::NaiveDate;
use futures::TryStreamExt;
use metering::BatchApplier;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use proptest::prelude::*;
use schemas::parquet_codec::decode_events_parquet;
use schemas::{Outcome, UsageEvent};
use store::memory::MemoryStore;
use store::{ApplyReport, Counters, LogEntry, SourcedEvent};
use uuid::Uuid;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

fn events(count: usize) -> Vec<UsageEvent> {
    (0..count)
        .map(|index| {
            store::contract::event_on(
                &format!("c{}", index % 3),
                day(),
                "m",
                Outcome::Success,
                10 + index as u64,
                index as u64 % 7,
            )
        })
        .collect()
}

/// A log entry carrying `event` at `position` of partition `0`.
fn entry(position: u64, event: &UsageEvent) -> LogEntry {
    LogEntry {
        partition: "0".into(),
        position: format!("{position:020}"),
        partition_key: event.customer_id.to_string(),
        data: Bytes::from(event.encode_json().unwrap()),
    }
}

/// The sums over unique events, per customer: (requests, input, output).
fn expected(events: &[UsageEvent]) -> BTreeMap<String, (u64, u64, u64)> {
    let mut seen = BTreeSet::new();
    let mut sums: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for event in events {
        if seen.insert(event.event_id) {
            let sum = sums.entry(event.customer_id.to_string()).or_default();
            sum.0 += 1;
            sum.1 += event.input_tokens;
            sum.2 += event.output_tokens;
        }
    }
    sums
}

async fn counted(
    counters: &dyn Counters,
    customers: &[String],
) -> BTreeMap<String, (u64, u64, u64)> {
    let mut sums = BTreeMap::new();
    for customer in customers {
        let cells = counters.read_daily(customer, day(), day()).await.unwrap();
        if cells.is_empty() {
            continue;
        }
        let mut sum = (0, 0, 0);
        for cell in cells {
            sum.0 += cell.counts.requests;
            sum.1 += cell.counts.input_tokens;
            sum.2 += cell.counts.output_tokens;
        }
        sums.insert(customer.clone(), sum);
    }
    sums
}

async fn parquet_ids(objects: &Arc<dyn ObjectStore>) -> Vec<Uuid> {
    let listed: Vec<_> = objects.list(None).try_collect().await.unwrap();
    let mut ids = Vec::new();
    for meta in listed {
        if !meta.location.as_ref().ends_with(".parquet") {
            continue;
        }
        let body = objects
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        ids.extend(
            decode_events_parquet(body)
                .unwrap()
                .into_iter()
                .map(|event| event.event_id),
        );
    }
    ids.sort();
    ids
}

/// Asserts the projections hold each unique event exactly once.
async fn assert_exactly_once(
    counters: &dyn Counters,
    objects: &Arc<dyn ObjectStore>,
    events: &[UsageEvent],
) {
    let customers: Vec<String> = (0..3).map(|index| format!("c{index}")).collect();
    assert_eq!(counted(counters, &customers).await, expected(events));
    let unique: BTreeSet<Uuid> = events.iter().map(|event| event.event_id).collect();
    let rows = parquet_ids(objects).await;
    assert_eq!(rows.len(), unique.len(), "no Parquet row twice");
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), unique);
}

/// A backend under test: counters and objects.
struct Backend {
    counters: Arc<dyn Counters>,
    objects: Arc<dyn ObjectStore>,
    _directory: Option<tempfile::TempDir>,
}

fn backends() -> Vec<(&'static str, Backend)> {
    let memory = Arc::new(MemoryStore::new());
    let directory = tempfile::tempdir().unwrap();
    let embedded =
        Arc::new(store::embedded::EmbeddedStore::open(&directory.path().join("t.db")).unwrap());
    let local = store::objects::local_object_store(&directory.path().join("data")).unwrap();
    vec![
        (
            "memory",
            Backend {
                counters: memory,
                objects: Arc::new(InMemory::new()),
                _directory: None,
            },
        ),
        (
            "embedded",
            Backend {
                counters: embedded,
                objects: local,
                _directory: Some(directory),
            },
        ),
    ]
}

/// Invariant: a batch delivered three times (Kinesis redelivery, consumer retries) is
/// counted and written once.
#[tokio::test]
async fn a_batch_delivered_three_times_is_counted_once() {
    for (_, backend) in backends() {
        let applier = BatchApplier::new(backend.counters.clone(), backend.objects.clone());
        let all = events(12);
        let entries: Vec<LogEntry> = all
            .iter()
            .enumerate()
            .map(|(i, e)| entry(i as u64 + 1, e))
            .collect();
        for _ in 0..3 {
            applier.apply_entries("0", &entries).await.unwrap();
        }
        assert_exactly_once(backend.counters.as_ref(), &backend.objects, &all).await;
    }
}

/// Counters that fail the first apply containing a given event.
struct FailOnce {
    inner: Arc<dyn Counters>,
    poison: Uuid,
    failed: AtomicBool,
}

#[async_trait]
impl Counters for FailOnce {
    async fn apply(&self, events: &[SourcedEvent]) -> store::Result<ApplyReport> {
        if events
            .iter()
            .any(|sourced| sourced.event.event_id == self.poison)
            && !self.failed.swap(true, Ordering::SeqCst)
        {
            return Err(store::StoreError::Unavailable(
                "injected failure at record k".into(),
            ));
        }
        self.inner.apply(events).await
    }
    async fn read_daily(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> store::Result<Vec<schemas::DailyUsage>> {
        self.inner.read_daily(customer_id, from, to).await
    }
    async fn read_hourly(
        &self,
        customer_id: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> store::Result<Vec<schemas::HourlyUsage>> {
        self.inner.read_hourly(customer_id, from, to).await
    }
}

/// Invariant: a failure at record k fails its run; the runs before it stay counted, and
/// retrying from the first record of the failed run (as Lambda's batch item failure asks)
/// counts everything exactly once.
#[tokio::test]
async fn a_failure_at_record_k_then_a_retry_counts_everything_once() {
    for (_, backend) in backends() {
        let all = events(30);
        let k = 17;
        let failing = Arc::new(FailOnce {
            inner: backend.counters.clone(),
            poison: all[k].event_id,
            failed: AtomicBool::new(false),
        });
        let applier = BatchApplier::new(failing, backend.objects.clone());
        let entries: Vec<LogEntry> = all
            .iter()
            .enumerate()
            .map(|(i, e)| entry(i as u64 + 1, e))
            .collect();
        let runs: Vec<&[LogEntry]> = entries.chunks(10).collect();
        let mut retry_from = None;
        for (index, run) in runs.iter().enumerate() {
            if applier.apply_entries("0", run).await.is_err() {
                retry_from = Some(index);
                break;
            }
        }
        let retry_from = retry_from.expect("the run holding record k failed");
        assert_eq!(retry_from, k / 10);
        for run in &runs[retry_from..] {
            applier.apply_entries("0", run).await.unwrap();
        }
        assert_exactly_once(backend.counters.as_ref(), &backend.objects, &all).await;
    }
}

/// Invariant: the same `event_id` at two log positions (a producer that retried after a
/// timeout) is counted once and written to Parquet once, whichever batch sees it first.
#[tokio::test]
async fn the_same_event_under_two_sequence_numbers_is_counted_once() {
    for (_, backend) in backends() {
        let applier = BatchApplier::new(backend.counters.clone(), backend.objects.clone());
        let all = events(8);
        let first: Vec<LogEntry> = all[..5]
            .iter()
            .enumerate()
            .map(|(i, e)| entry(i as u64 + 1, e))
            .collect();
        // The retry appended events 3 and 4 again, behind the rest.
        let mut second: Vec<LogEntry> = all[5..]
            .iter()
            .enumerate()
            .map(|(i, e)| entry(i as u64 + 6, e))
            .collect();
        second.push(entry(9, &all[3]));
        second.push(entry(10, &all[4]));
        applier.apply_entries("0", &first).await.unwrap();
        applier.apply_entries("0", &second).await.unwrap();
        // And the second batch is delivered again.
        applier.apply_entries("0", &second).await.unwrap();
        assert_exactly_once(backend.counters.as_ref(), &backend.objects, &all).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Invariant: whatever duplication, reordering and batch splits the log and the
    /// consumer produce, the counters equal the sums over unique `event_id`s, and Parquet
    /// holds each unique event once.
    #[test]
    fn any_duplication_reordering_and_splitting_counts_each_event_once(
        count in 1usize..40,
        copies in proptest::collection::vec(1usize..4, 40),
        order_seed in any::<u64>(),
        split_points in proptest::collection::vec(1usize..8, 1..20),
        retried in proptest::collection::vec(any::<bool>(), 20),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let all = events(count);
            // Each event appears 1 to 3 times in the log.
            let mut log: Vec<&UsageEvent> = Vec::new();
            for (index, event) in all.iter().enumerate() {
                for _ in 0..copies[index] {
                    log.push(event);
                }
            }
            // A deterministic shuffle from the seed.
            let mut state = order_seed | 1;
            for index in (1..log.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                log.swap(index, (state % (index as u64 + 1)) as usize);
            }
            let entries: Vec<LogEntry> = log
                .iter()
                .enumerate()
                .map(|(position, event)| entry(position as u64 + 1, event))
                .collect();
            let store = Arc::new(MemoryStore::new());
            let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let applier = BatchApplier::new(store.clone(), objects.clone());
            let mut start = 0;
            let mut batch = 0;
            while start < entries.len() {
                let size = split_points[batch % split_points.len()];
                let end = (start + size).min(entries.len());
                applier.apply_entries("0", &entries[start..end]).await.unwrap();
                if retried[batch % retried.len()] {
                    applier.apply_entries("0", &entries[start..end]).await.unwrap();
                }
                start = end;
                batch += 1;
            }
            assert_exactly_once(store.as_ref(), &objects, &all).await;
        });
    }
}
