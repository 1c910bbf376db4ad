//! AWS backend settings, the clients built once from them, and the start-up check that
//! every configured resource exists.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use object_store::ObjectStore;

use super::errors::aws_error;
use super::meter::process_meter;
use super::meter_hooks::MeterInterceptor;
use super::s3_objects::s3_object_store;
use super::{
    DynamoAlerts, DynamoCheckpoints, DynamoCounters, DynamoPlans, DynamoQuotas, DynamoRegistry,
    DynamoWatermarks, FirehoseArchive, KinesisEventLog,
};
use crate::{Result, StoreError};

/// Names and endpoints of the AWS resources Tollgate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// Region; `None` uses the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// One endpoint for every AWS service, for emulators (and never set in production).
    pub endpoint_url: Option<String>,
    /// DynamoDB table of customers and keys.
    pub registry_table: String,
    /// DynamoDB table of counters, dedupe marks and consumer checkpoints.
    pub counters_table: String,
    /// Kinesis Data Stream of usage events.
    pub stream_name: String,
    /// Firehose delivery stream this process archives every event it reads to; `None`
    /// when it does not (the template's Firehose archives the stream itself).
    pub firehose_stream: Option<String>,
    /// S3 bucket of the raw archive, which reconciliation and replay read; `None` when no
    /// archive is configured (they then read the stream, which keeps only its retention).
    pub archive_bucket: Option<String>,
    /// Key prefix of the raw archive inside `archive_bucket`.
    pub archive_prefix: String,
    /// S3 bucket of Parquet usage files and quarantined records.
    pub bucket: String,
    /// Key prefix inside the bucket.
    pub prefix: String,
    /// How long dedupe marks live: longer than the stream's retention plus the longest retry.
    pub dedupe_retention: Duration,
    /// The oldest record the metering consumer still processes (the event source mapping's
    /// `MaximumRecordAgeInSeconds`); a copy of a record can arrive this long after it.
    pub max_record_age: Duration,
}

/// The AWS backends, each client built once.
pub struct AwsBackend {
    pub registry: Arc<DynamoRegistry>,
    pub plans: Arc<DynamoPlans>,
    /// The admin API's idempotency keys, in the counters table (TTL).
    pub idempotency: Arc<super::DynamoIdempotency>,
    /// The operator's admin credentials, in the registry's table.
    pub admin_credentials: Arc<super::DynamoAdminCredentials>,
    pub counters: Arc<DynamoCounters>,
    pub quotas: Arc<DynamoQuotas>,
    pub watermarks: Arc<DynamoWatermarks>,
    pub alerts: Arc<DynamoAlerts>,
    pub event_log: Arc<KinesisEventLog>,
    pub checkpoints: Arc<DynamoCheckpoints>,
    pub archive: Option<Arc<FirehoseArchive>>,
    pub objects: Arc<dyn ObjectStore>,
    /// The raw archive's objects, rooted at its prefix, when an archive bucket is set.
    pub archive_objects: Option<Arc<dyn ObjectStore>>,
    pub settings: AwsSettings,
    dynamo: aws_sdk_dynamodb::Client,
    kinesis: aws_sdk_kinesis::Client,
    firehose: aws_sdk_firehose::Client,
}

impl std::fmt::Debug for AwsBackend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AwsBackend")
            .field("settings", &self.settings)
            .finish()
    }
}

/// The AWS configuration every client of these settings is built from: the standard chain
/// (credentials, region), the configured region and endpoint, and five attempts per call.
pub async fn load_sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5));
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint_url) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint_url);
    }
    loader.load().await
}

/// The DynamoDB, Kinesis and Firehose clients, each reporting its requests and billable
/// units to the process's meter.
fn metered_clients(
    shared: &aws_config::SdkConfig,
) -> (
    aws_sdk_dynamodb::Client,
    aws_sdk_kinesis::Client,
    aws_sdk_firehose::Client,
) {
    let metered = MeterInterceptor::new(process_meter());
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(shared)
            .interceptor(metered)
            .build(),
    );
    let kinesis = aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::config::Builder::from(shared)
            .interceptor(metered)
            .build(),
    );
    let firehose = aws_sdk_firehose::Client::from_conf(
        aws_sdk_firehose::config::Builder::from(shared)
            .interceptor(metered)
            .build(),
    );
    (dynamo, kinesis, firehose)
}

