//! The metering consumer's command-line and environment settings.

use std::time::Duration;

use clap::Args;

use crate::consumer::ConsumerSettings;

/// The consumer's flags.
#[derive(Debug, Clone, Args)]
pub struct MeteringArgs {
    /// How often the metering consumer polls the log when idle, in milliseconds.
    #[arg(long, env = "TOLLGATE_METERING_POLL_MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..))]
    pub metering_poll_ms: u64,
    /// Most log records the consumer reads per partition per batch.
    #[arg(long, env = "TOLLGATE_METERING_BATCH_RECORDS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub metering_batch_records: u64,
}

impl MeteringArgs {
    /// The consumer's settings.
    pub fn consumer_settings(&self) -> ConsumerSettings {
        ConsumerSettings {
            idle_poll: Duration::from_millis(self.metering_poll_ms),
            batch_records: usize::try_from(self.metering_batch_records).unwrap_or(1000),
            ..ConsumerSettings::default()
        }
    }
}
