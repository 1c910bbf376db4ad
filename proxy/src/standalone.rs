//! The standalone proxy server (`tollgate-proxy`): `tollgate serve` without the metering
//! consumer, for running the consumer (`tollgate-metering`) as a separate process, on
//! either backend. The binary parses [`ServerArguments`] and calls [`run_server`].

use clap::Parser;
use store::backend::{BackendArgs, Ports};
use telemetry::process::announce;

use crate::server::{ProxyPorts, StartError, shutdown_signal, start_proxy_with};
use crate::settings::ProxyArgs;
use crate::upstream::bedrock::BedrockSetupError;

/// Why the standalone proxy could not start; each message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Upstream(#[from] BedrockSetupError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot serve metrics on {listen}: {source}; choose another --metrics-listen")]
    Metrics {
        listen: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Tollgate's proxy alone: authenticate, admit, forward, emit usage events.
#[derive(Debug, Parser)]
#[command(name = "tollgate-proxy", version)]
pub struct ServerArguments {
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    proxy: ProxyArgs,
    #[command(flatten)]
    metrics: telemetry::metrics::MetricsArgs,
}

/// Runs the standalone proxy until SIGTERM or Ctrl-C: opens the backend, assembles the
/// proxy's ports, listens (with `extra_routes`, given the backend's ports: the operator's
/// routes, which live outside this crate), and serves metrics when asked.
pub async fn run_server(
    arguments: ServerArguments,
    extra_routes: impl FnOnce(&Ports) -> Option<axum::Router>,
) -> Result<(), ServerError> {
    let ports = arguments.backend.settings()?.open().await?;
    let extra = extra_routes(&ports);
    let proxy_ports = ProxyPorts::from_backend(&ports, arguments.proxy.model_runtime().await?);
    let config = arguments
        .proxy
        .proxy_config(Some(&arguments.backend.data_dir));
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let running = start_proxy_with(config, proxy_ports, extra).await?;
    let shutdown = shutdown_signal();
    announce(&format!("listening on {scheme}://{}", running.local_addr));
    if let Some(listen) = arguments.metrics.metrics_listen {
        let (address, _task) = telemetry::metrics::serve_metrics(listen, running.sample_source())
            .await
            .map_err(|source| ServerError::Metrics { listen, source })?;
        announce(&format!("metrics on http://{address}/metrics"));
    }
    running.run_until(shutdown).await;
    Ok(())
}
