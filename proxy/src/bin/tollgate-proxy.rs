//! The standalone proxy server on the embedded store: `tollgate serve` without the
//! metering consumer, for running the consumer as a separate process.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use proxy::server::{ProxyPorts, shutdown_signal, start_proxy};
use proxy::settings::ProxyArgs;
use store::embedded::EmbeddedStore;

/// Tollgate's proxy alone: authenticate, admit, forward, emit usage events.
#[derive(Debug, Parser)]
#[command(name = "tollgate-proxy", version)]
struct Arguments {
    /// SQLite database shared with the other Tollgate processes.
    #[arg(long, env = "TOLLGATE_DB", default_value = "tollgate-data/tollgate.db")]
    db: PathBuf,
    #[command(flatten)]
    proxy: ProxyArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let arguments = Arguments::parse();
    let store = Arc::new(
        EmbeddedStore::open(&arguments.db)
            .with_context(|| format!("cannot open {}", arguments.db.display()))?,
    );
    let ports = ProxyPorts {
        registry: store.clone(),
        counters: store.clone(),
        event_log: store,
        runtime: arguments.proxy.model_runtime().await,
    };
    let running = start_proxy(arguments.proxy.proxy_config(), ports).await?;
    running.run_until(shutdown_signal()).await;
    Ok(())
}
