//! The spool drainer: moves spooled records to the log, oldest first, and removes them
//! once the log has them; spools left by stopped proxies first. Records come to the spool
//! when the log does not take them in time, and, on servers, every durable event first
//! (the group commit's journal).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use store::{EventAppender, Spool};
use tokio::task::JoinHandle;

use super::append::{AppendOn, append_within_on};
use super::backoff::{MAX_BACKOFF, with_jitter};
use super::metrics::EmitterStats;
use super::pending::coalesce_frames;
use super::spool_route::{DIRECT_DEADLINE, SpoolSetup};
use super::writer::MAX_BATCH_RECORDS;

/// How long the drainer, woken by a record in the spool, waits for more before it moves
/// them. Durable events reach the spool one group commit at a time (a call or a few each),
/// so the log gets one append per linger rather than one per few calls: at 1,000 calls a
/// second, 20 appends (SQLite commits, or Kinesis `PutRecords`) a second instead of about
/// 200, and about 25 µs less CPU a call. Events are durable in the spool meanwhile; the
/// consumer, which polls the log every 200 ms when idle, sees them at most this much later.
pub const DRAIN_LINGER: Duration = Duration::from_millis(50);

/// The drainer task and how to wake, hurry or stop it.
pub(super) struct Drainer {
    pub(super) task: JoinHandle<()>,
    pub(super) stop: Arc<tokio::sync::Notify>,
    pub(super) wake: Arc<tokio::sync::Notify>,
    /// Set at shutdown: the drainer moves what the spool holds without lingering.
    pub(super) closing: Arc<AtomicBool>,
    pub(super) setup: SpoolSetup,
}

impl Drainer {
    /// Starts draining `setup`'s spools into `log`. Where every spool and the log can do
    /// their work on the calling thread (file spools into the embedded log), the drainer
    /// gets a thread of its own and does each step there: no hand-off to the blocking pool
    /// and back for each read, append and removal, and no SQLite commit on the shared
    /// runtime's workers. Otherwise it is a task on the current runtime.
    pub(super) fn start(
        log: Arc<dyn EventAppender>,
        setup: SpoolSetup,
        stats: Arc<EmitterStats>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        let stop = Arc::new(tokio::sync::Notify::new());
        let closing = Arc::new(AtomicBool::new(false));
        let drain = |on| {
            drain_spools(
                Arc::clone(&log),
                setup.clone(),
                Arc::clone(&stats),
                Signals {
                    wake: Arc::clone(&wake),
                    stop: Arc::clone(&stop),
                    closing: Arc::clone(&closing),
                },
                on,
            )
        };
        let task = if works_on_the_calling_thread(log.as_ref(), &setup) {
            match on_a_thread_of_its_own(drain(AppendOn::CallingThread)) {
                Ok(task) => task,
                Err(error) => {
                    tracing::warn!(error = %error, "no thread for the spool's drainer; it runs as a task");
                    tokio::spawn(drain(AppendOn::Task))
                }
            }
        } else {
            tokio::spawn(drain(AppendOn::Task))
        };
        Self {
            task,
            stop,
            wake,
            closing,
            setup,
        }
    }

    /// Has the drainer move what the spool holds now, without lingering (shutdown).
    pub(super) fn hurry(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// How a running drainer is woken, hurried and stopped.
struct Signals {
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
    closing: Arc<AtomicBool>,
}

/// Whether the log appends and every spool reads and removes on the calling thread.
fn works_on_the_calling_thread(log: &dyn EventAppender, setup: &SpoolSetup) -> bool {
    store::appends_on_the_calling_thread(log)
        && std::iter::once(&setup.spool)
            .chain(&setup.orphans)
            .all(|spool| spool.peek_now(0).is_some())
}

/// Runs `drain` on a new thread with a single-threaded runtime of its own. The returned
/// task ends when the drainer does; if the runtime that started it stops first (the task
/// is dropped), the drainer stops too, as a task of that runtime would.
fn on_a_thread_of_its_own(
    drain: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (finished, finished_signal) = tokio::sync::oneshot::channel::<()>();
    let (starter_alive, starter_gone) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("tollgate-drainer".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    () = drain => {}
                    _ = starter_gone => {}
                }
            });
            let _ = finished.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _starter_alive = starter_alive;
        let _ = finished_signal.await;
    }))
}

