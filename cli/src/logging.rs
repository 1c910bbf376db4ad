//! Logging setup: `tracing` to stderr, level from `RUST_LOG` (default `info` for Tollgate's
//! crates), JSON when `TOLLGATE_LOG_FORMAT=json`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbose` raises the default level to debug.
pub fn init(verbose: bool) {
    let default_level = if verbose {
        "debug"
    } else {
        "warn,proxy=info,metering=info,tollgate_cli=info"
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let json = std::env::var("TOLLGATE_LOG_FORMAT").is_ok_and(|format| format == "json");
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
