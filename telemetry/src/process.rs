//! What every binary does the same way: logging setup, the shutdown signal, the one line
//! announced on stdout, and fatal errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so call it before announcing that the process is up:
/// a SIGTERM that arrives right after the announcement is then handled, not fatal.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let interrupt = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        {
            match terminate {
                Ok(mut terminate) => {
                    tokio::select! {
                        _ = interrupt => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = interrupt.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = interrupt.await;
        }
    }
}

/// Turns transparent huge pages off for this process; every binary calls it at start.
///
/// mimalloc asks the kernel for huge pages on its arenas, and returns pages it no longer
/// uses a second later. Taking such a page back faults in and zeroes a whole 2 MiB huge
/// page, so under load the proxy spent 6.6% of its time in page faults, and a huge page
/// half used still counts 2 MiB of resident memory (BENCHMARKS.md, issue 18). With small
/// pages a fault zeroes 4 KiB. Where the kernel refuses, the process runs as before.
pub fn small_pages_only() {
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %error, "transparent huge pages stay as the kernel has them");
    }
}

/// Logs to stderr, filtered by `RUST_LOG`; JSON without timestamps on Lambda (CloudWatch
/// adds them), or when `TOLLGATE_LOG_FORMAT=json`.
pub fn init_logging(default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json =
        on_lambda || std::env::var("TOLLGATE_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if on_lambda {
        builder.json().without_time().try_init()
    } else if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The one line a long-running binary prints on stdout, for scripts and supervisors.
pub fn announce(line: &str) {
    println!("{line}");
}

/// Prints a fatal error and its causes on stderr.
pub fn report_fatal(error: &dyn std::fmt::Display) {
    eprintln!("error: {error:#}");
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The kernel reports the process's huge-page setting in `/proc/self/status`.
    fn huge_pages_enabled() -> Option<bool> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status
            .lines()
            .find(|line| line.starts_with("THP_enabled:"))?;
        Some(line.split_whitespace().nth(1)? == "1")
    }

    #[test]
    fn small_pages_only_turns_huge_pages_off_for_the_process() {
        super::small_pages_only();
        assert_eq!(nix::sys::prctl::get_thp_disable(), Ok(true));
        // Kernels before 5.0 do not print the line; where they do, it must say off.
        if let Some(enabled) = huge_pages_enabled() {
            assert!(!enabled, "THP_enabled is still 1 after small_pages_only");
        }
    }
}
