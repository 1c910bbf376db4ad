//! The standalone proxy server: `tollgate serve` without the metering consumer, for running
//! the consumer (`tollgate-metering`) as a separate process, on either backend.

use clap::Parser;
use proxy::server::{ProxyPorts, shutdown_signal, start_proxy};
use proxy::settings::ProxyArgs;
use store::backend::BackendArgs;
use telemetry::process::{announce, init_logging, report_fatal};

/// Tollgate's proxy alone: authenticate, admit, forward, emit usage events.
#[derive(Debug, Parser)]
#[command(name = "tollgate-proxy", version)]
struct Arguments {
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    proxy: ProxyArgs,
    #[command(flatten)]
    metrics: telemetry::metrics::MetricsArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging("warn,proxy=info");
    if let Err(error) = run(Arguments::parse()).await {
        report_fatal(&error);
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

async fn run(arguments: Arguments) -> anyhow::Result<()> {
    let ports = arguments.backend.settings()?.open().await?;
    let proxy_ports = ProxyPorts {
        registry: ports.registry,
        counters: ports.counters,
        quotas: ports.quotas,
        event_log: ports.event_log,
        runtime: arguments.proxy.model_runtime().await?,
    };
    let config = arguments
        .proxy
        .proxy_config(Some(&arguments.backend.data_dir));
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let running = start_proxy(config, proxy_ports).await?;
    let shutdown = shutdown_signal();
    announce(&format!("listening on {scheme}://{}", running.local_addr));
    if let Some(listen) = arguments.metrics.metrics_listen {
        let (address, _task) = telemetry::metrics::serve_metrics(listen, running.sample_source())
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot serve metrics on {listen}: {error}; choose another --metrics-listen"
                )
            })?;
        announce(&format!("metrics on http://{address}/metrics"));
    }
    running.run_until(shutdown).await;
    Ok(())
}
