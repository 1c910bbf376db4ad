//! Logging setup for the CLI: `tracing` to stderr, level from `RUST_LOG` (default: warnings,
//! and Tollgate's own info while serving), JSON when `TOLLGATE_LOG_FORMAT=json`.

/// Installs the global subscriber. `verbose` raises the default level to debug.
pub fn init(verbose: bool) {
    let default_filter = if verbose {
        "debug"
    } else {
        "warn,proxy=info,metering=info,tollgate_cli=info"
    };
    telemetry::process::init_logging(default_filter);
}
