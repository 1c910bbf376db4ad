//! Usage-event emission off the request's critical path.
//!
//! Requests hand events to a bounded channel; one background task batches them (up to
//! [`MAX_BATCH_RECORDS`] or [`BATCH_LINGER`]) and appends them to the event log. Only the
//! records the log reports as failed are retried, with capped exponential backoff, in
//! order. On shutdown the task drains the channel and flushes what is pending before it
//! returns. When the channel is full, requests wait: events are never dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use schemas::UsageEvent;
use store::{EventLog, LogRecord};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most records in one append (Kinesis PutRecords takes 500).
pub const MAX_BATCH_RECORDS: usize = 500;
/// Longest a received event waits for more to batch with.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);
/// Events buffered between requests and the log writer.
pub const CHANNEL_CAPACITY: usize = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Counts of what the emitter did, for logs and tests.
#[derive(Debug, Default)]
pub struct EmitterStats {
    pub appended: AtomicU64,
    pub append_retries: AtomicU64,
    pub encode_failures: AtomicU64,
}

/// The handle requests use to emit events.
#[derive(Clone)]
pub struct EmitterHandle {
    sender: mpsc::Sender<PendingEvent>,
    sequence: Arc<AtomicU64>,
    instance: Arc<str>,
}

impl std::fmt::Debug for EmitterHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmitterHandle")
            .field("instance", &self.instance)
            .finish()
    }
}

impl EmitterHandle {
    /// This proxy process's id, written into every event.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The next `instance_seq`, starting at 1.
    pub fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Queues an event for the log and returns at once. Waits only when the queue is full;
    /// fails (and logs) only after shutdown.
    pub async fn emit(&self, event: UsageEvent) {
        let event_id = event.event_id;
        let pending = PendingEvent {
            event,
            durable: None,
        };
        if self.sender.send(pending).await.is_err() {
            tracing::error!(%event_id, "usage event emitted after the emitter stopped; it was not logged");
        }
    }

    /// Queues an event and waits until it is durable in the log (batched with concurrent
    /// events, so the log sees one append per batch, not one per request).
    pub async fn emit_durable(&self, event: UsageEvent) {
        let event_id = event.event_id;
        let (acknowledge, acknowledged) = oneshot::channel();
        let pending = PendingEvent {
            event,
            durable: Some(acknowledge),
        };
        if self.sender.send(pending).await.is_err() || acknowledged.await.is_err() {
            tracing::error!(%event_id, "usage event emitted after the emitter stopped; it was not logged");
        }
    }
}

/// An event on its way to the log, with whom to tell once it is durable.
#[derive(Debug)]
struct PendingEvent {
    event: UsageEvent,
    durable: Option<oneshot::Sender<()>>,
}

/// The background writer. Dropping every handle and awaiting [`EventEmitter::finish`]
/// flushes all pending events.
pub struct EventEmitter {
    task: JoinHandle<()>,
    close: oneshot::Sender<()>,
    pub stats: Arc<EmitterStats>,
}

impl std::fmt::Debug for EventEmitter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EventEmitter")
    }
}

impl EventEmitter {
    /// Starts the writer task over `log`. `instance` names this proxy process.
    pub fn start(log: Arc<dyn EventLog>, instance: String) -> (Self, EmitterHandle) {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let (close_sender, close_receiver) = oneshot::channel();
        let stats = Arc::new(EmitterStats::default());
        let task = tokio::spawn(write_events(
            log,
            receiver,
            close_receiver,
            Arc::clone(&stats),
        ));
        let handle = EmitterHandle {
            sender,
            sequence: Arc::new(AtomicU64::new(0)),
            instance: Arc::from(instance),
        };
        (
            Self {
                task,
                close: close_sender,
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
        tracing::info!(
            appended = stats.appended.load(Ordering::Relaxed),
            retries = stats.append_retries.load(Ordering::Relaxed),
            "usage event writer flushed"
        );
    }
}

fn encode_batch(events: &[PendingEvent], stats: &EmitterStats) -> Vec<LogRecord> {
    events
        .iter()
        .map(|pending| &pending.event)
        .filter_map(|event| match event.encode_json() {
            Ok(data) => Some(LogRecord {
                partition_key: event.customer_id.clone(),
                data: Bytes::from(data),
            }),
            Err(error) => {
                stats.encode_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(event_id = %event.event_id, error = %error, "usage event could not be encoded");
                None
            }
        })
        .collect()
}

async fn write_events(
    log: Arc<dyn EventLog>,
    mut receiver: mpsc::Receiver<PendingEvent>,
    mut close: oneshot::Receiver<()>,
    stats: Arc<EmitterStats>,
) {
    let mut batch: Vec<PendingEvent> = Vec::with_capacity(MAX_BATCH_RECORDS);
    let mut closing = false;
    loop {
        let received = if closing {
            receiver.recv_many(&mut batch, MAX_BATCH_RECORDS).await
        } else {
            tokio::select! {
                received = receiver.recv_many(&mut batch, MAX_BATCH_RECORDS) => received,
                _ = &mut close => {
                    closing = true;
                    receiver.close();
                    continue;
                }
            }
        };
        if received == 0 {
            return;
        }
        if batch.len() < MAX_BATCH_RECORDS {
            tokio::time::sleep(BATCH_LINGER).await;
            while batch.len() < MAX_BATCH_RECORDS {
                match receiver.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
        }
        let records = encode_batch(&batch, &stats);
        append_until_durable(log.as_ref(), records, &stats).await;
        for pending in batch.drain(..) {
            if let Some(acknowledge) = pending.durable {
                let _ = acknowledge.send(());
            }
        }
    }
}

/// Appends records, retrying only the failed ones, until all are durable.
pub async fn append_until_durable(
    log: &dyn EventLog,
    mut records: Vec<LogRecord>,
    stats: &EmitterStats,
) {
    let mut backoff = Duration::from_millis(50);
    while !records.is_empty() {
        match log.append(&records).await {
            Ok(results) if results.len() != records.len() => {
                tracing::error!(
                    sent = records.len(),
                    answered = results.len(),
                    "event log answered a different number of results; retrying the whole batch"
                );
            }
            Ok(results) => {
                let mut failed = Vec::new();
                for (record, result) in records.into_iter().zip(results) {
                    match result {
                        Ok(_) => {
                            stats.appended.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(failure) => {
                            tracing::warn!(message = %failure.message, retryable = failure.retryable, "usage event append failed; retrying");
                            failed.push(record);
                        }
                    }
                }
                records = failed;
            }
            Err(error) => {
                tracing::warn!(error = %error, records = records.len(), "usage event log unavailable; retrying");
            }
        }
        if !records.is_empty() {
            stats.append_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(with_jitter(backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Spreads retries of many proxies: a delay between half and all of `backoff`.
pub fn with_jitter(backoff: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    backoff.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_backoff() {
        let backoff = Duration::from_millis(800);
        for _ in 0..200 {
            let delay = with_jitter(backoff);
            assert!(delay >= backoff / 2 && delay <= backoff, "{delay:?}");
        }
    }
}
