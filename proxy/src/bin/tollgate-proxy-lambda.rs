//! The proxy Lambda: the same axum router as the server, behind API Gateway (REST stage
//! `prod`, or an HTTP API) through `lambda_http`. Each response is sent only after its
//! usage event is durable in Kinesis, since Lambda may freeze the process right after.
//! Configuration comes from the same `TOLLGATE_*` environment variables as every binary.

use clap::Parser;
use proxy::build_router;
use proxy::config::ProxyConfig;
use proxy::server::{ProxyPorts, build_state};
use proxy::settings::ProxyArgs;
use store::backend::BackendArgs;

/// Configuration, read from the environment.
#[derive(Debug, Parser)]
#[command(name = "tollgate-proxy-lambda", version)]
struct Arguments {
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    proxy: ProxyArgs,
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    store::process::init_logging("info");
    let arguments = Arguments::parse();
    let ports = arguments.backend.settings()?.open().await?;
    let config = ProxyConfig {
        durable_events: true,
        tls: None,
        // Lambda answers only once each event is in the log; its disk does not outlive it.
        spool: None,
        ..arguments.proxy.proxy_config(None)
    };
    let proxy_ports = ProxyPorts {
        registry: ports.registry,
        counters: ports.counters,
        quotas: ports.quotas,
        event_log: ports.event_log,
        runtime: arguments.proxy.model_runtime().await?,
    };
    let (state, _emitter) = build_state(config, proxy_ports)?;
    lambda_http::run(build_router(state)).await
}