impl AwsBackend {
    /// Loads AWS configuration from the standard chain and builds every client.
    pub async fn connect(settings: AwsSettings) -> Result<Self> {
        let shared = load_sdk_config(&settings).await;
        let region = shared
            .region()
            .map(|region| region.as_ref().to_owned())
            .ok_or_else(|| {
                StoreError::Config(
                    "no AWS region configured; set AWS_REGION or --aws-region".into(),
                )
            })?;
        let credentials = shared
            .credentials_provider()
            .ok_or_else(|| StoreError::Config("no AWS credentials provider available".into()))?;
        let (dynamo, kinesis, firehose) = metered_clients(&shared);
        let objects = s3_object_store(
            &settings.bucket,
            &settings.prefix,
            &region,
            settings.endpoint_url.as_deref(),
            credentials.clone(),
        )?;
        let archive_objects = match &settings.archive_bucket {
            Some(bucket) => Some(s3_object_store(
                bucket,
                &settings.archive_prefix,
                &region,
                settings.endpoint_url.as_deref(),
                credentials,
            )?),
            None => None,
        };
        Ok(Self {
            registry: Arc::new(DynamoRegistry::new(
                dynamo.clone(),
                &settings.registry_table,
            )),
            plans: Arc::new(DynamoPlans::new(dynamo.clone(), &settings.registry_table)),
            idempotency: Arc::new(super::DynamoIdempotency::new(
                dynamo.clone(),
                &settings.counters_table,
            )),
            admin_credentials: Arc::new(super::DynamoAdminCredentials::new(
                dynamo.clone(),
                &settings.registry_table,
            )),
            counters: Arc::new(DynamoCounters::new(
                dynamo.clone(),
                &settings.counters_table,
                settings.dedupe_retention,
            )),
            quotas: Arc::new(DynamoQuotas::new(dynamo.clone(), &settings.counters_table)),
            alerts: Arc::new(DynamoAlerts::new(dynamo.clone(), &settings.counters_table)),
            watermarks: Arc::new(DynamoWatermarks::new(
                dynamo.clone(),
                &settings.counters_table,
            )),
            event_log: Arc::new(KinesisEventLog::new(kinesis.clone(), &settings.stream_name)),
            checkpoints: Arc::new(DynamoCheckpoints::new(
                dynamo.clone(),
                &settings.counters_table,
            )),
            archive: settings
                .firehose_stream
                .as_ref()
                .map(|name| Arc::new(FirehoseArchive::new(firehose.clone(), name))),
            objects,
            archive_objects,
            settings,
            dynamo,
            kinesis,
            firehose,
        })
    }

    /// Where the raw archive is (`s3://bucket/prefix/`), when one is configured.
    pub fn archive_location(&self) -> Option<String> {
        let bucket = self.settings.archive_bucket.as_ref()?;
        let prefix = self.settings.archive_prefix.trim_matches('/');
        Some(if prefix.is_empty() {
            format!("s3://{bucket}/")
        } else {
            format!("s3://{bucket}/{prefix}/")
        })
    }

