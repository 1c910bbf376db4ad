//! The group commit's tests: paths of one durable event, groups formed while a write
//! runs, a busy thread's leader waiting one yield, and each thread writing its own calls'
//! events.

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use schemas::{Outcome, UsageEvent};
use store::memory::MemoryStore;
use store::{AppendResult, EventReader, LogRecord};

use super::*;
use crate::emitter::{Durability, EventEmitter};

/// A log in memory whose `append_now` can refuse (as when another writer holds the
/// embedded log) or hold its first call until released, and which counts both paths.
struct LocalLog {
    store: MemoryStore,
    refuse_now: bool,
    hold_first: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    entered: std::sync::mpsc::SyncSender<()>,
    appends_now: AtomicUsize,
    appends: AtomicUsize,
    /// Per append at once: the appending thread's name and its events' customers.
    writes_now: Mutex<Vec<(String, Vec<String>)>>,
}

impl LocalLog {
    fn new(refuse_now: bool, hold_first: bool) -> (Arc<Self>, Gate) {
        let (release, held) = std::sync::mpsc::channel();
        let (entered, entering) = std::sync::mpsc::sync_channel(16);
        let log = Arc::new(Self {
            store: MemoryStore::new(),
            refuse_now,
            hold_first: Mutex::new(hold_first.then_some(held)),
            entered,
            appends_now: AtomicUsize::new(0),
            appends: AtomicUsize::new(0),
            writes_now: Mutex::new(Vec::new()),
        });
        (log, Gate { release, entering })
    }

    async fn events(&self) -> Vec<UsageEvent> {
        events_in(&self.store).await
    }
}

/// The events in a log in memory, decoded from its frames.
pub(in crate::emitter) async fn events_in(store: &MemoryStore) -> Vec<UsageEvent> {
    store
        .read("0", None, 1000)
        .await
        .unwrap()
        .entries
        .iter()
        .flat_map(|entry| schemas::usage_frame::decode_events(&entry.data).unwrap())
        .collect()
}

struct Gate {
    release: std::sync::mpsc::Sender<()>,
    entering: std::sync::mpsc::Receiver<()>,
}

#[async_trait]
impl EventAppender for LocalLog {
    async fn append(&self, records: &[LogRecord]) -> store::Result<Vec<AppendResult>> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.store.append(records).await
    }

    fn append_now(&self, records: &[LogRecord]) -> Option<store::Result<Vec<AppendResult>>> {
        if records.is_empty() {
            return Some(Ok(Vec::new()));
        }
        if self.refuse_now {
            return None;
        }
        let held = self.hold_first.lock().unwrap().take();
        if let Some(held) = held {
            let _ = self.entered.send(());
            let _ = held.recv();
        }
        self.appends_now.fetch_add(1, Ordering::SeqCst);
        let customers = records
            .iter()
            .flat_map(|record| schemas::usage_frame::decode_events(&record.data).unwrap())
            .map(|event| event.customer_id.to_string())
            .collect();
        let thread = std::thread::current().name().unwrap_or_default().to_owned();
        self.writes_now.lock().unwrap().push((thread, customers));
        self.store.append_now(records)
    }
}

pub(in crate::emitter) fn event() -> UsageEvent {
    store::contract::event_on("c", Utc::now().date_naive(), "m", Outcome::Success, 1, 1)
}

