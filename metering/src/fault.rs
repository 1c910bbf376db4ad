//! Crash points for the fault tests: the places where a crash of the consumer matters to
//! exactly-once (between reading a batch and counting it, between counting it and writing
//! its Parquet). Built only with the `fault-injection` feature, which only the `tests`
//! crate enables: there the process aborts, as a crash would, at the point named by
//! `TOLLGATE_FAULT`. Without the feature a crash point is an empty inline function, so
//! production code never reads that variable.

/// Aborts the process here when the fault tests ask for `point`.
#[cfg(feature = "fault-injection")]
pub(crate) fn crash_point(point: &str) {
    if std::env::var("TOLLGATE_FAULT").is_ok_and(|fault| fault == point) {
        tracing::error!(point, "fault injection: aborting the process here");
        std::process::abort();
    }
}

/// Without the `fault-injection` feature: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn crash_point(_point: &str) {}
