//! Both Lambda handlers, invoked with real event payloads against emulated AWS: API Gateway
//! proxy events (REST stage `prod` and HTTP API) through `lambda_http` into the proxy's
//! router, and Kinesis events built from the records read back from the stream into the
//! metering handler.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{SubsecRound, Utc};
use futures::TryStreamExt;
use metering::BatchApplier;
use metering::lambda::handle_kinesis_event;
use object_store::ObjectStoreExt;
use proxy::build_router;
use proxy::config::ProxyConfig;
use proxy::server::{ProxyPorts, build_state};
use proxy::upstream::{BedrockRuntime, BedrockSettings};
use schemas::parquet_codec::decode_events_parquet;
use schemas::token::format_generated_token;
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits};
use store::aws::{AwsBackend, AwsSettings};
use store::backend::{BackendSettings, Ports};
use store::{EventReader, LogEntry, Registry};
use tests::aws_env::create_resources;
use tests::fake_bedrock::FakeBedrock;
use tests::harness::spec_body;
use tower::ServiceExt;

async fn customer_with_token(registry: &dyn Registry) -> (String, String) {
    let token = format_generated_token(&rand_bytes());
    let customer_id = format!("lambda-{}", uuid::Uuid::now_v7().simple());
    let now = Utc::now().trunc_subsecs(3);
    registry
        .create_customer(
            &Customer {
                customer_id: customer_id.clone(),
                name: "Lambda Co".into(),
                email: "l@lambda.example".into(),
                status: CustomerStatus::Active,
                created_at: now,
                limits: Limits::default(),
            },
            &ApiKey {
                key_id: "key_lambda".into(),
                customer_id: customer_id.clone(),
                token_hash: token.hash(),
                status: KeyStatus::Active,
                created_at: now,
                expires_at: None,
                last_used_at: None,
            },
            &audit_for(&customer_id, "create"),
        )
        .await
        .unwrap();
    (customer_id, token.expose().to_owned())
}

