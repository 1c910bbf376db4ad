//! The standalone metering poller: tails the event log (Kinesis or embedded) from its
//! checkpoints and applies it to the counters, Parquet and the archive, until SIGTERM.

use clap::Parser;
use metering::MeteringConsumer;
use metering::settings::MeteringArgs;
use store::backend::BackendArgs;
use telemetry::process::{announce, init_logging, report_fatal, shutdown_signal};

/// Tollgate's metering consumer as a long-running process.
#[derive(Debug, Parser)]
#[command(name = "tollgate-metering", version)]
struct Arguments {
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    metering: MeteringArgs,
    #[command(flatten)]
    metrics: telemetry::metrics::MetricsArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging("warn,metering=info");
    let arguments = Arguments::parse();
    let opened = match arguments.backend.settings() {
        Ok(settings) => settings.open().await.map(|ports| (settings, ports)),
        Err(error) => Err(error),
    };
    let (settings, ports) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            report_fatal(&error);
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = shutdown_signal();
    announce(&format!("metering {}", ports.description));
    let alerts = match arguments.metering.alerts.engine(&ports, &settings).await {
        Ok(alerts) => alerts,
        Err(error) => {
            report_fatal(&error);
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(engine) = &alerts {
        announce(&format!("alerts to {}", engine.destinations().join(", ")));
    }
    let consumer =
        MeteringConsumer::from_ports(&ports, arguments.metering.consumer_settings(), alerts);
    if let Some(listen) = arguments.metrics.metrics_listen {
        match telemetry::metrics::serve_metrics(listen, consumer.sample_source()).await {
            Ok((address, _task)) => announce(&format!("metrics on http://{address}/metrics")),
            Err(error) => {
                report_fatal(&format!(
                    "cannot serve metrics on {listen}: {error}; choose another --metrics-listen"
                ));
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    consumer.run_until(shutdown).await;
    std::process::ExitCode::SUCCESS
}
