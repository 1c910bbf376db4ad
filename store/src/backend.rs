//! Choosing a backend: the typed settings (from flags and environment variables) and the
//! set of ports they open. Every binary opens its ports here, so `tollgate`, the
//! standalone proxy, the poller and the Lambdas accept the same configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use object_store::ObjectStore;

use crate::archive::{Archive, RawSource};
use crate::aws::{AwsBackend, AwsSettings};
use crate::embedded::{EmbeddedLogRetention, EmbeddedStore};
use crate::log_retention::LogRetention;
use crate::objects::local_object_store;
use crate::{
    AdminCredentials, Alerts, Checkpoints, Counters, EventAppender, EventReader, IdempotencyKeys,
    Plans, Quotas, Registry, Result, StoreError, Watermarks,
};

/// Where the raw archive lives in its bucket unless configured otherwise (the template's
/// Firehose writes `archive/dt=YYYY-MM-DD/`).
pub const DEFAULT_ARCHIVE_PREFIX: &str = "archive";

/// Which set of backends to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// One SQLite file and a local data directory (the default).
    Embedded,
    /// DynamoDB, Kinesis, Firehose and S3.
    Aws,
}

/// Backend flags, shared by every binary.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Where Tollgate keeps its data.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_BACKEND",
        value_enum,
        default_value = "embedded"
    )]
    pub backend: BackendKind,
    /// Embedded: SQLite database file [default: <data-dir>/tollgate.db].
    #[arg(long, global = true, env = "TOLLGATE_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Embedded: directory for Parquet usage files and quarantined records.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_DATA_DIR",
        value_name = "DIR",
        default_value = "tollgate-data"
    )]
    pub data_dir: PathBuf,
    /// AWS: region [default: the AWS chain, e.g. AWS_REGION].
    #[arg(long, global = true, env = "TOLLGATE_AWS_REGION")]
    pub aws_region: Option<String>,
    /// AWS: one endpoint for every AWS service (emulators only).
    #[arg(long, global = true, env = "TOLLGATE_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// AWS: DynamoDB table of customers and keys.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_REGISTRY_TABLE",
        default_value = "tollgate-registry"
    )]
    pub registry_table: String,
    /// AWS: DynamoDB table of counters, dedupe marks and checkpoints.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_COUNTERS_TABLE",
        default_value = "tollgate-counters"
    )]
    pub counters_table: String,
    /// AWS: Kinesis Data Stream of usage events.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_STREAM_NAME",
        default_value = "tollgate-usage-events"
    )]
    pub stream_name: String,
    /// AWS: Firehose delivery stream the metering consumer archives every event to (empty:
    /// it does not, as when the template's Firehose archives the stream itself).
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_FIREHOSE_STREAM",
        default_value = "tollgate-usage-archive"
    )]
    pub firehose_stream: String,
    /// AWS: S3 bucket of the raw archive, which reconcile and replay read [default: none;
    /// they then read the Kinesis stream, which keeps only its retention].
    #[arg(long, global = true, env = "TOLLGATE_ARCHIVE_BUCKET")]
    pub archive_bucket: Option<String>,
    /// AWS: key prefix of the raw archive inside its bucket.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_ARCHIVE_PREFIX",
        default_value = DEFAULT_ARCHIVE_PREFIX
    )]
    pub archive_prefix: String,
    /// AWS: S3 bucket of Parquet usage files and quarantined records.
    #[arg(long, global = true, env = "TOLLGATE_BUCKET")]
    pub bucket: Option<String>,
    /// AWS: key prefix inside the bucket.
    #[arg(long, global = true, env = "TOLLGATE_PREFIX", default_value = "")]
    pub prefix: String,
    /// AWS: days dedupe marks live; must exceed the stream's retention plus the longest retry.
    #[arg(long, global = true, env = "TOLLGATE_DEDUPE_RETENTION_DAYS", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=400))]
    pub dedupe_retention_days: u64,
    /// AWS: the oldest record metering still retries, in hours (the event source mapping's
    /// MaximumRecordAgeInSeconds); checked against the dedupe retention at start.
    #[arg(long, global = true, env = "TOLLGATE_MAX_RECORD_AGE_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub max_record_age_hours: u64,
}

/// Typed backend settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per process from the flags; boxing would buy nothing"
)]
pub enum BackendSettings {
    Embedded {
        database: PathBuf,
        data_dir: PathBuf,
    },
    Aws(AwsSettings),
}

