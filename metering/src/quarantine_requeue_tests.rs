use chrono::Utc;
use object_store::memory::InMemory;
use schemas::Outcome;
use schemas::usage_frame::{FrameCodec, encode_frame};
use store::contract::registry::{audit_for, new_customer, new_key};
use store::memory::MemoryStore;
use store::{Counters, EventReader, Registry};

use super::*;
use crate::BatchApplier;

struct Setup {
    store: Arc<MemoryStore>,
    objects: Arc<dyn ObjectStore>,
    applier: BatchApplier,
}

fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let applier = BatchApplier::new(store.clone() as Arc<dyn Counters>, objects.clone())
        .with_registry(Some(store.clone() as Arc<dyn Registry>));
    Setup {
        store,
        objects,
        applier,
    }
}

async fn register(store: &MemoryStore, customer_id: &str) {
    let mut customer = new_customer();
    customer.customer_id = customer_id.to_owned();
    let key = new_key(customer_id);
    store
        .create_customer(&customer, &key, &audit_for(customer_id, "create"))
        .await
        .unwrap();
}

fn event(customer_id: &str, seq: u64) -> schemas::UsageEvent {
    let mut event = store::contract::event_on(
        customer_id,
        Utc::now().date_naive(),
        "model-a",
        Outcome::Success,
        10,
        5,
    );
    event.proxy_instance = "proxy-1".into();
    event.instance_seq = seq;
    event
}

/// Applies the log's records after `after` and returns the new tip.
async fn apply_from(setup: &Setup, after: Option<&str>) -> (crate::PassReport, Option<String>) {
    let partition = setup.store.partitions().await.unwrap().remove(0).id;
    let read = setup.store.read(&partition, after, 1000).await.unwrap();
    let tip = read.entries.last().map(|entry| entry.position.clone());
    let report = setup
        .applier
        .apply_entries(&partition, &read.entries)
        .await
        .unwrap();
    (report, tip)
}

async fn requests(store: &MemoryStore, customer_id: &str) -> u64 {
    let today = Utc::now().date_naive();
    store
        .read_daily(customer_id, today, today)
        .await
        .unwrap()
        .iter()
        .map(|cell| cell.counts.requests)
        .sum()
}

#[tokio::test]
async fn quarantined_events_are_listed_and_requeued_once_their_cause_is_fixed() {
    let setup = setup();
    register(&setup.store, "cust-a").await;
    let frame = encode_frame(
        &[
            event("cust-a", 1),
            event("cust-late", 2),
            event("cust-a", 3),
        ],
        FrameCodec::Zstd,
    )
    .unwrap();
    let unknown_version = b"TGUF\x09\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00".to_vec();
    setup
        .store
        .append(&[
            LogRecord {
                partition_key: "proxy-1".into(),
                data: frame.into(),
            },
            LogRecord {
                partition_key: "proxy-2".into(),
                data: unknown_version.clone().into(),
            },
        ])
        .await
        .unwrap();
    let (first, tip) = apply_from(&setup, None).await;
    assert_eq!((first.events_counted, first.records_quarantined), (2, 2));

    let listed = list_quarantined(&setup.objects).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let line = listed.iter().find(|item| item.line.is_some()).unwrap();
    assert_eq!(line.line, Some(2));
    assert_eq!(line.format.as_deref(), Some("binary-v3"));
    assert_eq!(line.partition_key, "proxy-1");
    assert!(line.reason.contains("unknown customer"), "{line:?}");
    let record = listed.iter().find(|item| item.line.is_none()).unwrap();
    assert!(record.reason.contains("frame version 9"), "{record:?}");
    assert_eq!(record.bytes, unknown_version.len() as u64);

    // The customer is registered late; the quarantine is sent through the log again.
    register(&setup.store, "cust-late").await;
    let report = requeue_quarantined(&setup.objects, setup.store.as_ref())
        .await
        .unwrap();
    assert_eq!(
        report,
        RequeueReport {
            requeued: 2,
            refused: 0
        }
    );
    assert!(list_quarantined(&setup.objects).await.unwrap().is_empty());
    let (second, tip) = apply_from(&setup, tip.as_deref()).await;
    assert_eq!(second.events_counted, 1, "the late customer's event");
    assert_eq!(
        second.records_quarantined, 1,
        "version 9 is still unreadable"
    );
    assert_eq!(requests(&setup.store, "cust-late").await, 1);
    assert_eq!(requests(&setup.store, "cust-a").await, 2);

    // Sent twice (a crash between the append and the deletion): counted once.
    let again = record_for(line, {
        let frame = encode_frame(&[event("cust-late", 2)], FrameCodec::None).unwrap();
        schemas::usage_frame::decode_record(&Bytes::from(frame))
            .unwrap()
            .remove(0)
            .bytes
    })
    .unwrap();
    setup.store.append(&[again]).await.unwrap();
    let (third, _) = apply_from(&setup, tip.as_deref()).await;
    assert_eq!((third.events_counted, third.duplicates_skipped), (0, 1));
    assert_eq!(requests(&setup.store, "cust-late").await, 1);
    let left = list_quarantined(&setup.objects).await.unwrap();
    assert_eq!(
        left.len(),
        1,
        "only the unreadable record, under its new position"
    );
}

