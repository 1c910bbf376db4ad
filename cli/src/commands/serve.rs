//! `tollgate serve`: the proxy and the metering consumer in one process, on the embedded store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metering::{ConsumerSettings, MeteringConsumer};
use proxy::config::{ProxyConfig, TlsFiles};
use proxy::server::{ProxyPorts, start_proxy};
use serde::Serialize;
use store::ModelRuntime;
use store::bedrock::{BedrockRuntime, BedrockSettings};
use store::objects::local_object_store;
use store::simulated::SimulatedRuntime;

use crate::args::{ServeArgs, Upstream};
use crate::output::{print_json, print_lines};
use crate::paths::StorePaths;

#[derive(Serialize)]
struct Listening {
    listening: String,
    upstream: &'static str,
    database: String,
    data_dir: String,
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// `tollgate serve`.
pub async fn serve(paths: StorePaths, args: ServeArgs, json: bool) -> anyhow::Result<()> {
    let store = super::open_store(&paths)?;
    let objects = local_object_store(&paths.data_dir)
        .with_context(|| format!("cannot use the data directory {}", paths.data_dir.display()))?;
    let runtime: Arc<dyn ModelRuntime> = match args.upstream {
        Upstream::Simulated => Arc::new(SimulatedRuntime),
        Upstream::Bedrock => Arc::new(
            BedrockRuntime::connect(&BedrockSettings {
                region: args.bedrock_region.clone(),
                endpoint_url: args.bedrock_endpoint_url.clone(),
                timeout: Duration::from_secs(args.upstream_timeout_secs.max(1)),
            })
            .await,
        ),
    };
    let config = ProxyConfig {
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(certificate_chain), Some(private_key)) => Some(TlsFiles {
                certificate_chain: certificate_chain.clone(),
                private_key: private_key.clone(),
            }),
            _ => None,
        },
        ..ProxyConfig::default()
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let ports = ProxyPorts {
        registry: store.clone(),
        counters: store.clone(),
        event_log: store.clone(),
        runtime,
    };
    let proxy = start_proxy(config, ports).await?;

    let consumer = MeteringConsumer::new(
        store.clone(),
        store.clone(),
        objects,
        ConsumerSettings {
            idle_poll: Duration::from_millis(args.metering_poll_ms.max(10)),
            ..ConsumerSettings::default()
        },
    );
    let (stop_metering, metering_stopped) = tokio::sync::oneshot::channel::<()>();
    let metering = tokio::spawn(async move {
        consumer
            .run_until(async {
                let _ = metering_stopped.await;
            })
            .await;
    });

    let listening = Listening {
        listening: format!("{scheme}://{}", proxy.local_addr),
        upstream: match args.upstream {
            Upstream::Bedrock => "bedrock",
            Upstream::Simulated => "simulated",
        },
        database: paths.database.display().to_string(),
        data_dir: paths.data_dir.display().to_string(),
    };
    if json {
        print_json(&listening)?;
    } else {
        print_lines(&[
            format!("listening on {}", listening.listening),
            format!(
                "upstream: {}, database: {}, data: {}",
                listening.upstream, listening.database, listening.data_dir
            ),
            "stop with Ctrl-C; pending usage is flushed and metered before exit".into(),
        ]);
    }

    proxy.run_until(shutdown_signal()).await;
    let _ = stop_metering.send(());
    metering.await.context("the metering task failed")?;
    Ok(())
}
