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
//! and removes them once the log has them. Spools left by a stopped proxy are drained
//! too. While the spool holds more than its limit, [`EmitterHandle::is_backed_up`] is true
//! and the proxy refuses new calls with 503 rather than serve them unmetered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use schemas::UsageEvent;
use store::{EventLog, LogRecord, Spool};
use telemetry::metrics::Sample;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most records in one append (Kinesis PutRecords takes 500).
pub const MAX_BATCH_RECORDS: usize = 500;
/// Longest a received event waits for more to batch with.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);
/// Events buffered between requests and the log writer.
pub const CHANNEL_CAPACITY: usize = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a batch is retried against the log before it goes to the spool.
pub const DIRECT_DEADLINE: Duration = Duration::from_secs(2);
/// Longest wait for one append before it counts as failed (it may still have been written;
/// consumers dedupe by `event_id`).
pub const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

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
}

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
struct Backpressure {
    spool_failing: AtomicBool,
}

/// The handle requests use to emit events.
#[derive(Clone)]
pub struct EmitterHandle {
    sender: mpsc::Sender<PendingEvent>,
    sequence: Arc<AtomicU64>,
    instance: Arc<str>,
    spool: Option<(Arc<dyn Spool>, u64)>,
    backpressure: Arc<Backpressure>,
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

    /// Whether metering is backed up: the spool holds more than its limit, or cannot be
    /// written. New calls are then refused (503) instead of served unmetered.
    pub fn is_backed_up(&self) -> bool {
        self.backpressure.spool_failing.load(Ordering::Relaxed)
            || self
                .spool
                .as_ref()
                .is_some_and(|(spool, limit)| spool.level().bytes > *limit)
    }

    /// The spool, when there is one.
    pub fn spool(&self) -> Option<Arc<dyn Spool>> {
        self.spool.as_ref().map(|(spool, _)| Arc::clone(spool))
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
    drainer: Option<Drainer>,
    pub stats: Arc<EmitterStats>,
}

struct Drainer {
    task: JoinHandle<()>,
    stop: Arc<tokio::sync::Notify>,
    wake: Arc<tokio::sync::Notify>,
    setup: SpoolSetup,
}

impl std::fmt::Debug for EventEmitter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EventEmitter")
    }
}

impl EventEmitter {
    /// Starts the writer task over `log`. `instance` names this proxy process.
    pub fn start(log: Arc<dyn EventLog>, instance: String) -> (Self, EmitterHandle) {
        Self::start_with(log, instance, None)
    }

    /// Starts the writer task, and with a spool its drainer.
    pub fn start_with(
        log: Arc<dyn EventLog>,
        instance: String,
        spool: Option<SpoolSetup>,
    ) -> (Self, EmitterHandle) {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let (close_sender, close_receiver) = oneshot::channel();
        let stats = Arc::new(EmitterStats::default());
        let backpressure = Arc::new(Backpressure::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let drainer = spool.clone().map(|setup| {
            let stop = Arc::new(tokio::sync::Notify::new());
            let task = tokio::spawn(drain_spools(
                Arc::clone(&log),
                setup.clone(),
                Arc::clone(&stats),
                Arc::clone(&wake),
                Arc::clone(&stop),
            ));
            Drainer {
                task,
                stop,
                wake: Arc::clone(&wake),
                setup,
            }
        });
        let task = tokio::spawn(write_events(
            log,
            receiver,
            close_receiver,
            Writer {
                stats: Arc::clone(&stats),
                spool: spool.as_ref().map(|setup| Arc::clone(&setup.spool)),
                backpressure: Arc::clone(&backpressure),
                wake,
            },
        ));
        let handle = EmitterHandle {
            sender,
            sequence: Arc::new(AtomicU64::new(0)),
            instance: Arc::from(instance),
            spool: spool.map(|setup| (setup.spool, setup.limit_bytes)),
            backpressure,
        };
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
            drainer.wake.notify_one();
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

/// What the writer task shares with the rest of the emitter.
struct Writer {
    stats: Arc<EmitterStats>,
    spool: Option<Arc<dyn Spool>>,
    backpressure: Arc<Backpressure>,
    wake: Arc<tokio::sync::Notify>,
}

impl Writer {
    /// Makes a batch durable: in the log, or in the spool when the log does not take it in
    /// time (and always in the spool while it holds older records, to keep the order).
    async fn deliver(&self, log: &dyn EventLog, records: Vec<LogRecord>) {
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

async fn write_events(
    log: Arc<dyn EventLog>,
    mut receiver: mpsc::Receiver<PendingEvent>,
    mut close: oneshot::Receiver<()>,
    writer: Writer,
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
        // Linger for more events only when nobody is waiting for this batch: a call that
        // answers after its event is durable is group-committed with whatever queued while
        // the previous append ran, not delayed further.
        if batch.len() < MAX_BATCH_RECORDS && batch.iter().all(|pending| pending.durable.is_none())
        {
            tokio::time::sleep(BATCH_LINGER).await;
            while batch.len() < MAX_BATCH_RECORDS {
                match receiver.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
        }
        let records = encode_batch(&batch, &writer.stats);
        writer.deliver(log.as_ref(), records).await;
        for pending in batch.drain(..) {
            if let Some(acknowledge) = pending.durable {
                let _ = acknowledge.send(());
            }
        }
    }
}

/// Moves spooled records to the log, oldest first: the orphaned spools, then this
/// process's own. Stops when told to (what is left stays on disk).
async fn drain_spools(
    log: Arc<dyn EventLog>,
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
                }
                Err(error) => {
                    tracing::error!(error = %error, "cannot remove delivered records from the spool; retrying");
                    failed = true;
                }
            }
        }
        if moved_any && !failed {
            backoff = Duration::from_millis(50);
            continue;
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
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Appends records, retrying only the failed ones, until they are durable or `deadline`
/// has passed; returns the records still not in the log. The first attempt is always made.
pub async fn append_within(
    log: &dyn EventLog,
    mut records: Vec<LogRecord>,
    deadline: Duration,
    stats: &EmitterStats,
) -> Vec<LogRecord> {
    let give_up_at = tokio::time::Instant::now() + deadline;
    let mut backoff = Duration::from_millis(50);
    while !records.is_empty() {
        records = append_once(log, records, stats).await;
        if records.is_empty() {
            break;
        }
        stats.append_retries.fetch_add(1, Ordering::Relaxed);
        let pause = with_jitter(backoff);
        if tokio::time::Instant::now() + pause >= give_up_at {
            break;
        }
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    records
}

/// One append; returns the records that did not make it.
async fn append_once(
    log: &dyn EventLog,
    records: Vec<LogRecord>,
    stats: &EmitterStats,
) -> Vec<LogRecord> {
    match tokio::time::timeout(APPEND_TIMEOUT, log.append(&records)).await {
        Ok(Ok(results)) if results.len() != records.len() => {
            tracing::error!(
                sent = records.len(),
                answered = results.len(),
                "event log answered a different number of results; retrying the whole batch"
            );
            records
        }
        Ok(Ok(results)) => {
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
            failed
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, records = records.len(), "usage event log unavailable; retrying");
            records
        }
        Err(_) => {
            tracing::warn!(records = records.len(), timeout = ?APPEND_TIMEOUT, "usage event log did not answer in time; retrying");
            records
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
        records = append_once(log, records, stats).await;
        if !records.is_empty() {
            stats.append_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(with_jitter(backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
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
