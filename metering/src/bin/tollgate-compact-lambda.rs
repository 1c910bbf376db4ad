//! The compaction Lambda, run daily at 01:00 UTC by EventBridge Scheduler: merges the Parquet
//! batch files of yesterday and of the day whose files have just settled (see
//! `metering::compact::scheduled_days`). An event `{"date": "YYYY-MM-DD"}` compacts that day
//! instead. Configuration comes from the same `TOLLGATE_*` environment variables as every
//! binary.

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use metering::compact_lambda::{CompactLambdaArguments, run_compact_lambda};

/// Configuration, read from the environment.
#[derive(Debug, Parser)]
#[command(name = "tollgate-compact-lambda", version)]
struct Arguments {
    #[command(flatten)]
    lambda: CompactLambdaArguments,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::process::init_logging("info");
    telemetry::process::small_pages_only();
    run_compact_lambda(Arguments::parse().lambda).await
}
