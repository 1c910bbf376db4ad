use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use schemas::Outcome;
use schemas::UsageEvent;
use schemas::parquet_codec::decode_events_parquet;
use store::memory::MemoryStore;
use store::{Checkpoints, Counters, EventAppender, EventReader, LogRecord, SourcedEvent};

use super::*;

struct Fixture {
    store: Arc<MemoryStore>,
    objects: Arc<dyn ObjectStore>,
    consumer: MeteringConsumer,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let consumer = MeteringConsumer::new(
        store.clone(),
        store.clone(),
        store.clone(),
        objects.clone(),
        ConsumerSettings {
            batch_records: 3,
            ..ConsumerSettings::default()
        },
    );
    Fixture {
        store,
        objects,
        consumer,
    }
}

fn event(customer: &str, tokens: u64) -> UsageEvent {
    let mut event = store::contract::event_on(
        customer,
        Utc::now().date_naive(),
        "model-a",
        Outcome::Success,
        tokens,
        1,
    );
    event.occurred_at = schemas::usage_event::truncate_to_millis(Utc::now());
    event
}

fn record(event: &UsageEvent) -> LogRecord {
    LogRecord {
        partition_key: event.customer_id.to_string(),
        data: Bytes::from(event.encode_json().unwrap()),
    }
}

async fn parquet_rows(objects: &Arc<dyn ObjectStore>) -> Vec<UsageEvent> {
    let listed: Vec<_> = objects
        .list(Some(&Path::from("usage")))
        .try_collect()
        .await
        .unwrap();
    let mut rows = Vec::new();
    for meta in listed {
        let bytes = objects
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        rows.extend(decode_events_parquet(bytes).unwrap());
    }
    rows.sort_by_key(|event| event.event_id);
    rows
}

async fn requests_of(store: &MemoryStore, customer: &str) -> (u64, u64) {
    let today = Utc::now().date_naive();
    let cells = store.read_daily(customer, today, today).await.unwrap();
    let total = schemas::usage_counts::total_counts(cells.iter().map(|cell| &cell.counts));
    (total.requests, total.input_tokens)
}

#[tokio::test]
async fn events_reach_counters_and_parquet_and_the_checkpoint_moves() {
    let fixture = fixture();
    let mut events: Vec<UsageEvent> = (1..=7).map(|tokens| event("cust-a", tokens)).collect();
    fixture
        .store
        .append(&events.iter().map(record).collect::<Vec<_>>())
        .await
        .unwrap();

    let report = fixture.consumer.drain().await.unwrap();
    assert_eq!(report.records_read, 7);
    assert_eq!(report.events_counted, 7);
    assert_eq!(requests_of(&fixture.store, "cust-a").await, (7, 28));
    events.sort_by_key(|event| event.event_id);
    assert_eq!(parquet_rows(&fixture.objects).await, events);
    assert_eq!(
        fixture
            .store
            .load_checkpoint("metering", "0")
            .await
            .unwrap()
            .as_deref(),
        Some("00000000000000000007")
    );
    assert_eq!(
        fixture.consumer.drain().await.unwrap().records_read,
        0,
        "nothing is read twice"
    );
}

#[tokio::test]
async fn a_record_delivered_twice_is_counted_and_written_once() {
    let fixture = fixture();
    let first = event("cust-b", 5);
    let second = event("cust-b", 6);
    let records = vec![
        record(&first),
        record(&second),
        record(&first),
        record(&first),
    ];
    fixture.store.append(&records).await.unwrap();

    let report = fixture.consumer.drain().await.unwrap();
    assert_eq!((report.events_counted, report.duplicates_skipped), (2, 2));
    assert_eq!(requests_of(&fixture.store, "cust-b").await, (2, 11));
    assert_eq!(parquet_rows(&fixture.objects).await.len(), 2);
}

