//! AWS resources on the local emulator (moto), with random names, for contract and
//! end-to-end tests. The emulator is started by `scripts/test.sh` through
//! `tests/emulators/moto.sh`, which exports `TOLLGATE_TEST_AWS_ENDPOINT`. A moto server
//! accepts at most 50 Firehose delivery streams; when a long-lived one is full, test
//! streams older than ten minutes are deleted (the script starts a fresh server per run).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_firehose::types::{
    CompressionFormat, DeliveryStreamType, EncryptionConfiguration,
    ExtendedS3DestinationConfiguration, NoEncryptionConfig,
};
use store::aws::AwsSettings;

/// The emulator's endpoint, or a failure that says how to start it.
pub fn emulator_endpoint() -> String {
    std::env::var("TOLLGATE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_AWS_ENDPOINT is not set: run the suite with `bash scripts/test.sh`, which starts the AWS \
             emulator, or start it yourself with `tests/emulators/moto.sh start` and export its URL"
        )
    })
}

fn random_suffix() -> String {
    uuid::Uuid::now_v7().simple().to_string()[20..].to_owned()
}

async fn shared_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "tollgate-tests",
        ))
        .load()
        .await
}

/// Sets the dummy credentials the backends' default chain picks up.
pub fn dummy_credentials_env() -> [(&'static str, &'static str); 4] {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

/// Creates two tables, a stream with `shards` shards, a bucket and a Firehose delivery
/// stream into it, all with random names; returns settings that point at them.
pub async fn create_resources(shards: i32) -> AwsSettings {
    let endpoint = emulator_endpoint();
    let config = shared_config(&endpoint).await;
    let suffix = random_suffix();
    let registry_table = format!("tollgate-registry-{suffix}");
    let counters_table = format!("tollgate-counters-{suffix}");
    let stream_name = format!("tollgate-events-{suffix}");
    let bucket = format!("tollgate-usage-{suffix}");
    let firehose_stream = format!("tollgate-archive-{suffix}");

    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    for table in [&registry_table, &counters_table] {
        create_table(&dynamo, table).await;
    }

    let kinesis = aws_sdk_kinesis::Client::new(&config);
    kinesis
        .create_stream()
        .stream_name(&stream_name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    for _ in 0..100 {
        let summary = kinesis
            .describe_stream_summary()
            .stream_name(&stream_name)
            .send()
            .await
            .unwrap();
        if summary
            .stream_description_summary()
            .map(|description| description.stream_status().as_str())
            == Some("ACTIVE")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let http = reqwest::Client::new();
    let created = http
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "creating bucket {bucket}: {}",
        created.status()
    );

    let firehose = aws_sdk_firehose::Client::new(&config);
    if let Err(error) = create_delivery_stream(&firehose, &firehose_stream, &bucket).await {
        // A long-lived emulator fills its quota of 50 delivery streams: drop old test ones.
        assert!(
            format!("{error:?}").contains("LimitExceeded"),
            "creating {firehose_stream}: {error:?}"
        );
        remove_old_test_delivery_streams(&firehose).await;
        create_delivery_stream(&firehose, &firehose_stream, &bucket)
            .await
            .unwrap();
    }

    AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint),
        registry_table,
        counters_table,
        stream_name,
        firehose_stream: Some(firehose_stream),
        // The delivery stream above writes the archive under `archive/` of the bucket.
        archive_bucket: Some(bucket.clone()),
        archive_prefix: "archive".into(),
        bucket,
        prefix: String::new(),
        dedupe_retention: Duration::from_secs(8 * 24 * 3600),
        max_record_age: Duration::from_secs(168 * 3600),
    }
}

async fn create_delivery_stream(
    firehose: &aws_sdk_firehose::Client,
    name: &str,
    bucket: &str,
) -> Result<(), aws_sdk_firehose::Error> {
    firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::123456789012:role/tollgate-firehose")
                .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                .prefix("archive/")
                .compression_format(CompressionFormat::Uncompressed)
                .encryption_configuration(
                    EncryptionConfiguration::builder()
                        .no_encryption_config(NoEncryptionConfig::NoEncryption)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await?;
    Ok(())
}

/// Deletes test delivery streams created more than ten minutes ago.
async fn remove_old_test_delivery_streams(firehose: &aws_sdk_firehose::Client) {
    let listed = firehose
        .list_delivery_streams()
        .limit(10_000)
        .send()
        .await
        .unwrap();
    let cutoff = std::time::SystemTime::now() - Duration::from_secs(600);
    for name in listed
        .delivery_stream_names()
        .iter()
        .filter(|name| name.starts_with("tollgate-archive-"))
    {
        let Ok(described) = firehose
            .describe_delivery_stream()
            .delivery_stream_name(name)
            .send()
            .await
        else {
            continue;
        };
        let created = described
            .delivery_stream_description()
            .and_then(|description| description.create_timestamp())
            .and_then(|timestamp| std::time::SystemTime::try_from(*timestamp).ok());
        if created.is_some_and(|created| created < cutoff) {
            let _ = firehose
                .delete_delivery_stream()
                .delivery_stream_name(name)
                .send()
                .await;
        }
    }
}

/// Every item of the registry and counters tables, as text: what a table export would show.
pub async fn dynamo_dump(settings: &AwsSettings) -> String {
    let config = shared_config(&emulator_endpoint()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let mut dump = String::new();
    for table in [&settings.registry_table, &settings.counters_table] {
        let items: Vec<_> = dynamo
            .scan()
            .table_name(table)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert!(!items.is_empty(), "{table} has items");
        for item in items {
            dump.push_str(&format!("{item:?}\n"));
        }
    }
    dump
}

/// Sets how long the Kinesis stream of `settings` keeps records.
pub async fn set_stream_retention_hours(settings: &AwsSettings, hours: i32) {
    let config = shared_config(&emulator_endpoint()).await;
    aws_sdk_kinesis::Client::new(&config)
        .increase_stream_retention_period()
        .stream_name(&settings.stream_name)
        .retention_period_hours(hours)
        .send()
        .await
        .unwrap();
}

/// Creates a DynamoDB table with Tollgate's key schema (`pk`, `sk`), on demand.
async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) {
    dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// A fresh, empty table with Tollgate's key schema, for replay targets.
pub async fn create_fresh_table(prefix: &str) -> String {
    let config = shared_config(&emulator_endpoint()).await;
    let table = format!("{prefix}-{}", random_suffix());
    create_table(&aws_sdk_dynamodb::Client::new(&config), &table).await;
    table
}

/// An SNS topic with a random name, and an HTTP subscription delivering to `endpoint`
/// (the emulator posts each message there, wrapped in SNS's JSON envelope). Returns the
/// topic ARN.
pub async fn create_alert_topic(endpoint: &str) -> String {
    let config = shared_config(&emulator_endpoint()).await;
    let sns = aws_sdk_sns::Client::new(&config);
    let topic_arn = sns
        .create_topic()
        .name(format!("tollgate-alerts-{}", random_suffix()))
        .send()
        .await
        .expect("create the SNS topic")
        .topic_arn
        .expect("a topic ARN");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(endpoint)
        .send()
        .await
        .expect("subscribe the receiver");
    topic_arn
}

/// The shared configuration the backends use against the emulator.
pub async fn emulator_config() -> aws_config::SdkConfig {
    shared_config(&emulator_endpoint()).await
}