/// Moves spooled records to the log, oldest first: the orphaned spools, then this
/// process's own. Stops when told to (what is left stays on disk).
async fn drain_spools(
    log: Arc<dyn EventAppender>,
    setup: SpoolSetup,
    stats: Arc<EmitterStats>,
    signals: Signals,
    on: AppendOn,
) {
    let Signals {
        wake,
        stop,
        closing,
    } = signals;
    let spools: Vec<Arc<dyn Spool>> = setup
        .orphans
        .iter()
        .cloned()
        .chain(std::iter::once(Arc::clone(&setup.spool)))
        .collect();
    let on_this_thread = on == AppendOn::CallingThread;
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut moved_any = false;
        let mut moved_full_batch = false;
        let mut failed = false;
        for spool in &spools {
            if spool.level().records == 0 {
                continue;
            }
            let records =
                match store::peek_on(spool.as_ref(), MAX_BATCH_RECORDS, on_this_thread).await {
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
            let leftover =
                append_within_on(log.as_ref(), records, DIRECT_DEADLINE, &stats, on).await;
            if !leftover.is_empty() {
                // Not all of them are in the log yet; the whole head is sent again later
                // (the ones that made it become duplicates, which consumers drop).
                failed = true;
                continue;
            }
            match store::pop_on(spool.as_ref(), count, on_this_thread).await {
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
            // Durable events are written to the spool one call at a time: wait a while
            // for more, so the log receives them in batches.
            _ = wake.notified() => {
                if !closing.load(Ordering::Relaxed) {
                    tokio::select! {
                        _ = stop.notified() => return,
                        _ = tokio::time::sleep(DRAIN_LINGER) => {}
                    }
                }
            }
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use schemas::usage_frame::EventFormat;
    use store::memory::MemoryStore;
    use store::{AppendResult, LogRecord};

    use super::*;
    use crate::emitter::group_commit::tests::{event, events_in};
    use crate::emitter::{Durability, EventEmitter};

    /// A log in memory that notes the thread of every append and how it was made.
    #[derive(Default)]
    struct ThreadNotingLog {
        store: MemoryStore,
        threads_now: Mutex<Vec<Option<String>>>,
        appends: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl EventAppender for ThreadNotingLog {
        async fn append(&self, records: &[LogRecord]) -> store::Result<Vec<AppendResult>> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.store.append(records).await
        }

        fn append_now(&self, records: &[LogRecord]) -> Option<store::Result<Vec<AppendResult>>> {
            if !records.is_empty() {
                let thread = std::thread::current().name().map(str::to_owned);
                self.threads_now.lock().unwrap().push(thread);
            }
            self.store.append_now(records)
        }
    }

    fn spool_setup(directory: &std::path::Path) -> (Arc<dyn Spool>, super::SpoolSetup) {
        let spool: Arc<dyn Spool> =
            Arc::new(Arc::new(store::spool::FileSpool::open(directory).unwrap()));
        let setup = super::SpoolSetup {
            spool: Arc::clone(&spool),
            orphans: Vec::new(),
            limit_bytes: 1 << 20,
            location: directory.display().to_string(),
        };
        (spool, setup)
    }

    /// An emitter whose events are durable before the answer, journaled to a file spool
    /// in `directory` and drained into a log that notes where it appended.
    fn durable_emitter(
        directory: &std::path::Path,
    ) -> (
        Arc<dyn Spool>,
        Arc<ThreadNotingLog>,
        EventEmitter,
        crate::emitter::EmitterHandle,
    ) {
        let (spool, setup) = spool_setup(directory);
        let log = Arc::new(ThreadNotingLog::default());
        let (emitter, handle) = EventEmitter::start_with(
            log.clone(),
            "instance".into(),
            Durability::BeforeAnswer,
            Some(setup),
            EventFormat::default(),
        );
        (spool, log, emitter, handle)
    }

    /// Waits up to 5 s for the drainer to empty `spool`.
    async fn wait_until_empty(spool: &dyn Spool) {
        let mut waited = 0;
        while spool.level().records > 0 && waited < 250 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_spool_is_drained_into_a_log_that_appends_at_once_on_a_thread_of_its_own() {
        let directory = tempfile::tempdir().unwrap();
        let (spool, log, emitter, handle) = durable_emitter(directory.path());
        let recorded: Vec<_> = (0..50).map(|_| event()).collect();
        for one in &recorded {
            handle.record(one.clone(), None).await;
        }
        wait_until_empty(spool.as_ref()).await;
        let mut in_log: Vec<_> = events_in(&log.store)
            .await
            .into_iter()
            .map(|event| event.event_id)
            .collect();
        in_log.sort();
        let mut expected: Vec<_> = recorded.iter().map(|event| event.event_id).collect();
        expected.sort();
        assert_eq!(in_log, expected, "every event in the log, once");
        let threads = log.threads_now.lock().unwrap().clone();
        assert!(!threads.is_empty());
        assert!(
            threads
                .iter()
                .all(|thread| thread.as_deref() == Some("tollgate-drainer")),
            "appended on the drainer's thread: {threads:?}"
        );
        assert_eq!(
            log.appends.load(Ordering::SeqCst),
            0,
            "never through a task"
        );
        drop(handle);
        emitter.finish(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_spooled_a_few_milliseconds_apart_reach_the_log_in_one_append_per_linger() {
        let directory = tempfile::tempdir().unwrap();
        let (spool, log, emitter, handle) = durable_emitter(directory.path());
        // One durable event every 5 ms, as calls at a low rate make them: each is a write
        // to the spool of its own, and each wakes the drainer.
        let started = std::time::Instant::now();
        let events = 24;
        for _ in 0..events {
            handle.record(event(), None).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let spread = started.elapsed();
        wait_until_empty(spool.as_ref()).await;
        assert_eq!(
            events_in(&log.store).await.len(),
            events,
            "every event in the log"
        );
        let appends = log.threads_now.lock().unwrap().len();
        // One append per linger over the time the events were spread out, and one for
        // the tail; a drainer that moved each wake's records at once makes one per event
        // or two.
        let lingers = usize::try_from(spread.as_millis() / DRAIN_LINGER.as_millis()).unwrap();
        assert!(
            appends <= lingers + 2,
            "{appends} appends for {events} events spread over {spread:?}"
        );
        drop(handle);
        emitter.finish(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_shutdown_the_drainer_empties_the_spool_into_the_log() {
        let directory = tempfile::tempdir().unwrap();
        let (spool, log, emitter, handle) = durable_emitter(directory.path());
        for _ in 0..10 {
            handle.record(event(), None).await;
        }
        drop(handle);
        emitter.finish(Duration::from_secs(5)).await;
        assert_eq!(
            spool.level().records,
            0,
            "the spool is empty after shutdown"
        );
        assert_eq!(
            events_in(&log.store).await.len(),
            10,
            "every event in the log"
        );
    }

    #[test]
    fn the_drainers_thread_stops_its_work_when_the_runtime_that_started_it_stops() {
        let held = Arc::new(());
        let watched = Arc::downgrade(&held);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            on_a_thread_of_its_own(async move {
                let _held = held;
                std::future::pending::<()>().await;
            })
            .unwrap();
        });
        assert!(watched.upgrade().is_some(), "still running");
        drop(runtime);
        let mut waited = 0;
        while watched.upgrade().is_some() && waited < 250 {
            std::thread::sleep(Duration::from_millis(20));
            waited += 1;
        }
        assert!(watched.upgrade().is_none(), "the work was dropped");
    }

    #[tokio::test]
    async fn the_task_of_a_drainer_on_its_own_thread_ends_when_the_drainer_does() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = on_a_thread_of_its_own(async move {
            let _ = stopped.await;
        })
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished());
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends")
            .unwrap();
    }
}