impl BackendArgs {
    /// Validates the flags into settings; errors name the flag and the fix.
    pub fn settings(&self) -> Result<BackendSettings> {
        match self.backend {
            BackendKind::Embedded => Ok(BackendSettings::Embedded {
                database: self
                    .db
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("tollgate.db")),
                data_dir: self.data_dir.clone(),
            }),
            BackendKind::Aws => {
                let bucket = self
                    .bucket
                    .clone()
                    .filter(|bucket| !bucket.trim().is_empty())
                    .ok_or_else(|| {
                        StoreError::Config(
                            "--backend aws needs an S3 bucket: set --bucket or TOLLGATE_BUCKET"
                                .into(),
                        )
                    })?;
                Ok(BackendSettings::Aws(AwsSettings {
                    region: self.aws_region.clone(),
                    endpoint_url: self.aws_endpoint_url.clone(),
                    registry_table: self.registry_table.clone(),
                    counters_table: self.counters_table.clone(),
                    stream_name: self.stream_name.clone(),
                    firehose_stream: Some(self.firehose_stream.clone())
                        .filter(|name| !name.trim().is_empty()),
                    archive_bucket: self
                        .archive_bucket
                        .clone()
                        .filter(|bucket| !bucket.trim().is_empty()),
                    archive_prefix: self.archive_prefix.clone(),
                    bucket,
                    prefix: self.prefix.clone(),
                    dedupe_retention: Duration::from_secs(self.dedupe_retention_days * 24 * 3600),
                    max_record_age: Duration::from_secs(self.max_record_age_hours * 3600),
                }))
            }
        }
    }
}

/// Every port of one backend.
#[derive(Clone)]
pub struct Ports {
    pub registry: Arc<dyn Registry>,
    /// The plan catalogue and plan assignments.
    pub plans: Arc<dyn Plans>,
    /// The operator's admin credentials (admin API, console).
    pub admin_credentials: Arc<dyn AdminCredentials>,
    /// The admin API's idempotency keys.
    pub idempotency: Arc<dyn IdempotencyKeys>,
    pub counters: Arc<dyn Counters>,
    /// Strict-mode limit windows.
    pub quotas: Arc<dyn Quotas>,
    /// Per proxy instance progress of the consumer.
    pub watermarks: Arc<dyn Watermarks>,
    /// Raised alerts, each recorded once.
    pub alerts: Arc<dyn Alerts>,
    /// The producer side of the event log (the proxy's only view of it).
    pub event_appender: Arc<dyn EventAppender>,
    /// The consumer side of the event log.
    pub event_reader: Arc<dyn EventReader>,
    /// Where each consumer of the event log has got to.
    pub checkpoints: Arc<dyn Checkpoints>,
    pub objects: Arc<dyn ObjectStore>,
    /// Where the metering consumer writes the raw archive (a Firehose delivery stream);
    /// `None` when it does not: on the embedded backend, whose event log is the archive, and
    /// on AWS when the template's Firehose archives the stream itself.
    pub archive: Option<Arc<dyn Archive>>,
    /// Where reconciliation and replay read the raw events back.
    pub raw_source: RawSource,
    /// Moves the log's settled records into the archive: the embedded log, which keeps
    /// every record until then. `None` on AWS, where the stream expires records itself.
    pub log_retention: Option<Arc<dyn LogRetention>>,
    /// A human-readable description, for start-up messages.
    pub description: String,
}

impl Ports {
    /// Every port on one memory store, with in-memory objects: for tests and tools.
    pub fn in_memory(store: &Arc<crate::memory::MemoryStore>) -> Self {
        Self {
            registry: store.clone(),
            plans: store.clone(),
            admin_credentials: store.clone(),
            idempotency: store.clone(),
            counters: store.clone(),
            quotas: store.clone(),
            watermarks: store.clone(),
            alerts: store.clone(),
            event_appender: store.clone(),
            event_reader: store.clone(),
            checkpoints: store.clone(),
            objects: Arc::new(object_store::memory::InMemory::new()),
            archive: None,
            raw_source: RawSource::WholeLog {
                location: "the memory event log".into(),
            },
            log_retention: None,
            description: "memory".into(),
        }
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ports")
            .field("description", &self.description)
            .finish()
    }
}

impl BackendSettings {
    /// Opens the backend. AWS resources are checked, and a missing one is named.
    pub async fn open(&self) -> Result<Ports> {
        match self {
            Self::Embedded { database, data_dir } => open_embedded(database, data_dir),
            Self::Aws(settings) => open_aws(settings).await,
        }
    }
}

/// The embedded backend's ports: one SQLite file and a data directory.
fn open_embedded(database: &std::path::Path, data_dir: &std::path::Path) -> Result<Ports> {
    let store = Arc::new(EmbeddedStore::open(database)?);
    let objects = local_object_store(data_dir)?;
    let archive_root = data_dir.join(DEFAULT_ARCHIVE_PREFIX);
    let archive = local_object_store(&archive_root)?;
    let log_retention: Arc<dyn LogRetention> = Arc::new(EmbeddedLogRetention::new(
        store.as_ref().clone(),
        archive_root.clone(),
    ));
    Ok(Ports {
        registry: store.clone(),
        plans: store.clone(),
        admin_credentials: store.clone(),
        idempotency: store.clone(),
        counters: store.clone(),
        quotas: store.clone(),
        watermarks: store.clone(),
        alerts: store.clone(),
        event_appender: store.clone(),
        event_reader: store.clone(),
        checkpoints: store,
        objects,
        archive: None,
        raw_source: RawSource::ArchivedLog {
            archive,
            location: format!(
                "the archive in {} and the embedded event log in {}",
                archive_root.display(),
                database.display()
            ),
        },
        log_retention: Some(log_retention),
        description: format!(
            "embedded (database {}, data {})",
            database.display(),
            data_dir.display()
        ),
    })
}

