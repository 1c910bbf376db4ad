//! The metering Lambda: the Kinesis event source mapping delivers usage-event records; they
//! are applied to the counters, Parquet and the archive, and the records to retry are
//! returned as `batch_item_failures` (the mapping needs ReportBatchItemFailures).
//! Configuration comes from the same `TOLLGATE_*` environment variables as every binary,
//! including the alert rules and destinations (`TOLLGATE_ALERT_*`).

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use clap::Parser;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use metering::BatchApplier;
use metering::lambda::handle_kinesis_event;
use metering::settings::AlertArgs;
use store::backend::BackendArgs;

/// Configuration, read from the environment.
#[derive(Debug, Parser)]
#[command(name = "tollgate-metering-lambda", version)]
struct Arguments {
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    alerts: AlertArgs,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::process::init_logging("info");
    let arguments = Arguments::parse();
    let settings = arguments.backend.settings()?;
    let ports = settings.open().await?;
    let alerts = arguments.alerts.engine(&ports, &settings).await?;
    let applier = Arc::new(BatchApplier::from_ports(&ports).with_alert_engine(alerts));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let applier = Arc::clone(&applier);
        async move {
            let (response, report) = handle_kinesis_event(&applier, event.payload).await;
            telemetry::process::announce(&metering::lambda::embedded_metrics(
                &report,
                response.batch_item_failures.len(),
                chrono::Utc::now().timestamp_millis(),
            ));
            Ok::<_, Error>(response)
        }
    }))
    .await
}