#[tokio::test]
async fn corrupt_records_are_quarantined_with_their_payload_and_do_not_block_the_rest() {
    let fixture = fixture();
    let good = event("cust-c", 3);
    let later = event("cust-c", 4);
    let corrupt = LogRecord {
        partition_key: "cust-c".into(),
        data: Bytes::from_static(b"{\"schema_version\":1,\"event_id\":\"garbage"),
    };
    let future_version = LogRecord {
        partition_key: "cust-c".into(),
        data: Bytes::from_static(b"{\"schema_version\":9}"),
    };
    fixture
        .store
        .append(&[
            record(&good),
            corrupt.clone(),
            future_version,
            record(&later),
        ])
        .await
        .unwrap();

    let report = fixture.consumer.drain().await.unwrap();
    assert_eq!(report.records_quarantined, 2);
    assert_eq!(requests_of(&fixture.store, "cust-c").await, (2, 7));
    let payload = fixture
        .objects
        .get(&Path::from("quarantine/0/00000000000000000002.payload"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(payload, corrupt.data, "the full payload is kept");
    let reason = fixture
        .objects
        .get(&Path::from("quarantine/0/00000000000000000003.reason.txt"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&reason).contains("schema_version 9"));
    assert_eq!(
        fixture
            .consumer
            .stats
            .records_quarantined
            .load(Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn a_batch_retried_after_a_crash_before_the_checkpoint_changes_nothing() {
    let fixture = fixture();
    let events: Vec<UsageEvent> = (1..=3).map(|tokens| event("cust-d", tokens)).collect();
    fixture
        .store
        .append(&events.iter().map(record).collect::<Vec<_>>())
        .await
        .unwrap();
    fixture.consumer.drain().await.unwrap();

    // The process died after writing both projections but before committing: rewind.
    fixture
        .store
        .commit_checkpoint("metering", "0", "00000000000000000000")
        .await
        .unwrap();
    let retried = fixture.consumer.drain().await.unwrap();
    assert_eq!((retried.records_read, retried.events_counted), (3, 0));
    assert_eq!(requests_of(&fixture.store, "cust-d").await, (3, 6));
    assert_eq!(
        parquet_rows(&fixture.objects).await.len(),
        3,
        "the same objects were overwritten"
    );
}

#[tokio::test]
async fn a_batch_retried_after_a_crash_between_counters_and_parquet_still_writes_parquet() {
    let fixture = fixture();
    let events: Vec<UsageEvent> = (1..=2).map(|tokens| event("cust-e", tokens)).collect();
    fixture
        .store
        .append(&events.iter().map(record).collect::<Vec<_>>())
        .await
        .unwrap();
    // The counters were applied from these records, then the process died.
    let entries = fixture.store.read("0", None, 10).await.unwrap().entries;
    let sourced: Vec<SourcedEvent> = entries
        .iter()
        .map(|entry| SourcedEvent {
            partition: entry.partition.as_str().into(),
            position: entry.position.as_str().into(),
            event: UsageEvent::decode_json(&entry.data).unwrap(),
        })
        .collect();
    fixture.store.apply(&sourced).await.unwrap();

    fixture.consumer.drain().await.unwrap();
    assert_eq!(requests_of(&fixture.store, "cust-e").await, (2, 3));
    assert_eq!(parquet_rows(&fixture.objects).await.len(), 2);
}

#[tokio::test]
async fn the_embedded_backend_and_local_files_meter_the_same_way() {
    let directory = tempfile::tempdir().unwrap();
    let embedded =
        Arc::new(store::embedded::EmbeddedStore::open(&directory.path().join("t.db")).unwrap());
    let objects = store::objects::local_object_store(&directory.path().join("data")).unwrap();
    let consumer = MeteringConsumer::new(
        embedded.clone(),
        embedded.clone(),
        embedded.clone(),
        objects.clone(),
        ConsumerSettings::default(),
    );
    let events: Vec<UsageEvent> = (1..=4).map(|tokens| event("cust-f", tokens)).collect();
    embedded
        .append(&events.iter().map(record).collect::<Vec<_>>())
        .await
        .unwrap();
    embedded.append(&[record(&events[0])]).await.unwrap();

    let report = consumer.drain().await.unwrap();
    assert_eq!((report.events_counted, report.duplicates_skipped), (4, 1));
    assert_eq!(parquet_rows(&objects).await.len(), 4);
    let day = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    assert!(
        directory
            .path()
            .join("data/usage")
            .join(format!("dt={day}"))
            .is_dir()
    );
}

#[tokio::test]
async fn events_of_unknown_customers_are_quarantined_and_known_ones_archived() {
    use schemas::{ApiKey, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};
    use store::Registry;
    use store::archive::MemoryArchive;

    let store = Arc::new(MemoryStore::new());
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let archive = Arc::new(MemoryArchive::default());
    let now = schemas::usage_event::truncate_to_millis(Utc::now());
    store
        .create_customer(
            &Customer {
                customer_id: "known".into(),
                name: "Known".into(),
                email: "k@known.example".into(),
                status: CustomerStatus::Active,
                created_at: now,
                limits: Limits::default(),
            },
            &ApiKey {
                key_id: "key_known".into(),
                customer_id: "known".into(),
                token_hash: TokenHash::of("known-token-known-token-known-token"),
                status: KeyStatus::Active,
                created_at: now,
                expires_at: None,
                last_used_at: None,
            },
            &schemas::AuditEntry {
                audit_id: uuid::Uuid::now_v7(),
                at: now,
                actor: "test".into(),
                action: "create".into(),
                customer_id: "known".into(),
                before: Default::default(),
                after: Default::default(),
            },
        )
        .await
        .unwrap();
    let applier = crate::BatchApplier::new(store.clone(), objects.clone())
        .with_archive(Some(archive.clone()))
        .with_registry(Some(store.clone()));
    let consumer = MeteringConsumer::with_applier(
        store.clone(),
        store.clone(),
        applier,
        ConsumerSettings::default(),
    );
    let known = event("known", 2);
    let stranger = event("stranger", 3);
    store
        .append(&[record(&known), record(&stranger)])
        .await
        .unwrap();

    let report = consumer.drain().await.unwrap();
    assert_eq!((report.events_counted, report.records_quarantined), (1, 1));
    assert_eq!(requests_of(&store, "known").await, (1, 2));
    assert_eq!(requests_of(&store, "stranger").await, (0, 0));
    let reason = objects
        .get(&Path::from("quarantine/0/00000000000000000002.reason.txt"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&reason).contains("unknown customer \"stranger\""));
    assert_eq!(
        archive.records(),
        vec![Bytes::from(known.encode_json().unwrap())]
    );
}

/// A log with a closed parent partition and its child, as after a Kinesis reshard.
struct ReshardedLog {
    parent: Vec<UsageEvent>,
    child: Vec<UsageEvent>,
    checkpoints: std::sync::Mutex<std::collections::HashMap<String, String>>,
    reads: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl EventReader for ReshardedLog {
    async fn partitions(&self) -> store::Result<Vec<store::PartitionInfo>> {
        Ok(vec![
            store::PartitionInfo {
                id: "parent".into(),
                parents: Vec::new(),
            },
            store::PartitionInfo {
                id: "child".into(),
                parents: vec!["parent".into()],
            },
        ])
    }
    async fn read(
        &self,
        partition: &str,
        after: Option<&str>,
        max_records: usize,
    ) -> store::Result<store::ReadBatch> {
        let (events, closed) = if partition == "parent" {
            (&self.parent, true)
        } else {
            (&self.child, false)
        };
        let start = after
            .map(|position| position.parse::<usize>().unwrap())
            .unwrap_or(0);
        let end = (start + max_records).min(events.len());
        let entries: Vec<store::LogEntry> = (start..end)
            .map(|index| store::LogEntry {
                partition: partition.to_owned(),
                position: (index + 1).to_string(),
                partition_key: events[index].customer_id.to_string(),
                data: Bytes::from(events[index].encode_json().unwrap()),
            })
            .collect();
        if !entries.is_empty() {
            self.reads.lock().unwrap().push(partition.to_owned());
        }
        Ok(store::ReadBatch {
            caught_up: end == events.len(),
            end_of_partition: closed && end == events.len(),
            entries,
        })
    }
}

#[async_trait::async_trait]
impl Checkpoints for ReshardedLog {
    async fn load_checkpoint(
        &self,
        _consumer: &str,
        partition: &str,
    ) -> store::Result<Option<String>> {
        Ok(self.checkpoints.lock().unwrap().get(partition).cloned())
    }
    async fn commit_checkpoint(
        &self,
        _consumer: &str,
        partition: &str,
        position: &str,
    ) -> store::Result<()> {
        self.checkpoints
            .lock()
            .unwrap()
            .insert(partition.to_owned(), position.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn parent_partitions_are_read_to_their_end_before_their_children() {
    let log = Arc::new(ReshardedLog {
        parent: (1..=5).map(|tokens| event("cust-r", tokens)).collect(),
        child: (6..=7).map(|tokens| event("cust-r", tokens)).collect(),
        checkpoints: std::sync::Mutex::new(std::collections::HashMap::new()),
        reads: std::sync::Mutex::new(Vec::new()),
    });
    let store = Arc::new(MemoryStore::new());
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let consumer = MeteringConsumer::new(
        log.clone(),
        log.clone(),
        store.clone(),
        objects,
        ConsumerSettings {
            batch_records: 2,
            ..ConsumerSettings::default()
        },
    );
    let report = consumer.drain().await.unwrap();
    assert_eq!(report.events_counted, 7);
    assert_eq!(requests_of(&store, "cust-r").await, (7, 28));
    let reads = log.reads.lock().unwrap().clone();
    assert_eq!(
        reads,
        vec!["parent", "parent", "parent", "child"],
        "the child waits for the parent's end"
    );
}

#[tokio::test]
async fn draining_reads_on_through_empty_reads_until_caught_up() {
    let store = Arc::new(MemoryStore::new());
    let events: Vec<UsageEvent> = (1..=4).map(|tokens| event("cust-e", tokens)).collect();
    let records: Vec<LogRecord> = events.iter().map(record).collect();
    store.append(&records).await.unwrap();
    let log = Arc::new(store::contract::event_reader::EmptyReadsFirst::new(
        store.clone(),
        6,
    ));
    let consumer = MeteringConsumer::new(
        log,
        store.clone(),
        store.clone(),
        Arc::new(InMemory::new()),
        ConsumerSettings::default(),
    );
    let report = consumer.drain().await.unwrap();
    assert_eq!(
        report.events_counted, 4,
        "drain does not stop at an empty read"
    );
    assert_eq!(requests_of(&store, "cust-e").await, (4, 10));
}

/// Parquet buffered across batches is not durable: after a crash the consumer reads again
/// from Parquet's progress, not the counters' checkpoint, and writes every event once
/// without counting any again.
#[tokio::test]
async fn a_buffer_lost_in_a_crash_is_read_again_without_counting_twice() {
    let store = Arc::new(MemoryStore::new());
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let buffered = || {
        MeteringConsumer::new(
            store.clone(),
            store.clone(),
            store.clone(),
            objects.clone(),
            ConsumerSettings {
                batch_records: 3,
                parquet_flush: FlushPolicy {
                    max_bytes: 1 << 30,
                    max_age: Duration::from_secs(3600),
                },
                ..ConsumerSettings::default()
            },
        )
    };
    let mut events: Vec<UsageEvent> = (1..=7).map(|tokens| event("cust-a", tokens)).collect();
    store
        .append(&events.iter().map(record).collect::<Vec<_>>())
        .await
        .unwrap();
    let first = buffered();
    for _ in 0..3 {
        first.run_pass().await.unwrap();
    }
    assert_eq!(requests_of(&store, "cust-a").await, (7, 28));
    assert!(parquet_rows(&objects).await.is_empty(), "still buffered");
    drop(first); // the crash: the buffer is gone, the checkpoint is at 7

    let later: Vec<UsageEvent> = (8..=9).map(|tokens| event("cust-a", tokens)).collect();
    store
        .append(&later.iter().map(record).collect::<Vec<_>>())
        .await
        .unwrap();
    let restarted = buffered();
    let report = restarted.drain().await.unwrap();
    assert_eq!(report.events_counted, 2);
    assert_eq!(
        report.duplicates_skipped, 0,
        "records read again are not counted again"
    );
    assert_eq!(requests_of(&store, "cust-a").await, (9, 45));
    events.extend(later);
    events.sort_by_key(|event| event.event_id);
    assert_eq!(parquet_rows(&objects).await, events);
    let files: Vec<_> = objects
        .list(Some(&Path::from("usage")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(files.len(), 1, "one file for the whole drain");
}
