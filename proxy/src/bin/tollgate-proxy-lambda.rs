//! The proxy Lambda: the same axum router as the server, behind API Gateway (REST stage
//! `prod`) through `lambda_http`, with Lambda response streaming: API Gateway invokes it with
//! `InvokeWithResponseStream` (the integration's `ResponseTransferMode: STREAM`), so a
//! Bedrock stream reaches the client as it is produced, and answers are not capped at
//! 10 MB or 29 s. Each response ends only after its usage event is durable in Kinesis,
//! since Lambda may freeze the process right after.
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
    lambda_http::run_with_streaming_response(build_router(state)).await
}
