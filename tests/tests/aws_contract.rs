//! The ports' contract suites on the AWS backends (DynamoDB, Kinesis, Firehose, S3),
//! against the local emulator, with random resource names per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use store::aws::{AwsBackend, AwsSettings};
use store::{Archive, StoreError};
use tests::aws_env::create_resources;

async fn backend(shards: i32) -> AwsBackend {
    let backend = AwsBackend::connect(create_resources(shards).await)
        .await
        .unwrap();
    backend.verify().await.unwrap();
    backend
}

#[tokio::test]
async fn dynamo_registry_contract() {
    let backend = backend(1).await;
    store::contract::registry::run_all(backend.registry.as_ref()).await;
}

#[tokio::test]
async fn dynamo_plans_contract() {
    let backend = backend(1).await;
    store::contract::plans::run_all(backend.plans.as_ref(), backend.registry.as_ref()).await;
}

#[tokio::test]
async fn dynamo_admin_credentials_contract() {
    let backend = backend(1).await;
    store::contract::admin_credentials::run_all(
        backend.admin_credentials.as_ref(),
        backend.registry.as_ref(),
    )
    .await;
}

#[tokio::test]
async fn dynamo_idempotency_contract() {
    let backend = backend(1).await;
    store::contract::idempotency::run_all(backend.idempotency.as_ref()).await;
}

#[tokio::test]
async fn dynamo_counters_contract() {
    let backend = backend(1).await;
    store::contract::counters::run_all(backend.counters.as_ref()).await;
}

#[tokio::test]
async fn dynamo_alerts_contract() {
    let backend = backend(1).await;
    store::contract::alerts::run_all(backend.alerts.as_ref()).await;
}

#[tokio::test]
async fn dynamo_watermarks_contract() {
    let backend = backend(1).await;
    store::contract::watermarks::run_all(backend.watermarks.as_ref()).await;
}

#[tokio::test]
async fn dynamo_quotas_contract() {
    let backend = backend(1).await;
    store::contract::quotas::run_all(backend.quotas.as_ref()).await;
}

#[tokio::test]
async fn dynamo_quotas_hold_across_clients() {
    let settings = create_resources(1).await;
    let first = AwsBackend::connect(settings.clone()).await.unwrap();
    let second = AwsBackend::connect(settings).await.unwrap();
    store::contract::quotas::concurrent_reservations_never_pass_the_cap(&[
        first.quotas.as_ref(),
        second.quotas.as_ref(),
    ])
    .await;
}

#[tokio::test]
async fn kinesis_event_log_contracts() {
    let backend = backend(2).await;
    store::contract::event_appender::run_all(backend.event_log.as_ref()).await;
    store::contract::event_reader::run_all(backend.event_log.as_ref(), backend.event_log.as_ref())
        .await;
}

/// The reader's contract holds when Kinesis answers empty pages before a shard's records
/// (a relay in front of the emulator serves them): more of them than one read follows, so
/// only reading on until caught up finds the records.
#[tokio::test]
async fn kinesis_event_reader_contract_holds_through_empty_pages() {
    let settings = create_resources(2).await;
    let relay = tests::fault_relay::FaultRelay::start(
        settings.endpoint_url.as_deref().unwrap(),
        "Kinesis_20131202.",
    )
    .await;
    let writer = AwsBackend::connect(settings.clone()).await.unwrap();
    let reader = AwsBackend::connect(AwsSettings {
        endpoint_url: Some(relay.endpoint_url()),
        ..settings
    })
    .await
    .unwrap();
    let empty_pages = 3 * store::aws::kinesis_log::MAX_PAGES_PER_READ;
    relay.answer_empty_get_records_pages(empty_pages);
    store::contract::event_reader::run_all(writer.event_log.as_ref(), reader.event_log.as_ref())
        .await;
    assert_eq!(relay.empty_get_records_pages_served(), empty_pages);
}

#[tokio::test]
async fn dynamo_checkpoints_contract() {
    let backend = backend(1).await;
    store::contract::checkpoints::run_all(backend.checkpoints.as_ref(), "shardId-000000000000")
        .await;
}

