//! The metering consumer's command-line and environment settings.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use store::StoreError;
use store::backend::{BackendSettings, Ports};
use store::notify::{LogNotifier, Notifier};

use crate::alert_engine::{AlertEngine, AlertSettings};
use crate::consumer::ConsumerSettings;
use crate::log_retention::LogRetentionSettings;

/// The consumer's flags.
#[derive(Debug, Clone, Args)]
pub struct MeteringArgs {
    /// How often the metering consumer polls the log when idle, in milliseconds.
    #[arg(long, env = "TOLLGATE_METERING_POLL_MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..))]
    pub metering_poll_ms: u64,
    /// Most log records the consumer reads per partition per batch.
    #[arg(long, env = "TOLLGATE_METERING_BATCH_RECORDS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub metering_batch_records: u64,
    /// Write buffered Parquet out once its files reach this many MiB (encoded); with
    /// --parquet-flush-secs this sets the size of the files Athena reads.
    #[arg(long, env = "TOLLGATE_PARQUET_FLUSH_MB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub parquet_flush_mb: u64,
    /// Write buffered Parquet out once its oldest event was taken this many seconds ago; 0
    /// writes every batch at once (many small files: for trying things out and tests).
    #[arg(long, env = "TOLLGATE_PARQUET_FLUSH_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub parquet_flush_secs: u64,
    /// Compact today's and yesterday's Parquet files this often, in minutes, while the
    /// consumer runs; 0 never (then run `tollgate compact`).
    #[arg(long, env = "TOLLGATE_COMPACT_EVERY_MINS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=1440))]
    pub compact_every_mins: u64,
    #[command(flatten)]
    pub alerts: AlertArgs,
}

/// The embedded log's retention (`tollgate serve` runs it next to its consumer): settled records older than the window move into
/// the data directory's raw archive (`archive/`), which `replay` and `reconcile` read.
#[derive(Debug, Clone, Args)]
pub struct LogRetentionArgs {
    /// Embedded: hours a log record stays in the database after it was appended; once every
    /// consumer and the Parquet files are past it, it then moves into `<data-dir>/archive/`.
    #[arg(long, env = "TOLLGATE_LOG_RETENTION_HOURS", default_value_t = crate::log_retention::DEFAULT_WINDOW_HOURS, value_parser = clap::value_parser!(u64).range(0..=876_000))]
    pub log_retention_hours: u64,
    /// Embedded: how often `serve` moves settled log records into the archive, in seconds.
    #[arg(long, env = "TOLLGATE_LOG_RETENTION_CHECK_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub log_retention_check_seconds: u64,
    /// Embedded: keep every log record in the database (`serve` archives nothing).
    #[arg(long, env = "TOLLGATE_LOG_RETENTION_DISABLED")]
    pub no_log_retention: bool,
}

impl LogRetentionArgs {
    /// The retention's settings; `None` when it is turned off.
    pub fn settings(&self) -> Option<LogRetentionSettings> {
        (!self.no_log_retention).then(|| LogRetentionSettings {
            window: Duration::from_secs(self.log_retention_hours * 3600),
            check_every: Duration::from_secs(self.log_retention_check_seconds),
        })
    }
}

impl MeteringArgs {
    /// When buffered Parquet is written out.
    pub fn parquet_flush(&self) -> crate::parquet_buffer::FlushPolicy {
        if self.parquet_flush_secs == 0 {
            return crate::parquet_buffer::FlushPolicy::EVERY_BATCH;
        }
        crate::parquet_buffer::FlushPolicy {
            max_bytes: usize::try_from(self.parquet_flush_mb.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX),
            max_age: Duration::from_secs(self.parquet_flush_secs),
        }
    }

    /// The consumer's settings.
    pub fn consumer_settings(&self) -> ConsumerSettings {
        ConsumerSettings {
            idle_poll: Duration::from_millis(self.metering_poll_ms),
            batch_records: usize::try_from(self.metering_batch_records).unwrap_or(1000),
            parquet_flush: self.parquet_flush(),
            compact_every: (self.compact_every_mins > 0)
                .then(|| Duration::from_secs(self.compact_every_mins * 60)),
            ..ConsumerSettings::default()
        }
    }
}