    /// Checks that every configured resource exists; the error names the first one missing.
    /// Returns how long the stream keeps a record.
    pub async fn verify(&self) -> Result<Duration> {
        for (table, variable) in [
            (&self.settings.registry_table, "TOLLGATE_REGISTRY_TABLE"),
            (&self.settings.counters_table, "TOLLGATE_COUNTERS_TABLE"),
        ] {
            self.dynamo
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|error| {
                    missing(
                        "DynamoDB table",
                        table,
                        variable,
                        aws_error("DescribeTable", table, error),
                    )
                })?;
        }
        let summary = self
            .kinesis
            .describe_stream_summary()
            .stream_name(&self.settings.stream_name)
            .send()
            .await
            .map_err(|error| {
                missing(
                    "Kinesis stream",
                    &self.settings.stream_name,
                    "TOLLGATE_STREAM_NAME",
                    aws_error("DescribeStreamSummary", &self.settings.stream_name, error),
                )
            })?;
        let retention_hours = summary
            .stream_description_summary()
            .map_or(24, |description| description.retention_period_hours());
        let stream_retention =
            Duration::from_secs(u64::try_from(retention_hours).unwrap_or(0) * 3600);
        check_dedupe_retention(
            self.settings.dedupe_retention,
            stream_retention,
            self.settings.max_record_age,
        )
        .map_err(StoreError::Config)?;
        if let Some(name) = &self.settings.firehose_stream {
            self.firehose
                .describe_delivery_stream()
                .delivery_stream_name(name)
                .send()
                .await
                .map_err(|error| {
                    missing(
                        "Firehose delivery stream",
                        name,
                        "TOLLGATE_FIREHOSE_STREAM",
                        aws_error("DescribeDeliveryStream", name, error),
                    )
                })?;
        }
        reachable(&self.objects, &self.settings.bucket, "TOLLGATE_BUCKET").await?;
        if let (Some(objects), Some(bucket)) =
            (&self.archive_objects, &self.settings.archive_bucket)
            && *bucket != self.settings.bucket
        {
            reachable(objects, bucket, "TOLLGATE_ARCHIVE_BUCKET").await?;
        }
        Ok(stream_retention)
    }
}

/// Lists one key of `objects`; the error names the bucket and the variable to fix.
async fn reachable(objects: &Arc<dyn ObjectStore>, bucket: &str, variable: &str) -> Result<()> {
    use futures::StreamExt;
    let mut listing = objects.list(None);
    if let Some(Err(error)) = listing.next().await {
        return Err(StoreError::NotFound {
            what: format!(
                "S3 bucket {bucket} is not reachable ({error}); create it or fix {variable}"
            ),
        });
    }
    Ok(())
}

/// Dedupe marks must outlive every copy of a record: the stream can hand a record out again
/// for as long as it keeps it, and the consumer retries a record until it is
/// `max_record_age` old. A mark that expires earlier lets a late copy count twice.
pub fn check_dedupe_retention(
    dedupe_retention: Duration,
    stream_retention: Duration,
    max_record_age: Duration,
) -> std::result::Result<(), String> {
    let needed = stream_retention + max_record_age;
    if dedupe_retention >= needed {
        return Ok(());
    }
    let days = |duration: Duration| duration.as_secs().div_ceil(24 * 3600);
    Err(format!(
        "dedupe marks live {} days, but the stream keeps records {} hours and a record may be retried until it is {} hours old: a late copy could be counted twice. Raise --dedupe-retention-days (TOLLGATE_DEDUPE_RETENTION_DAYS) to at least {}",
        days(dedupe_retention),
        stream_retention.as_secs() / 3600,
        max_record_age.as_secs() / 3600,
        days(needed)
    ))
}

fn missing(kind: &str, name: &str, variable: &str, error: StoreError) -> StoreError {
    match error {
        StoreError::NotFound { .. } => StoreError::NotFound {
            what: format!("{kind} {name} does not exist; create it (see infra/) or fix {variable}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn dedupe_marks_must_outlive_retention_plus_record_age() {
        // The defaults: 8 days of marks, 24 h of stream retention, 7 days of record age.
        assert!(check_dedupe_retention(192 * HOUR, 24 * HOUR, 168 * HOUR).is_ok());
        let refused = check_dedupe_retention(192 * HOUR, 48 * HOUR, 168 * HOUR).unwrap_err();
        assert!(refused.contains("at least 9"), "{refused}");
        assert!(refused.contains("--dedupe-retention-days"), "{refused}");
        assert!(check_dedupe_retention(24 * HOUR, 24 * HOUR, HOUR).is_err());
        assert!(check_dedupe_retention(400 * 24 * HOUR, 365 * 24 * HOUR, 168 * HOUR).is_ok());
    }
}
