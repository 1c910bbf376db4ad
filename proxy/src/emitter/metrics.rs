//! What the emitter counts, and the metrics it exposes.

use std::sync::atomic::{AtomicU64, Ordering};

use store::Spool;
use telemetry::metrics::Sample;

/// Counts of what the emitter did, for logs and tests.
#[derive(Debug, Default)]
pub struct EmitterStats {
    pub appended: AtomicU64,
    pub append_retries: AtomicU64,
    pub encode_failures: AtomicU64,
    /// Records pushed to the spool.
    pub spooled: AtomicU64,
    /// Records the drainer moved from a spool to the log.
    pub drained: AtomicU64,
    /// Appends of durable events made on the callers' threads (group commits).
    pub group_commits: AtomicU64,
    /// Durable events handed to the writer because the log could not take them at once.
    pub group_handoffs: AtomicU64,
}

/// The emitter's metrics: events appended, retried, spooled and drained, and the spool's
/// level.
pub fn emitter_samples(stats: &EmitterStats, spool: Option<&dyn Spool>) -> Vec<Sample> {
    let counter = |name, help, value: &AtomicU64| Sample {
        name,
        help,
        counter: true,
        value: value.load(Ordering::Relaxed) as f64,
    };
    let level = spool.map(Spool::level).unwrap_or_default();
    vec![
        counter(
            "tollgate_proxy_events_appended_total",
            "Usage events the event log accepted.",
            &stats.appended,
        ),
        counter(
            "tollgate_proxy_append_retries_total",
            "Appends of usage events retried.",
            &stats.append_retries,
        ),
        counter(
            "tollgate_proxy_events_spooled_total",
            "Usage events written to the spool because the log did not take them in time.",
            &stats.spooled,
        ),
        counter(
            "tollgate_proxy_events_drained_total",
            "Spooled usage events sent on to the log.",
            &stats.drained,
        ),
        counter(
            "tollgate_proxy_group_commits_total",
            "Appends of durable usage events made by the calls waiting for them.",
            &stats.group_commits,
        ),
        counter(
            "tollgate_proxy_group_commit_handoffs_total",
            "Durable usage events handed to the writer because the log could not take them at once.",
            &stats.group_handoffs,
        ),
        counter(
            "tollgate_proxy_event_encode_failures_total",
            "Usage events that could not be encoded.",
            &stats.encode_failures,
        ),
        Sample {
            name: "tollgate_proxy_spool_records",
            help: "Usage events waiting in the spool.",
            counter: false,
            value: level.records as f64,
        },
        Sample {
            name: "tollgate_proxy_spool_bytes",
            help: "Bytes waiting in the spool.",
            counter: false,
            value: level.bytes as f64,
        },
    ]
}
