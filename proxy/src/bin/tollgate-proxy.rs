//! The standalone proxy server: `tollgate serve` without the metering consumer, for running
//! the consumer (`tollgate-metering`) as a separate process, on either backend.

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use proxy::standalone::{ServerArguments, run_server};
use telemetry::process::{init_logging, report_fatal};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging("warn,proxy=info");
    if let Err(error) = run_server(ServerArguments::parse()).await {
        report_fatal(&error);
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
