//! The standalone proxy server: `tollgate serve` without the metering consumer, for running
//! the consumer (`tollgate-metering`) as a separate process, on either backend. It serves
//! the admin API and the console (`/admin/…`) on the same listener, as `serve` does.

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use proxy::standalone::{ServerArguments, run_server};
use telemetry::process::{init_logging, report_fatal};
use tollgate_cli::args::AdminCredentialArgs;
use tollgate_cli::commands::{OperatorSettings, operator_routes};

/// Tollgate's proxy alone, with the operator's routes.
#[derive(Debug, Parser)]
#[command(name = "tollgate-proxy", version)]
struct Arguments {
    #[command(flatten)]
    server: ServerArguments,
    #[command(flatten)]
    admin: AdminCredentialArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging("warn,proxy=info");
    telemetry::process::small_pages_only();
    let arguments = Arguments::parse();
    let operator = match OperatorSettings::from_args(&arguments.admin) {
        Ok(operator) => operator,
        Err(error) => {
            tollgate_cli::output::print_error(&error);
            return std::process::ExitCode::FAILURE;
        }
    };
    let routes = |ports: &store::backend::Ports| Some(operator_routes(ports.clone(), &operator));
    if let Err(error) = run_server(arguments.server, routes).await {
        report_fatal(&error);
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