#[tokio::test]
async fn firehose_archive_lands_every_record_in_s3_once() {
    let backend = backend(1).await;
    let archive = backend.archive.clone().unwrap();
    let records: Vec<Bytes> = (0..7)
        .map(|index| Bytes::from(format!("{{\"n\":{index}}}")))
        .collect();
    archive.archive(&records).await.unwrap();

    let objects: Vec<_> = backend
        .objects
        .list(Some(&"archive".into()))
        .try_collect()
        .await
        .unwrap();
    let mut lines = Vec::new();
    for meta in objects {
        let body = backend
            .objects
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        lines.extend(
            String::from_utf8(body.to_vec())
                .unwrap()
                .lines()
                .map(str::to_owned),
        );
    }
    lines.sort();
    let mut expected: Vec<String> = (0..7).map(|index| format!("{{\"n\":{index}}}")).collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn missing_resources_are_named_at_start_up() {
    let settings = create_resources(1).await;
    for broken in [
        AwsSettings {
            registry_table: "no-such-registry".into(),
            ..settings.clone()
        },
        AwsSettings {
            stream_name: "no-such-stream".into(),
            ..settings.clone()
        },
        AwsSettings {
            firehose_stream: Some("no-such-firehose".into()),
            ..settings.clone()
        },
    ] {
        let backend = AwsBackend::connect(broken).await.unwrap();
        let error = backend.verify().await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
        assert!(error.to_string().contains("no-such-"), "{error}");
    }
    let no_bucket = AwsBackend::connect(AwsSettings {
        bucket: "no-such-bucket-tollgate".into(),
        ..settings.clone()
    })
    .await
    .unwrap();
    let error = no_bucket.verify().await.unwrap_err();
    assert!(
        error.to_string().contains("no-such-bucket-tollgate"),
        "{error}"
    );
    let no_archive_bucket = AwsBackend::connect(AwsSettings {
        archive_bucket: Some("no-such-archive-tollgate".into()),
        ..settings
    })
    .await
    .unwrap();
    let error = no_archive_bucket.verify().await.unwrap_err().to_string();
    assert!(
        error.contains("no-such-archive-tollgate") && error.contains("TOLLGATE_ARCHIVE_BUCKET"),
        "{error}"
    );
}

/// Invariant: dedupe marks outlive every copy of a record. A stream that keeps records
/// longer than the marks allow is refused at start, naming the setting to raise.
#[tokio::test]
async fn a_dedupe_retention_shorter_than_the_stream_allows_is_refused() {
    let settings = create_resources(1).await;
    let backend = AwsBackend::connect(settings.clone()).await.unwrap();
    backend.verify().await.unwrap();
    tests::aws_env::set_stream_retention_hours(&settings, 48).await;
    let refused = backend.verify().await.unwrap_err().to_string();
    assert!(
        refused.contains("--dedupe-retention-days") && refused.contains("at least 9"),
        "{refused}"
    );
    let longer = AwsSettings {
        dedupe_retention: std::time::Duration::from_secs(9 * 24 * 3600),
        ..settings
    };
    AwsBackend::connect(longer)
        .await
        .unwrap()
        .verify()
        .await
        .unwrap();
}

/// The alerts an SNS HTTP subscription received, out of SNS's envelope.
fn sns_messages(
    receiver: &store::contract::notify::Receiver,
) -> Vec<schemas::alert::RecordedAlert> {
    receiver
        .requests()
        .iter()
        .map(|request| {
            let envelope: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(envelope["Type"], "Notification");
            assert!(
                envelope["Subject"]
                    .as_str()
                    .unwrap()
                    .starts_with("Tollgate alert: ")
            );
            serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn sns_notifier_contract() {
    let receiver = store::contract::notify::Receiver::start().await;
    let topic_arn = tests::aws_env::create_alert_topic(&receiver.url("/sns")).await;
    let config = tests::aws_env::emulator_config().await;
    let notifier = store::aws::SnsNotifier::new(&config, &topic_arn).unwrap();
    store::contract::notify::run_all(&notifier, || async { sns_messages(&receiver) }).await;
}

#[tokio::test]
async fn an_sns_topic_that_does_not_exist_is_an_error_naming_it() {
    use store::Notifier;
    let config = tests::aws_env::emulator_config().await;
    let missing = "arn:aws:sns:us-east-1:123456789012:tollgate-no-such-topic";
    let notifier = store::aws::SnsNotifier::new(&config, missing).unwrap();
    let error = notifier
        .notify(&store::contract::notify::sample_alert("missing"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("tollgate-no-such-topic"), "{error}");
}