/// Records one durable event on a log that appends at once or refuses to; returns the
/// appends made at once and through the writer, after checking the event is in the
/// log when `record` returns, and only once after shutdown.
async fn paths_of_one_durable_event(refuse_now: bool) -> (usize, usize) {
    let (log, _gate) = LocalLog::new(refuse_now, false);
    let (emitter, handle) = EventEmitter::start_with(
        log.clone(),
        "instance".into(),
        Durability::BeforeAnswer,
        None,
        EventFormat::default(),
    );
    handle.record(event(), None).await;
    assert_eq!(log.events().await.len(), 1, "durable when record returns");
    drop(handle);
    emitter.finish(Duration::from_secs(5)).await;
    assert_eq!(log.events().await.len(), 1, "and only once");
    (
        log.appends_now.load(Ordering::SeqCst),
        log.appends.load(Ordering::SeqCst),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_event_is_appended_on_the_callers_thread() {
    assert_eq!(
        paths_of_one_durable_event(false).await,
        (1, 0),
        "appended at once, not through the writer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_append_at_once_gets_the_event_through_the_writer() {
    assert_eq!(paths_of_one_durable_event(true).await, (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_join_during_an_append_go_together_in_the_next_one() {
    let (log, gate) = LocalLog::new(false, true);
    // One group for every thread: calls on the other worker join the blocked leader's.
    let group = Arc::new(group_over(&log, Duration::ZERO).with_one_group());
    let (writer, _writer_queue) = tokio::sync::mpsc::channel(64);
    let record = |group: &Arc<GroupCommit>| {
        let (group, writer) = (Arc::clone(group), writer.clone());
        tokio::spawn(async move {
            let (pending, written) = durable_event();
            assert!(group.join_batching(pending, &writer).await.is_empty());
            written.await.unwrap();
        })
    };
    let leader = record(&group);
    // The leader is inside its append; 40 more calls join meanwhile.
    gate.entering
        .recv_timeout(Duration::from_secs(10))
        .expect("the first call appends at once");
    let followers: Vec<_> = (0..40).map(|_| record(&group)).collect();
    while group.waiting() < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for follower in &followers {
        assert!(
            !follower.is_finished(),
            "no follower is answered before its append"
        );
    }
    gate.release.send(()).unwrap();
    leader.await.unwrap();
    for follower in followers {
        follower.await.unwrap();
    }
    let events = log.events().await;
    let ids: std::collections::HashSet<_> = events.iter().map(|event| event.event_id).collect();
    assert_eq!((events.len(), ids.len()), (41, 41), "each event once");
    assert_eq!(
        (
            log.appends_now.load(Ordering::SeqCst),
            log.appends.load(Ordering::SeqCst)
        ),
        (2, 0),
        "the leader's own append, then one for the 40 that joined"
    );
}

#[test]
fn each_thread_writes_the_events_of_its_own_calls() {
    // The first write, by a call on "left", is held until released.
    let (log, gate) = LocalLog::new(false, true);
    // Leaders yield on a busy thread, so each thread's burst shares writes.
    let group = Arc::new(group_over(&log, Duration::from_secs(60)));
    let on_thread = |name: &'static str, calls: usize| {
        let group = Arc::clone(&group);
        let (done, finished) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                burst_on_this_thread(&group, name, calls);
                let _ = done.send(());
            })
            .unwrap();
        (thread, finished)
    };
    let (left, _) = on_thread("left", 1);
    gate.entering
        .recv_timeout(Duration::from_secs(10))
        .expect("the call on the left thread writes at once");
    let (right, right_finished) = on_thread("right", 30);
    let right_answered = right_finished.recv_timeout(Duration::from_secs(10));
    gate.release.send(()).unwrap();
    assert!(
        right_answered.is_ok(),
        "calls on the right thread do not wait for the left thread's write"
    );
    left.join().unwrap();
    right.join().unwrap();
    let writes = log.writes_now.lock().unwrap().clone();
    let written: usize = writes.iter().map(|(_, customers)| customers.len()).sum();
    assert_eq!(written, 31, "every event written at once, once");
    for (thread, customers) in &writes {
        assert!(
            customers.iter().all(|customer| customer == thread),
            "the thread {thread} wrote events of calls on another: {customers:?}"
        );
    }
    assert!(
        writes.len() < 31,
        "calls on one thread share writes: {} writes",
        writes.len()
    );
}

/// `calls` durable events of customer `name`, recorded at once by calls on a runtime of
/// this thread's own.
fn burst_on_this_thread(group: &Arc<GroupCommit>, name: &str, calls: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (writer, _writer_queue) = tokio::sync::mpsc::channel(64);
    runtime.block_on(async {
        let calls: Vec<_> = (0..calls)
            .map(|_| {
                let (group, writer, name) = (Arc::clone(group), writer.clone(), name.to_owned());
                tokio::spawn(async move {
                    let (acknowledge, written) = tokio::sync::oneshot::channel();
                    let mut event = event();
                    event.customer_id = name.as_str().into();
                    let pending = PendingEvent {
                        event,
                        durable: Some(acknowledge),
                    };
                    assert!(group.join_batching(pending, &writer).await.is_empty());
                    written.await.unwrap();
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap();
        }
    });
}

/// A log that refuses every append until it is switched on.
struct SwitchedLog {
    store: MemoryStore,
    on: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl EventAppender for SwitchedLog {
    async fn append(&self, records: &[LogRecord]) -> store::Result<Vec<AppendResult>> {
        if self.on.load(Ordering::SeqCst) {
            self.store.append(records).await
        } else {
            Err(store::StoreError::Unavailable("switched off".into()))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_spool_a_durable_event_is_written_there_and_the_drainer_moves_it_to_the_log() {
    let directory = tempfile::tempdir().unwrap();
    let spool: Arc<dyn store::Spool> = Arc::new(Arc::new(
        store::spool::FileSpool::open(directory.path()).unwrap(),
    ));
    let log = Arc::new(SwitchedLog {
        store: MemoryStore::new(),
        on: std::sync::atomic::AtomicBool::new(false),
    });
    let (emitter, handle) = EventEmitter::start_with(
        log.clone(),
        "instance".into(),
        Durability::BeforeAnswer,
        Some(crate::emitter::SpoolSetup {
            spool: Arc::clone(&spool),
            orphans: Vec::new(),
            limit_bytes: 1 << 20,
            location: directory.path().display().to_string(),
        }),
        EventFormat::default(),
    );
    assert!(handle.group_for_tests().unwrap().journals());
    handle.record(event(), None).await;
    assert_eq!(
        spool.level().records,
        1,
        "answered once the event is in the spool, while the log refuses it"
    );
    log.on.store(true, Ordering::SeqCst);
    let mut waited = 0;
    while spool.level().records > 0 && waited < 500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    let in_log = events_in(&log.store).await;
    assert_eq!(
        in_log.len(),
        1,
        "the drainer moved it to the log once the log was back"
    );
    assert_eq!(spool.level().records, 0);
    drop(handle);
    emitter.finish(Duration::from_secs(5)).await;
}

/// A group over a log that appends at once, whose leaders yield when the last write
/// was less than `busy_gap` ago.
fn local_group(busy_gap: Duration) -> (Arc<LocalLog>, Arc<GroupCommit>) {
    let (log, _gate) = LocalLog::new(false, false);
    let group = group_over(&log, busy_gap);
    (log, Arc::new(group))
}

/// A group over `log`, whose leaders yield when the last write was less than `busy_gap`
/// ago.
fn group_over(log: &Arc<LocalLog>, busy_gap: Duration) -> GroupCommit {
    let appender: Arc<dyn EventAppender> = log.clone();
    let stats = Arc::new(EmitterStats::default());
    GroupCommit::over(&appender, None, &stats, EventFormat::default())
        .expect("the log appends at once")
        .with_busy_gap(busy_gap)
}

fn durable_event() -> (PendingEvent, tokio::sync::oneshot::Receiver<()>) {
    let (acknowledge, acknowledged) = tokio::sync::oneshot::channel();
    let pending = PendingEvent {
        event: event(),
        durable: Some(acknowledge),
    };
    (pending, acknowledged)
}

/// One event written, then twenty calls on the same thread record theirs at once;
/// returns the appends made and checks every event was acknowledged and logged.
async fn appends_for_a_burst(busy_gap: Duration) -> usize {
    let (log, group) = local_group(busy_gap);
    let (writer, _writer_queue) = tokio::sync::mpsc::channel(64);
    let (first, first_written) = durable_event();
    assert!(group.join_batching(first, &writer).await.is_empty());
    first_written.await.unwrap();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (group, writer) = (Arc::clone(&group), writer.clone());
            tokio::spawn(async move {
                let (pending, written) = durable_event();
                assert!(group.join_batching(pending, &writer).await.is_empty());
                written.await.unwrap();
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(log.events().await.len(), 21, "every event logged once");
    log.appends_now.load(Ordering::SeqCst)
}

#[tokio::test]
async fn on_a_busy_thread_the_leader_lets_ready_calls_join_its_write() {
    assert_eq!(
        appends_for_a_burst(Duration::from_secs(60)).await,
        2,
        "the first event's write, then one for the twenty"
    );
}

#[tokio::test]
async fn on_a_quiet_thread_each_call_writes_at_once() {
    assert_eq!(appends_for_a_burst(Duration::ZERO).await, 21);
}

#[tokio::test]
async fn a_leader_dropped_while_it_waits_still_writes_what_joined() {
    let (log, group) = local_group(Duration::from_secs(60));
    let (writer, _writer_queue) = tokio::sync::mpsc::channel(64);
    let (first, _) = durable_event();
    assert!(group.join_batching(first, &writer).await.is_empty());
    let (leader_event, leader_written) = durable_event();
    let (follower_event, follower_written) = durable_event();
    {
        let mut leading = Box::pin(group.join_batching(leader_event, &writer));
        assert!(
            futures::FutureExt::now_or_never(&mut leading).is_none(),
            "the leader yields on a busy thread"
        );
        assert!(matches!(group.enter(follower_event), Joined::Follower));
    }
    leader_written
        .await
        .expect("the dropped leader's event is written");
    follower_written.await.expect("and the follower's");
    assert_eq!(log.events().await.len(), 3);
}
