//! Usage-event emission off the request's critical path.
//!
//! Requests hand events to a bounded channel; one background task batches them (up to
//! [`MAX_BATCH_RECORDS`] or [`BATCH_LINGER`]) and appends them to the event log. Only the
//! records the log reports as failed are retried, with capped exponential backoff, in
//! order. On shutdown the task drains the channel and flushes what is pending before it
//! returns. When the channel is full, requests wait: events are never dropped.
//!
//! With a spool (server mode), records the log has not taken within [`DIRECT_DEADLINE`]
//! (it refused them, or timed out) are pushed to the durable spool instead, and every
//! later batch follows them there until the spool is empty again, so the log receives
//! events in order. A drainer task appends the spool's records to the log, oldest first,
//! in batches ([`DRAIN_LINGER`]), and removes them once the log has them. Spools left by
//! a stopped proxy are drained too. While the spool holds more than its limit,
//! [`EmitterHandle::is_backed_up`] is true and the proxy refuses new calls with 503
//! rather than serve them unmetered.

mod append;
mod backoff;
mod drainer;
mod group_commit;
mod handle;
mod metrics;
mod pending;
mod spool_route;
mod writer;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use schemas::usage_frame::EventFormat;
use store::EventAppender;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use append::{APPEND_TIMEOUT, append_until_durable, append_within};
pub use backoff::{MAX_BACKOFF, with_jitter};
pub use drainer::DRAIN_LINGER;
pub use group_commit::MAX_LEADER_ROUNDS;
pub use handle::{ClosingWrite, Durability, EmitterHandle};
pub use metrics::{EmitterStats, emitter_samples};
pub use spool_route::{DIRECT_DEADLINE, SpoolSetup};
pub use writer::{BATCH_LINGER, MAX_BATCH_RECORDS};

use drainer::Drainer;
use group_commit::GroupCommit;
use spool_route::{Backpressure, SpoolRoute};
use writer::write_events;

/// Events buffered between requests and the log writer.
pub const CHANNEL_CAPACITY: usize = 10_000;

/// The background writer. Dropping every handle and awaiting [`EventEmitter::finish`]
/// flushes all pending events.
pub struct EventEmitter {
    task: JoinHandle<()>,
    close: oneshot::Sender<()>,
    drainer: Option<Drainer>,
    pub stats: Arc<EmitterStats>,
}

impl std::fmt::Debug for EventEmitter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EventEmitter")
    }
}

impl EventEmitter {
    /// Starts the writer task over `log`, queueing events. `instance` names this proxy
    /// process.
    pub fn start(log: Arc<dyn EventAppender>, instance: String) -> (Self, EmitterHandle) {
        Self::start_with(
            log,
            instance,
            Durability::Queued,
            None,
            EventFormat::default(),
        )
    }

    /// Starts the writer task, and with a spool its drainer; frames write events in
    /// `format`.
    pub fn start_with(
        log: Arc<dyn EventAppender>,
        instance: String,
        durability: Durability,
        spool: Option<SpoolSetup>,
        format: EventFormat,
    ) -> (Self, EmitterHandle) {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let (close_sender, close_receiver) = oneshot::channel();
        let stats = Arc::new(EmitterStats::default());
        let backpressure = Arc::new(Backpressure::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let drainer = spool.clone().map(|setup| {
            Drainer::start(
                Arc::clone(&log),
                setup,
                Arc::clone(&stats),
                Arc::clone(&wake),
            )
        });
        let group = match durability {
            Durability::BeforeAnswer => GroupCommit::over(
                &log,
                spool.as_ref().map(|setup| (&setup.spool, &wake)),
                &stats,
                format,
            )
            .map(Arc::new),
            Durability::Queued => None,
        };
        let task = tokio::spawn(write_events(
            log,
            receiver,
            close_receiver,
            SpoolRoute {
                stats: Arc::clone(&stats),
                format,
                spool: spool.as_ref().map(|setup| Arc::clone(&setup.spool)),
                backpressure: Arc::clone(&backpressure),
                wake,
            },
        ));
        let handle = EmitterHandle::new(
            sender,
            instance,
            durability,
            spool.map(|setup| (setup.spool, setup.limit_bytes)),
            backpressure,
            group,
        );
        (
            Self {
                task,
                close: close_sender,
                drainer,
                stats,
            },
            handle,
        )
    }

    /// Flushes and stops. Waits up to `wait_for_handles` for every handle to be dropped
    /// (in-flight requests emitting their events); then refuses new events, writes every
    /// queued one to the log, and returns.
    pub async fn finish(self, wait_for_handles: Duration) {
        let Self {
            mut task,
            close,
            drainer,
            stats,
        } = self;
        if tokio::time::timeout(wait_for_handles, &mut task)
            .await
            .is_err()
        {
            tracing::warn!(
                "usage event handles still held at shutdown; closing the queue and flushing"
            );
            let _ = close.send(());
            if let Err(error) = task.await {
                tracing::error!(error = %error, "usage event writer task failed");
            }
        }
        if let Some(drainer) = drainer {
            // Give the drainer the same time to empty the spool into the log.
            drainer.hurry();
            let deadline = tokio::time::Instant::now() + wait_for_handles;
            while drainer.setup.spool.level().records > 0 && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drainer.stop.notify_one();
            if let Err(error) = drainer.task.await {
                tracing::error!(error = %error, "spool drainer task failed");
            }
            let left = drainer.setup.spool.level();
            if left.records > 0 {
                tracing::warn!(
                    records = left.records,
                    spool = %drainer.setup.location,
                    "usage events remain in the spool; a proxy started with this spool directory sends them"
                );
            }
        }
        tracing::info!(
            appended = stats.appended.load(Ordering::Relaxed),
            retries = stats.append_retries.load(Ordering::Relaxed),
            spooled = stats.spooled.load(Ordering::Relaxed),
            drained = stats.drained.load(Ordering::Relaxed),
            "usage event writer flushed"
        );
    }
}
