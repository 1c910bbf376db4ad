//! `tollgate serve`: the proxy and the metering consumer in one process, on the embedded store.

use anyhow::Context;
use metering::MeteringConsumer;
use proxy::server::{ProxyPorts, shutdown_signal, start_proxy};
use serde::Serialize;
use store::objects::local_object_store;

use crate::args::ServeArgs;
use crate::output::{print_json, print_lines};
use crate::paths::StorePaths;

#[derive(Serialize)]
struct Listening {
    listening: String,
    upstream: &'static str,
    database: String,
    data_dir: String,
}

/// `tollgate serve`.
pub async fn serve(paths: StorePaths, args: ServeArgs, json: bool) -> anyhow::Result<()> {
    let store = super::open_store(&paths)?;
    let objects = local_object_store(&paths.data_dir)
        .with_context(|| format!("cannot use the data directory {}", paths.data_dir.display()))?;
    let config = args.proxy.proxy_config();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let ports = ProxyPorts {
        registry: store.clone(),
        counters: store.clone(),
        event_log: store.clone(),
        runtime: args.proxy.model_runtime().await,
    };
    let proxy = start_proxy(config, ports).await?;

    let consumer = MeteringConsumer::new(
        store.clone(),
        store.clone(),
        objects,
        args.metering.consumer_settings(),
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
        upstream: args.proxy.upstream.as_str(),
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
