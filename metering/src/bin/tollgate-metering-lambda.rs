//! The metering Lambda: the Kinesis event source mapping delivers usage-event records; they
//! are applied to the counters, Parquet and the archive, and the records to retry are
//! returned as `batch_item_failures` (the mapping needs ReportBatchItemFailures).
//! Configuration comes from the same `TOLLGATE_*` environment variables as every binary,
//! including the alert rules and destinations (`TOLLGATE_ALERT_*`).

use clap::Parser;
use metering::lambda::{LambdaArguments, run_lambda};

/// Configuration, read from the environment.
#[derive(Debug, Parser)]
#[command(name = "tollgate-metering-lambda", version)]
struct Arguments {
    #[command(flatten)]
    lambda: LambdaArguments,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::process::init_logging("info");
    run_lambda(Arguments::parse().lambda).await
}
