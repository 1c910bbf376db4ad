//! Spool routing: a batch goes to the log, or to the durable spool when the log does not
//! take it within [`DIRECT_DEADLINE`], and every later batch follows it there while the
//! spool holds records, so the log receives events in order. While neither takes a batch,
//! new calls are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use store::{EventAppender, LogRecord, Spool};

use super::append::{append_until_durable, append_within};
use super::backoff::{MAX_BACKOFF, with_jitter};
use super::metrics::EmitterStats;

/// How long a batch is retried against the log before it goes to the spool.
pub const DIRECT_DEADLINE: Duration = Duration::from_secs(2);

/// A spool for the emitter, and when to call it backed up.
#[derive(Clone)]
pub struct SpoolSetup {
    pub spool: Arc<dyn Spool>,
    /// Spools left by stopped proxies, drained before this one's own records.
    pub orphans: Vec<Arc<dyn Spool>>,
    /// Above this many bytes held, new calls are refused.
    pub limit_bytes: u64,
    /// For messages: where the spool lives.
    pub location: String,
}

impl std::fmt::Debug for SpoolSetup {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SpoolSetup")
            .field("location", &self.location)
            .field("limit_bytes", &self.limit_bytes)
            .finish()
    }
}

/// Whether new calls must be refused because metering is backed up.
#[derive(Debug, Default)]
pub(super) struct Backpressure {
    pub(super) spool_failing: AtomicBool,
}

/// Where the writer sends a batch: the log, or the spool when the log does not take it in
/// time; shared with the rest of the emitter.
pub(super) struct SpoolRoute {
    pub(super) stats: Arc<EmitterStats>,
    /// How frames write events.
    pub(super) format: schemas::usage_frame::EventFormat,
    pub(super) spool: Option<Arc<dyn Spool>>,
    pub(super) backpressure: Arc<Backpressure>,
    /// Wakes the drainer once records are spooled.
    pub(super) wake: Arc<tokio::sync::Notify>,
}

impl SpoolRoute {
    /// Makes a batch durable: in the log, or in the spool when the log does not take it in
    /// time (and always in the spool while it holds older records, to keep the order).
    pub(super) async fn deliver(&self, log: &dyn EventAppender, records: Vec<LogRecord>) {
        let Some(spool) = &self.spool else {
            append_until_durable(log, records, &self.stats).await;
            return;
        };
        let leftover = if spool.level().records > 0 {
            records
        } else {
            append_within(log, records, DIRECT_DEADLINE, &self.stats).await
        };
        if leftover.is_empty() {
            return;
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            match spool.push(&leftover).await {
                Ok(()) => {
                    self.backpressure
                        .spool_failing
                        .store(false, Ordering::Relaxed);
                    self.stats
                        .spooled
                        .fetch_add(leftover.len() as u64, Ordering::Relaxed);
                    self.wake.notify_one();
                    return;
                }
                Err(error) => {
                    self.backpressure
                        .spool_failing
                        .store(true, Ordering::Relaxed);
                    tracing::error!(error = %error, records = leftover.len(), "usage events can reach neither the log nor the spool; new calls are refused until one works");
                    tokio::time::sleep(with_jitter(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
