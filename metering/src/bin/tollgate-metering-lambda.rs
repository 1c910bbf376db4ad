//! The metering Lambda: the Kinesis event source mapping delivers usage-event records; they
//! are applied to the counters, Parquet and the archive, and the records to retry are
//! returned as `batch_item_failures` (the mapping needs ReportBatchItemFailures).
//! Configuration comes from the same `TOLLGATE_*` environment variables as every binary,
//! including the alert rules and destinations (`TOLLGATE_ALERT_*`).

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    telemetry::process::small_pages_only();
    run_lambda(Arguments::parse().lambda).await
}
