//! The standalone metering poller: tails the event log (Kinesis or embedded) from its
//! checkpoints and applies it to the counters, Parquet and the archive, until SIGTERM.

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use metering::poller::{PollerArguments, run_poller};
use telemetry::process::{init_logging, report_fatal};

/// Tollgate's metering consumer as a long-running process.
#[derive(Debug, Parser)]
#[command(name = "tollgate-metering", version)]
struct Arguments {
    #[command(flatten)]
    poller: PollerArguments,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging("warn,metering=info");
    telemetry::process::small_pages_only();
    if let Err(error) = run_poller(Arguments::parse().poller).await {
        report_fatal(&error);
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
