//! The spool drainer: moves spooled records to the log, oldest first, and removes them
//! once the log has them; spools left by stopped proxies first. Records come to the spool
//! when the log does not take them in time, and, on servers, every durable event first
//! (the group commit's journal).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use store::{EventAppender, Spool};
use tokio::task::JoinHandle;

use super::append::append_within;
use super::backoff::{MAX_BACKOFF, with_jitter};
use super::metrics::EmitterStats;
use super::pending::coalesce_frames;
use super::spool_route::{DIRECT_DEADLINE, SpoolSetup};
use super::writer::{BATCH_LINGER, MAX_BATCH_RECORDS};

/// The drainer task and how to wake or stop it.
pub(super) struct Drainer {
    pub(super) task: JoinHandle<()>,
    pub(super) stop: Arc<tokio::sync::Notify>,
    pub(super) wake: Arc<tokio::sync::Notify>,
    pub(super) setup: SpoolSetup,
}

/// Moves spooled records to the log, oldest first: the orphaned spools, then this
/// process's own. Stops when told to (what is left stays on disk).
pub(super) async fn drain_spools(
    log: Arc<dyn EventAppender>,
    setup: SpoolSetup,
    stats: Arc<EmitterStats>,
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
) {
    let spools: Vec<Arc<dyn Spool>> = setup
        .orphans
        .iter()
        .cloned()
        .chain(std::iter::once(Arc::clone(&setup.spool)))
        .collect();
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut moved_any = false;
        let mut moved_full_batch = false;
        let mut failed = false;
        for spool in &spools {
            if spool.level().records == 0 {
                continue;
            }
            let records = match spool.peek(MAX_BATCH_RECORDS).await {
                Ok(records) => records,
                Err(error) => {
                    tracing::error!(error = %error, "cannot read the spool; retrying");
                    failed = true;
                    continue;
                }
            };
            let count = records.len();
            // The journal holds a frame per group commit: the log gets them merged.
            let records = coalesce_frames(records);
            let leftover = append_within(log.as_ref(), records, DIRECT_DEADLINE, &stats).await;
            if !leftover.is_empty() {
                // Not all of them are in the log yet; the whole head is sent again later
                // (the ones that made it become duplicates, which consumers drop).
                failed = true;
                continue;
            }
            match spool.pop(count).await {
                Ok(()) => {
                    stats.drained.fetch_add(count as u64, Ordering::Relaxed);
                    moved_any = true;
                    moved_full_batch |= count >= MAX_BATCH_RECORDS;
                }
                Err(error) => {
                    tracing::error!(error = %error, "cannot remove delivered records from the spool; retrying");
                    failed = true;
                }
            }
        }
        if moved_any && !failed {
            backoff = Duration::from_millis(50);
            if moved_full_batch {
                continue;
            }
        }
        let pause = if failed {
            let pause = with_jitter(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
            pause
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = stop.notified() => return,
            // Durable events are written to the spool one call at a time: wait a moment
            // for more, so the log receives them in batches.
            _ = wake.notified() => tokio::time::sleep(BATCH_LINGER).await,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
