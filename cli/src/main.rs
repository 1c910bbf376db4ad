//! The `tollgate` binary: parse arguments, run the command, report errors.

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let arguments = tollgate_cli::args::Cli::parse();
    tollgate_cli::logging::init(arguments.verbose);
    telemetry::process::small_pages_only();
    match tollgate_cli::run(arguments) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tollgate_cli::output::print_error(&error);
            std::process::ExitCode::from(tollgate_cli::exit::exit_code(&error))
        }
    }
}
