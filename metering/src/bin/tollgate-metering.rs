//! The standalone metering poller: tails the event log (Kinesis or embedded) from its
//! checkpoints and applies it to the counters, Parquet and the archive, until SIGTERM.

use clap::Parser;
use metering::MeteringConsumer;
use metering::settings::MeteringArgs;
use store::backend::BackendArgs;
use store::signals::shutdown_signal;

/// Tollgate's metering consumer as a long-running process.
#[derive(Debug, Parser)]
#[command(name = "tollgate-metering", version)]
struct Arguments {
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    metering: MeteringArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Arguments::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(arguments: Arguments) -> anyhow::Result<()> {
    let ports = arguments.backend.settings()?.open().await?;
    announce(&format!("metering {}", ports.description));
    let consumer = MeteringConsumer::from_ports(&ports, arguments.metering.consumer_settings());
    consumer.run_until(shutdown_signal()).await;
    Ok(())
}

/// Prints a fatal error and its causes on stderr.
#[allow(clippy::print_stderr)]
fn report(error: &anyhow::Error) {
    eprintln!("error: {error:#}");
}

/// The one line this binary prints on stdout, for scripts and supervisors.
#[allow(clippy::print_stdout)]
fn announce(line: &str) {
    println!("{line}");
}
