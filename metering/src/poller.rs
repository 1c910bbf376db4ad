//! What the standalone poller (`tollgate-metering`) runs: open the backend, start the alert
//! engine and the metrics endpoint, then tail the event log from its checkpoints until
//! SIGTERM or Ctrl-C.

use clap::Args;
use store::backend::BackendArgs;
use telemetry::metrics::MetricsArgs;
use telemetry::process::{announce, shutdown_signal};

use crate::MeteringConsumer;
use crate::settings::MeteringArgs;

/// Why the poller could not start; each message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum PollerStartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot serve metrics on {listen}: {source}; choose another --metrics-listen")]
    Metrics {
        listen: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The poller's flags (and their `TOLLGATE_*` variables).
#[derive(Debug, Clone, Args)]
pub struct PollerArguments {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub metering: MeteringArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Runs the poller until a shutdown signal; returns once the consumer has stopped. An
/// error means it could not start, and names the setting to fix.
pub async fn run_poller(arguments: PollerArguments) -> Result<(), PollerStartError> {
    let settings = arguments.backend.settings()?;
    let ports = settings.open().await?;
    let shutdown = shutdown_signal();
    announce(&format!("metering {}", ports.description));
    let alerts = arguments.metering.alerts.engine(&ports, &settings).await?;
    if let Some(engine) = &alerts {
        announce(&format!("alerts to {}", engine.destinations().join(", ")));
    }
    let consumer =
        MeteringConsumer::from_ports(&ports, arguments.metering.consumer_settings(), alerts);
    if let Some(listen) = arguments.metrics.metrics_listen {
        let (address, _task) = telemetry::metrics::serve_metrics(listen, consumer.sample_source())
            .await
            .map_err(|source| PollerStartError::Metrics { listen, source })?;
        announce(&format!("metrics on http://{address}/metrics"));
    }
    consumer.run_until(shutdown).await;
    Ok(())
}