/// The alert rules' flags and where alerts are delivered (always also the log).
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Do not evaluate alert rules in this consumer.
    #[arg(long, env = "TOLLGATE_ALERTS_DISABLED")]
    pub no_alerts: bool,
    /// Share of an hour's admitted calls that failed, in percent, that raises `error_rate`.
    #[arg(long, env = "TOLLGATE_ALERT_ERROR_RATE_PERCENT", default_value_t = 10.0, value_parser = parse_percent)]
    pub alert_error_rate_percent: f64,
    /// Fewest admitted calls in an hour before its error rate is judged.
    #[arg(long, env = "TOLLGATE_ALERT_ERROR_MIN_CALLS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_error_min_calls: u64,
    /// Trailing hours that make a customer's usual hourly usage (at most 840, 35 days).
    #[arg(long, env = "TOLLGATE_ALERT_ANOMALY_LOOKBACK_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u32).range(12..=840))]
    pub alert_anomaly_lookback_hours: u32,
    /// Fewest calls in an hour before it can be judged unusual.
    #[arg(long, env = "TOLLGATE_ALERT_ANOMALY_MIN_CALLS", default_value_t = 20)]
    pub alert_anomaly_min_calls: u64,
    /// Fewest tokens in an hour before it can be judged unusual.
    #[arg(
        long,
        env = "TOLLGATE_ALERT_ANOMALY_MIN_TOKENS",
        default_value_t = 20_000
    )]
    pub alert_anomaly_min_tokens: u64,
    /// Deliver alerts by POST to this URL, signed with TOLLGATE_ALERT_WEBHOOK_SECRET.
    #[arg(long, env = "TOLLGATE_ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<String>,
    /// The webhook's HMAC-SHA256 signing secret. Set it in the environment, not on the
    /// command line, where other users of the machine can read it.
    #[arg(long, env = "TOLLGATE_ALERT_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub alert_webhook_secret: Option<schemas::SecretToken>,
    /// Publish alerts to this SNS topic (AWS backend).
    #[arg(long, env = "TOLLGATE_ALERT_SNS_TOPIC_ARN")]
    pub alert_sns_topic_arn: Option<String>,
}

/// Wraps the secret so it never shows in `Debug` output. Checked in
/// [`AlertArgs::notifiers`], not here: clap would echo a refused value.
fn parse_secret(text: &str) -> Result<schemas::SecretToken, String> {
    Ok(schemas::SecretToken::new(text.to_owned()))
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value > 0.0 && value <= 100.0 => Ok(value),
        _ => Err(format!(
            "{text:?} is not a percentage; give a number above 0 and at most 100"
        )),
    }
}

impl AlertArgs {
    /// The rules' tunables.
    pub fn settings(&self) -> AlertSettings {
        AlertSettings {
            error_rate: self.alert_error_rate_percent / 100.0,
            error_rate_min_calls: self.alert_error_min_calls,
            anomaly_lookback_hours: self.alert_anomaly_lookback_hours,
            anomaly_min_calls: self.alert_anomaly_min_calls,
            anomaly_min_tokens: self.alert_anomaly_min_tokens,
            ..AlertSettings::default()
        }
    }

    /// Where alerts go: the log, and the configured webhook and SNS topic. The SNS client
    /// is built from the AWS backend's settings.
    pub async fn notifiers(
        &self,
        backend: &BackendSettings,
    ) -> Result<Vec<Arc<dyn Notifier>>, StoreError> {
        let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(LogNotifier)];
        match (&self.alert_webhook_url, &self.alert_webhook_secret) {
            (Some(_), Some(secret)) if secret.expose().len() < 16 => {
                return Err(StoreError::Config(
                    "the alert webhook's signing secret is shorter than 16 characters; use a long random one (`openssl rand -hex 32`)".into(),
                ));
            }
            (Some(url), Some(secret)) => notifiers.push(Arc::new(
                store::notify::webhook::WebhookNotifier::new(url, secret.expose())?,
            )),
            (Some(_), None) => {
                return Err(StoreError::Config(
                    "--alert-webhook-url needs a signing secret; set TOLLGATE_ALERT_WEBHOOK_SECRET"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(StoreError::Config(
                    "TOLLGATE_ALERT_WEBHOOK_SECRET is set but no --alert-webhook-url; give the URL or unset the secret".into(),
                ));
            }
            (None, None) => {}
        }
        if let Some(topic_arn) = &self.alert_sns_topic_arn {
            let BackendSettings::Aws(aws_settings) = backend else {
                return Err(StoreError::Config(
                    "--alert-sns-topic-arn needs the AWS backend (--backend aws); use --alert-webhook-url with the embedded backend".into(),
                ));
            };
            notifiers.push(Arc::new(
                store::aws::SnsNotifier::connect(aws_settings, topic_arn).await?,
            ));
        }
        Ok(notifiers)
    }

    /// The alert engine over a backend's ports (opened from `backend`), or `None` with
    /// `--no-alerts`.
    pub async fn engine(
        &self,
        ports: &Ports,
        backend: &BackendSettings,
    ) -> Result<Option<Arc<AlertEngine>>, StoreError> {
        if self.no_alerts {
            return Ok(None);
        }
        Ok(Some(Arc::new(AlertEngine::new(
            ports.registry.clone(),
            ports.counters.clone(),
            ports.alerts.clone(),
            self.notifiers(backend).await?,
            self.settings(),
        ))))
    }
}