/// An audit entry for a change made by this test.
fn audit_for(customer_id: &str, action: &str) -> AuditEntry {
    AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now(),
        actor: "test".into(),
        action: action.into(),
        customer_id: customer_id.into(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    bytes
}

fn rest_api_event(token: &str, body: &str) -> String {
    serde_json::json!({
        "resource": "/bedrock",
        "path": "/bedrock",
        "httpMethod": "POST",
        "headers": {"Authorization": format!("Bearer {token}"), "Content-Type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Authorization": [format!("Bearer {token}")], "Content-Type": ["application/json"], "Host": ["abc123.execute-api.us-east-1.amazonaws.com"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "res123",
            "resourcePath": "/bedrock",
            "httpMethod": "POST",
            "path": "/prod/bedrock",
            "stage": "prod",
            "requestId": uuid::Uuid::now_v7().to_string(),
            "requestTimeEpoch": Utc::now().timestamp_millis(),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "curl/8.0"}
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

fn http_api_event(token: &str, body: &str) -> String {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "POST /prod/bedrock",
        "rawPath": "/prod/bedrock",
        "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}"), "content-type": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": "POST", "path": "/prod/bedrock", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "curl/8.0"},
            "requestId": uuid::Uuid::now_v7().to_string(),
            "routeKey": "POST /prod/bedrock",
            "stage": "$default",
            "time": "29/Nov/2026:00:00:00 +0000",
            "timeEpoch": Utc::now().timestamp_millis()
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

async fn read_stream(log: &dyn EventReader) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    for partition in log.partitions().await.unwrap() {
        entries.extend(
            store::contract::event_reader::read_until_caught_up(log, &partition.id, None, 1000)
                .await,
        );
    }
    entries
}

fn kinesis_event(
    settings: &AwsSettings,
    entries: &[LogEntry],
    poison: Option<&LogEntry>,
) -> aws_lambda_events::event::kinesis::KinesisEvent {
    let mut records: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| kinesis_record(settings, entry, &entry.data))
        .collect();
    if let Some(poison) = poison {
        records.insert(1, kinesis_record(settings, poison, &poison.data));
    }
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

fn kinesis_record(settings: &AwsSettings, entry: &LogEntry, data: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": entry.partition_key,
            "sequenceNumber": entry.position,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "approximateArrivalTimestamp": 1_764_374_400.123
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("{}:{}", entry.partition, entry.position),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/tollgate-metering",
        "awsRegion": "us-east-1",
        "eventSourceARN": format!("arn:aws:kinesis:us-east-1:123456789012:stream/{}", settings.stream_name)
    })
}

/// The usage Parquet files under `ports`.
async fn usage_files(ports: &Ports) -> Vec<object_store::ObjectMeta> {
    ports
        .objects
        .list(Some(&"usage".into()))
        .try_collect()
        .await
        .unwrap()
}

async fn parquet_row_count(ports: &Ports) -> usize {
    let listed = usage_files(ports).await;
    let mut rows = 0;
    for meta in listed {
        let body = ports
            .objects
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        rows += decode_events_parquet(body).unwrap().len();
    }
    rows
}

/// The proxy's router as the Lambda builds it (durable events), on `ports`, forwarding to the fake.
async fn lambda_router(ports: &Ports, fake: &FakeBedrock) -> (axum::Router, proxy::EventEmitter) {
    let runtime = BedrockRuntime::connect(&BedrockSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(fake.endpoint_url()),
        timeout: Duration::from_secs(30),
        ..BedrockSettings::default()
    })
    .await
    .unwrap();
    let (state, emitter) = build_state(
        ProxyConfig {
            durable_events: true,
            ..ProxyConfig::default()
        },
        ProxyPorts::from_backend(ports, Arc::new(runtime)),
    )
    .unwrap();
    (build_router(state), emitter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_and_metering_lambdas_handle_real_event_payloads() {
    let settings = create_resources(1).await;
    let ports = BackendSettings::Aws(settings.clone()).open().await.unwrap();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = customer_with_token(ports.registry.as_ref()).await;
    let (router, _emitter) = lambda_router(&ports, &fake).await;

    // The proxy Lambda: each API Gateway event is answered only once its usage event is in Kinesis.
    let body = spec_body("What is the capital of France?").to_string();
    for (index, payload) in [
        rest_api_event(&token, &body),
        http_api_event(&token, &body),
        rest_api_event(&token, &body),
    ]
    .iter()
    .enumerate()
    {
        let request = lambda_http::request::from_str(payload).unwrap();
        let request = request.map(|body| axum::body::Body::from(body.to_vec()));
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "event {index}");
        assert_eq!(
            read_stream(ports.event_reader.as_ref()).await.len(),
            index + 1,
            "durable before the response"
        );
    }
    let unauthenticated =
        lambda_http::request::from_str(&rest_api_event("not-a-real-token", &body)).unwrap();
    let response = router
        .clone()
        .oneshot(unauthenticated.map(|body| axum::body::Body::from(body.to_vec())))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(fake.answered().len(), 3);

    // The metering Lambda: a Kinesis event built from what the stream holds, plus a poison record.
    let entries = read_stream(ports.event_reader.as_ref()).await;
    assert_eq!(entries.len(), 3);
    let poison = LogEntry {
        data: bytes::Bytes::from_static(b"this is not a usage event"),
        position: format!("{}9", entries[0].position),
        ..entries[0].clone()
    };
    let event = kinesis_event(&settings, &entries, Some(&poison));
    let applier = BatchApplier::from_ports(&ports);
    let (response, report) = handle_kinesis_event(&applier, event.clone()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    assert_eq!((report.events_counted, report.records_quarantined), (3, 1));
    let today = Utc::now().date_naive();
    let usage = ports
        .counters
        .read_daily(&customer_id, today, today)
        .await
        .unwrap();
    assert_eq!(
        usage.iter().map(|cell| cell.counts.requests).sum::<u64>(),
        3
    );
    assert_eq!(parquet_row_count(&ports).await, 3);
    let quarantined: Vec<_> = ports
        .objects
        .list(Some(&"quarantine".into()))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        quarantined.len(),
        2,
        "the poison record's payload and reason"
    );

    // Invoking the handler again with the same event changes nothing.
    let (again, again_report) = handle_kinesis_event(&applier, event.clone()).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(again_report.events_counted, 0);
    let usage = ports
        .counters
        .read_daily(&customer_id, today, today)
        .await
        .unwrap();
    assert_eq!(
        usage.iter().map(|cell| cell.counts.requests).sum::<u64>(),
        3
    );
    assert_eq!(parquet_row_count(&ports).await, 3);
    let archived = AwsBackend::connect(settings.clone()).await.unwrap();
    let archive_objects: Vec<_> = archived
        .objects
        .list(Some(&"archive".into()))
        .try_collect()
        .await
        .unwrap();
    assert!(
        !archive_objects.is_empty(),
        "records were archived through Firehose"
    );

    // When the projections cannot be written, the first record is reported for retry.
    let broken = AwsBackend::connect(AwsSettings {
        counters_table: "no-such-counters-table".into(),
        ..settings.clone()
    })
    .await
    .unwrap();
    let broken_applier = BatchApplier::new(broken.counters.clone(), broken.objects.clone());
    let (failed, _) = handle_kinesis_event(&broken_applier, event).await;
    let identifiers: Vec<Option<String>> = failed
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect();
    assert_eq!(identifiers, vec![Some(entries[0].position.clone())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_lambda_a_stream_ends_only_after_its_event_is_in_kinesis() {
    let settings = create_resources(1).await;
    let ports = BackendSettings::Aws(settings).open().await.unwrap();
    let fake = FakeBedrock::start().await;
    let (_customer_id, token) = customer_with_token(ports.registry.as_ref()).await;
    let (router, _emitter) = lambda_router(&ports, &fake).await;
    let body = serde_json::json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        .to_string();
    let event = rest_api_event(&token, &body).replace(
        "\"/bedrock\"",
        "\"/model/amazon.nova-lite-v1%3A0/converse-stream\"",
    );
    let request = lambda_http::request::from_str(&event).unwrap();
    let response = router
        .oneshot(request.map(|body| axum::body::Body::from(body.to_vec())))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(!streamed.is_empty());
    let entries = read_stream(ports.event_reader.as_ref()).await;
    let events: Vec<schemas::UsageEvent> = entries
        .iter()
        .flat_map(|entry| schemas::usage_frame::decode_events(&entry.data).unwrap())
        .collect();
    assert_eq!(
        events.len(),
        1,
        "the stream ended only after its event was durable"
    );
    let event = events[0].clone();
    assert_eq!(event.operation, schemas::Operation::ConverseStream);
    assert_eq!(event.output_tokens, fake.answered()[0].output_tokens);
}

/// The template's two consumers of the stream: the counting function (short batches) and
/// the Parquet function (long batches), each handling the same Kinesis events. Counters
/// count once, Parquet holds each event once in one file per shard and day per
/// invocation, a redelivery changes neither, and only the counting function quarantines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counting_and_parquet_functions_split_the_work_and_parquet_is_one_file_per_invocation()
{
    use metering::apply::MeteringRole;
    use metering::lambda::LAMBDA_PARQUET_FLUSH;
    use metering::parquet_buffer::ProjectionClock;
    let settings = create_resources(1).await;
    let ports = BackendSettings::Aws(settings.clone()).open().await.unwrap();
    let (customer_id, _) = customer_with_token(ports.registry.as_ref()).await;
    let today = Utc::now().date_naive();
    let records: Vec<store::LogRecord> = (1..=300u64)
        .map(|seq| {
            let mut event = store::contract::event_on(
                &customer_id,
                today,
                "m",
                schemas::Outcome::Success,
                seq,
                1,
            );
            event.proxy_instance = "proxy-lambda-a".into();
            event.instance_seq = seq;
            store::LogRecord {
                partition_key: event.proxy_instance.to_string(),
                data: bytes::Bytes::from(event.encode_json().unwrap()),
            }
        })
        .collect();
    ports.event_appender.append(&records).await.unwrap();
    let entries = read_stream(ports.event_reader.as_ref()).await;
    assert_eq!(entries.len(), 300);
    let poison = LogEntry {
        data: bytes::Bytes::from_static(b"not a usage event"),
        position: format!("{}9", entries[0].position),
        ..entries[0].clone()
    };
    let event = kinesis_event(&settings, &entries, Some(&poison));

    let counting = BatchApplier::from_ports(&ports).with_role(MeteringRole::Counters);
    let parquet = BatchApplier::from_ports(&ports)
        .with_role(MeteringRole::Parquet)
        .with_parquet_flush(LAMBDA_PARQUET_FLUSH, ProjectionClock::System);

    let (response, report) = handle_kinesis_event(&parquet, event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        (report.events_counted, report.records_quarantined),
        (0, 0),
        "the Parquet function neither counts nor quarantines"
    );
    let counted = |ports: &Ports| {
        let (counters, customer_id) = (ports.counters.clone(), customer_id.clone());
        async move {
            counters
                .read_daily(&customer_id, today, today)
                .await
                .unwrap()
                .iter()
                .map(|cell| cell.counts.requests)
                .sum::<u64>()
        }
    };
    assert_eq!(counted(&ports).await, 0);
    assert_eq!(
        usage_files(&ports).await.len(),
        1,
        "one file for the invocation's 300 records"
    );
    assert_eq!(parquet_row_count(&ports).await, 300);

    let (response, report) = handle_kinesis_event(&counting, event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        (report.events_counted, report.records_quarantined),
        (300, 1)
    );
    assert_eq!(counted(&ports).await, 300);
    assert_eq!(
        parquet_row_count(&ports).await,
        300,
        "no Parquet from the counting function"
    );

    // Redelivered to both (a retry): nothing changes.
    let (_, again) = handle_kinesis_event(&parquet, event.clone()).await;
    assert_eq!(again.events_counted, 0);
    let (_, again) = handle_kinesis_event(&counting, event).await;
    assert_eq!(again.events_counted, 0);
    assert_eq!(counted(&ports).await, 300);
    assert_eq!(parquet_row_count(&ports).await, 300);
    assert_eq!(usage_files(&ports).await.len(), 1);
}
