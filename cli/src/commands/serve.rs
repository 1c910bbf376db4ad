//! `tollgate serve`: the proxy and the metering consumer in one process, on either backend.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use metering::MeteringConsumer;
use metering::log_retention::run_log_retention_until;
use proxy::server::{ProxyPorts, RunningProxy, shutdown_signal, start_proxy_with};

use super::operator;
use serde::Serialize;
use store::backend::{BackendSettings, Ports};
use tokio::task::JoinHandle;

use crate::args::ServeArgs;
use crate::output::{print_json, print_lines};

#[derive(Serialize)]
struct Listening {
    listening: String,
    upstream: &'static str,
    backend: String,
}

/// `tollgate serve`.
pub async fn serve(
    ports: Ports,
    settings: &BackendSettings,
    args: ServeArgs,
    data_dir: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    // Alert destinations are checked before anything listens.
    let alerts = args.metering.alerts.engine(&ports, settings).await?;
    let alert_destinations = alerts.as_ref().map(|engine| engine.destinations());
    let config = args.proxy.proxy_config(Some(data_dir));
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let proxy_ports = ProxyPorts::from_backend(&ports, args.proxy.model_runtime().await?);
    let operator = operator::OperatorSettings::from_args(&args.admin)?;
    let admin = operator::admin_router(ports.clone(), &operator);
    let proxy = start_proxy_with(config, proxy_ports, Some(admin)).await?;
    let shutdown = shutdown_signal();

    let consumer = MeteringConsumer::from_ports(&ports, args.metering.consumer_settings(), alerts);
    let metrics = match args.metrics.metrics_listen {
        Some(listen) => Some(serve_combined_metrics(listen, &proxy, &consumer).await?),
        None => None,
    };
    let (stop_metering, metering_stopped) = tokio::sync::oneshot::channel::<()>();
    let metering = tokio::spawn(async move {
        consumer
            .run_until(async {
                let _ = metering_stopped.await;
            })
            .await;
    });
    // The embedded log's retention, next to the consumer (nothing to do on AWS).
    let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
    let retention = args.log_retention.settings().map(|settings| {
        tokio::spawn(run_log_retention_until(ports.clone(), settings, async {
            let _ = retention_stopped.await;
        }))
    });

    let listening = Listening {
        listening: format!("{scheme}://{}", proxy.local_addr),
        upstream: args.proxy.upstream.as_str(),
        backend: ports.description.clone(),
    };
    announce(
        &listening,
        metrics.as_ref().map(|(address, _)| *address),
        alert_destinations.as_deref(),
        json,
    )?;

    proxy.run_until(shutdown).await;
    let _ = stop_metering.send(());
    let _ = stop_retention.send(());
    metering.await.context("the metering task failed")?;
    if let Some(retention) = retention {
        retention.await.context("the log retention task failed")?;
    }
    if let Some((_, task)) = metrics {
        task.abort();
    }
    Ok(())
}

/// One `/metrics` endpoint for the proxy's, the consumer's and the AWS meter's samples.
async fn serve_combined_metrics(
    listen: SocketAddr,
    proxy: &RunningProxy,
    consumer: &MeteringConsumer,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let (proxy_source, consumer_source) = (proxy.sample_source(), consumer.sample_source());
    let source: telemetry::metrics::SampleSource = Arc::new(move || {
        let mut samples = proxy_source();
        samples.extend(consumer_source());
        // AWS requests and billable units (empty on the embedded backend).
        samples.extend(store::aws::meter::process_meter().samples());
        samples
    });
    telemetry::metrics::serve_metrics(listen, source)
        .await
        .with_context(|| {
            format!("cannot serve metrics on {listen}; choose another --metrics-listen")
        })
}

/// Prints where `serve` listens and what it runs: one JSON object, or lines for a person.
fn announce(
    listening: &Listening,
    metrics: Option<SocketAddr>,
    alert_destinations: Option<&[String]>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        return print_json(listening);
    }
    print_lines(&[
        format!("listening on {}", listening.listening),
        format!(
            "upstream: {}, backend: {}",
            listening.upstream, listening.backend
        ),
        "stop with Ctrl-C; pending usage is flushed and metered before exit".into(),
    ]);
    print_lines(&[format!(
        "admin API at {0}/admin/api/v1/, operator console at {0}/admin/ (an admin credential: `tollgate admin-token --name NAME`)",
        listening.listening
    )]);
    if let Some(address) = metrics {
        print_lines(&[format!("metrics on http://{address}/metrics")]);
    }
    if let Some(destinations) = alert_destinations {
        print_lines(&[format!("alerts to {}", destinations.join(", "))]);
    }
    Ok(())
}
