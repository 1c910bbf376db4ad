//! The AWS meter against the emulator: appending and counting events shows the expected
//! requests and billable units. Its own test binary, so no other test shares the
//! process-wide meter. Needs the dummy credentials `scripts/test.sh` exports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::too_many_lines)] // one scenario, read top to bottom

use bytes::Bytes;
use object_store::ObjectStoreExt;
use schemas::Outcome;
use store::aws::AwsBackend;
use store::aws::meter::{kinesis_on_demand_kib, process_meter};
use store::contract::{day, event_on, unique};
use store::{Counters, EventAppender, LogRecord, SourcedEvent};
use tests::aws_env::create_resources;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_and_counting_events_is_metered_per_request_and_unit() {
    let backend = AwsBackend::connect(create_resources(1).await)
        .await
        .unwrap();
    let customer_id = unique("metered");
    let events: Vec<_> = (0..150)
        .map(|_| event_on(&customer_id, day(0), "model-a", Outcome::Success, 10, 20))
        .collect();
    let records: Vec<LogRecord> = events
        .iter()
        .map(|event| LogRecord {
            partition_key: event.customer_id.to_string(),
            data: Bytes::from(event.encode_json().unwrap()),
        })
        .collect();

    let ingested_kib: u64 = records
        .iter()
        .map(|record| {
            kinesis_on_demand_kib((record.data.len() + record.partition_key.len()) as u64)
        })
        .sum();

    let before = process_meter().snapshot();
    let appended = backend.event_log.append(&records).await.unwrap();
    assert!(appended.iter().all(Result::is_ok), "{appended:?}");
    let after_append = process_meter().snapshot().since(&before);
    assert_eq!(after_append.requests_of("Kinesis", "PutRecords"), 1);
    assert_eq!(after_append.units_of("Kinesis", "put_payload_units"), 150.0);
    assert_eq!(after_append.units_of("Kinesis", "records_put"), 150.0);
    assert_eq!(
        after_append.units_of("Kinesis", "ingested_kib"),
        ingested_kib as f64
    );

    let shard = unique("shard");
    let sourced: Vec<SourcedEvent> = events
        .iter()
        .enumerate()
        .map(|(index, event)| SourcedEvent {
            partition: shard.as_str().into(),
            position: (index + 1).to_string().into(),
            event: event.clone(),
        })
        .collect();
    let before_apply = process_meter().snapshot();
    let report = backend.counters.apply(&sourced).await.unwrap();
    assert_eq!(report.counted, 150);
    let applied = process_meter().snapshot().since(&before_apply);
    // Per batch, whatever its size: the producers' ranges read and merged (one BatchGetItem,
    // one PutItem for the one producer), and one UpdateItem per touched cell (a daily and an
    // hourly one here). Every item is under 1 KiB: one write unit each. No transaction.
    assert_eq!(applied.requests_of("DynamoDB", "TransactWriteItems"), 0);
    assert_eq!(applied.requests_of("DynamoDB", "UpdateItem"), 2);
    assert_eq!(applied.requests_of("DynamoDB", "PutItem"), 1);
    assert_eq!(applied.requests_of("DynamoDB", "BatchGetItem"), 1);
    assert_eq!(applied.units_of("DynamoDB", "write_request_units"), 3.0);

    let before_read = process_meter().snapshot();
    let cells = backend
        .counters
        .read_daily(&customer_id, day(0), day(0))
        .await
        .unwrap();
    assert_eq!(cells.len(), 1);
    let read = process_meter().snapshot().since(&before_read);
    assert_eq!(read.requests_of("DynamoDB", "Query"), 1);
    assert!(read.units_of("DynamoDB", "read_request_units") >= 0.5);

    let before_put = process_meter().snapshot();
    backend
        .objects
        .put(&"usage/metered.txt".into(), Bytes::from_static(b"x").into())
        .await
        .unwrap();
    backend
        .objects
        .get(&"usage/metered.txt".into())
        .await
        .unwrap();
    let objects = process_meter().snapshot().since(&before_put);
    assert_eq!(objects.requests_of("S3", "PutObject"), 1);
    assert_eq!(objects.requests_of("S3", "GetObject"), 1);

    let text = telemetry::metrics::render(&process_meter().samples());
    assert!(
        text.contains(
            "tollgate_aws_requests_total{service=\"DynamoDB\",operation=\"UpdateItem\"} 2"
        ),
        "{text}"
    );
}