#[tokio::test]
async fn a_json_line_quarantined_before_binary_frames_is_sent_as_a_json_frame() {
    let setup = setup();
    let line = first_line(&event("cust-b", 1), EventFormat::Json);
    let item = line_item(None, &line);
    let record = record_for(&item, line).unwrap();
    assert_eq!(record.data[4], EventFormat::Json.version());
    let events = schemas::usage_frame::decode_events(&record.data).unwrap();
    assert_eq!(events[0].customer_id, "cust-b");
    assert_eq!(setup.store.partitions().await.unwrap().len(), 1);

    // A payload whose description was lost: the record still goes, under a key of its own.
    let keyless = QuarantinedItem {
        partition_key: String::new(),
        line: None,
        ..item
    };
    let record = record_for(&keyless, Bytes::from_static(b"{}")).unwrap();
    assert_eq!(record.partition_key, REQUEUE_PARTITION_KEY);
}

/// The bytes of `event` as the first line of a frame of `format`, as quarantine keeps them.
fn first_line(event: &schemas::UsageEvent, format: EventFormat) -> Bytes {
    let frame = schemas::usage_frame::encode_frame_as([event], format, FrameCodec::None).unwrap();
    schemas::usage_frame::decode_record(&Bytes::from(frame))
        .unwrap()
        .remove(0)
        .bytes
}

/// A quarantined first line of a record, its description naming `format`.
fn line_item(format: Option<&str>, line: &Bytes) -> QuarantinedItem {
    QuarantinedItem {
        payload_key: "quarantine/0/1-1.payload".into(),
        partition: "0".into(),
        position: "1".into(),
        line: Some(1),
        partition_key: "proxy-1".into(),
        format: format.map(str::to_owned),
        reason: "unknown customer".into(),
        bytes: line.len() as u64,
    }
}

#[test]
fn each_binary_versions_line_is_sent_in_a_frame_of_its_version() {
    // Builds before version 3 described a version 2 line as `binary`; this build writes
    // `binary-v3` for version 3. Each must go back in a frame its bytes decode in.
    let mut event = event("cust-b", 1);
    event.request_id = event.event_id.into();
    for (format, name) in [
        (EventFormat::BinaryV2, "binary"),
        (EventFormat::Binary, "binary-v3"),
    ] {
        let line = first_line(&event, format);
        let record = record_for(&line_item(Some(name), &line), line).unwrap();
        assert_eq!(record.data[4], format.version(), "{name}");
        let events = schemas::usage_frame::decode_events(&record.data).unwrap();
        assert_eq!(events, vec![event.clone()], "{name}");
    }
}

#[tokio::test]
async fn a_payload_without_its_reason_is_listed_and_requeued_too() {
    let setup = setup();
    setup
        .objects
        .put(
            &Path::from("quarantine/0/00000000000000000005.payload"),
            object_store::PutPayload::from_static(b"lost its description"),
        )
        .await
        .unwrap();
    let listed = list_quarantined(&setup.objects).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].reason.as_str(), listed[0].line), ("", None));
    let report = requeue_quarantined(&setup.objects, setup.store.as_ref())
        .await
        .unwrap();
    assert_eq!(report.requeued, 1);
    let partition = setup.store.partitions().await.unwrap().remove(0).id;
    let read = setup.store.read(&partition, None, 10).await.unwrap();
    assert_eq!(read.entries[0].partition_key, REQUEUE_PARTITION_KEY);
    assert!(list_quarantined(&setup.objects).await.unwrap().is_empty());
}
