//! The operator CLI: parses arguments (`args`), calls one `control` use case per command
//! (`commands`), and renders its result (`output`, the only module that prints). `serve`
//! runs the proxy and the metering consumer together on the embedded default.

pub mod args;
pub mod commands;
pub mod exit;
pub mod logging;
pub mod operator_args;
pub mod output;

use anyhow::Context;

/// Runs one parsed command to completion.
pub fn run(cli: args::Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(commands::dispatch(cli))
}
