//! `simulate`: runs the scale simulation and prints its report (`bench/simulate.sh`).

use std::io::Write;

use clap::Parser;
use simulator::{SimulationConfig, simulate};

/// Simulates the metering path at scale and prints what it costs.
#[derive(Debug, Parser)]
struct Arguments {
    #[command(flatten)]
    config: SimulationConfig,
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let figures = simulate(&arguments.config)?;
    std::io::stdout().write_all(figures.report().as_bytes())?;
    Ok(())
}
