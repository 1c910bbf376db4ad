//! The `tollgate` binary: parse arguments, run the command, report errors.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let arguments = tollgate_cli::args::Cli::parse();
    tollgate_cli::logging::init(arguments.verbose);
    match tollgate_cli::run(arguments) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tollgate_cli::output::print_error(&error);
            std::process::ExitCode::from(tollgate_cli::exit::exit_code(&error))
        }
    }
}