/// The AWS backend's ports, its resources checked first.
async fn open_aws(settings: &AwsSettings) -> Result<Ports> {
    let backend = AwsBackend::connect(settings.clone()).await?;
    let stream_retention = backend.verify().await?;
    let raw_source = match (&backend.archive_objects, backend.archive_location()) {
        (Some(objects), Some(location)) => RawSource::Archive {
            objects: objects.clone(),
            location,
        },
        _ => RawSource::RetainedLog {
            stream_name: settings.stream_name.clone(),
            retention: stream_retention,
        },
    };
    Ok(Ports {
        registry: backend.registry.clone(),
        plans: backend.plans.clone(),
        admin_credentials: backend.admin_credentials.clone(),
        idempotency: backend.idempotency.clone(),
        counters: backend.counters.clone(),
        quotas: backend.quotas.clone(),
        watermarks: backend.watermarks.clone(),
        alerts: backend.alerts.clone(),
        event_appender: backend.event_log.clone(),
        event_reader: backend.event_log.clone(),
        checkpoints: backend.checkpoints.clone(),
        objects: backend.objects.clone(),
        archive: backend
            .archive
            .clone()
            .map(|archive| archive as Arc<dyn Archive>),
        raw_source,
        log_retention: None,
        description: format!(
            "aws (tables {} and {}, stream {}, bucket {})",
            settings.registry_table, settings.counters_table, settings.stream_name, settings.bucket
        ),
    })
}

/// Where a replay writes: fresh projections, never the live ones.
#[derive(Clone)]
pub struct Projections {
    pub counters: Arc<dyn Counters>,
    pub objects: Arc<dyn ObjectStore>,
    pub description: String,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Projections")
            .field("description", &self.description)
            .finish()
    }
}

impl BackendSettings {
    /// Opens fresh projections next to this backend's: on the embedded backend a data
    /// directory (its own SQLite file for the counters, Parquet under it); on AWS another
    /// counters table and another key prefix in the same bucket. The live ones are refused.
    pub async fn open_projections(
        &self,
        to_data_dir: Option<&std::path::Path>,
        to_counters_table: Option<&str>,
        to_prefix: Option<&str>,
    ) -> Result<Projections> {
        match self {
            Self::Embedded { database, data_dir } => {
                let target = to_data_dir.ok_or_else(|| {
                    StoreError::Config("give --to-data-dir DIR: a fresh directory for the rebuilt counters and Parquet".into())
                })?;
                let target_database = target.join("tollgate.db");
                let same = |a: &std::path::Path, b: &std::path::Path| {
                    a == b
                        || (a.canonicalize().ok().is_some()
                            && a.canonicalize().ok() == b.canonicalize().ok())
                };
                if same(target, data_dir) || same(&target_database, database) {
                    return Err(StoreError::Config(format!(
                        "--to-data-dir {} holds the live projections; give a fresh directory",
                        target.display()
                    )));
                }
                let store = Arc::new(EmbeddedStore::open(&target_database)?);
                Ok(Projections {
                    counters: store,
                    objects: local_object_store(target)?,
                    description: format!("data directory {}", target.display()),
                })
            }
            Self::Aws(settings) => {
                let (Some(table), Some(prefix)) = (to_counters_table, to_prefix) else {
                    return Err(StoreError::Config(
                        "give --to-counters-table TABLE and --to-prefix PREFIX: a fresh DynamoDB table (same key schema) and a fresh key prefix for Parquet".into(),
                    ));
                };
                if table == settings.counters_table {
                    return Err(StoreError::Config(format!(
                        "--to-counters-table {table} is the live counters table; give a fresh one"
                    )));
                }
                if prefix.trim_matches('/') == settings.prefix.trim_matches('/') {
                    return Err(StoreError::Config(format!(
                        "--to-prefix {prefix:?} is where the live Parquet lives; give a fresh prefix"
                    )));
                }
                let target = AwsSettings {
                    counters_table: table.to_owned(),
                    prefix: prefix.to_owned(),
                    ..settings.clone()
                };
                let backend = AwsBackend::connect(target).await?;
                backend.verify().await?;
                Ok(Projections {
                    counters: backend.counters.clone(),
                    objects: backend.objects.clone(),
                    description: format!(
                        "table {table}, s3://{}/{}",
                        settings.bucket,
                        prefix.trim_matches('/')
                    ),
                })
            }
        }
    }
}
