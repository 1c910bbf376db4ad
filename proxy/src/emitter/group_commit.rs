//! Group commit on the callers' own threads, for a log that appends locally
//! ([`EventAppender::append_now`]: the embedded log).
//!
//! A call whose answer waits for its event joins the group. If no append is running, the
//! call leads: it appends its own event, and then, round after round, every event that
//! joined while the previous append ran, on its own thread. The others wait for the
//! leader's word. So at low load a durable event costs one local append and no hand-off
//! to another thread; under load one append carries many events.
//!
//! Whatever the log does not take at once (another writer holds it, an error) goes to the
//! writer task with its acknowledgement, which retries it and spools it like any batch.
//! So does what is still waiting after [`MAX_LEADER_ROUNDS`], so that no leader serves
//! others for long.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use schemas::usage_frame::record_event_count;
use store::EventAppender;

use super::metrics::EmitterStats;
use super::pending::{PendingEvent, encode_batch};

/// Most appends one leader makes (its own, then those of calls that joined meanwhile).
pub const MAX_LEADER_ROUNDS: usize = 8;

/// The group of durable events being appended on callers' threads.
pub(super) struct GroupCommit {
    log: Arc<dyn EventAppender>,
    stats: Arc<EmitterStats>,
    group: Mutex<Group>,
}

#[derive(Default)]
struct Group {
    /// A leader is appending.
    appending: bool,
    /// Events that joined while it appends, for its next round.
    waiting: Vec<PendingEvent>,
}

impl GroupCommit {
    /// A group over `log`, when it appends locally (answers `append_now` for an empty
    /// batch); `None` otherwise.
    pub(super) fn over(log: &Arc<dyn EventAppender>, stats: &Arc<EmitterStats>) -> Option<Self> {
        log.append_now(&[])?.ok()?;
        Some(Self {
            log: Arc::clone(log),
            stats: Arc::clone(stats),
            group: Mutex::new(Group::default()),
        })
    }

    /// Joins `pending` (which carries its acknowledgement) to the group. Appends it, and
    /// what joins meanwhile, when no append is running; otherwise leaves it to the running
    /// one. Returns the events that were not appended: the caller hands them to the writer.
    pub(super) fn join(&self, pending: PendingEvent) -> Vec<PendingEvent> {
        let mut batch = {
            let mut group = self.lock();
            group.waiting.push(pending);
            if group.appending {
                return Vec::new();
            }
            group.appending = true;
            std::mem::take(&mut group.waiting)
        };
        for _round in 0..MAX_LEADER_ROUNDS {
            if let Err(mut left) = self.append(batch) {
                let mut group = self.lock();
                group.appending = false;
                left.append(&mut group.waiting);
                drop(group);
                self.stats
                    .group_handoffs
                    .fetch_add(left.len() as u64, Ordering::Relaxed);
                return left;
            }
            let mut group = self.lock();
            if group.waiting.is_empty() {
                group.appending = false;
                return Vec::new();
            }
            batch = std::mem::take(&mut group.waiting);
        }
        let mut group = self.lock();
        group.appending = false;
        let left = std::mem::take(&mut group.waiting);
        drop(group);
        self.stats
            .group_handoffs
            .fetch_add(left.len() as u64, Ordering::Relaxed);
        left
    }

    /// Appends one batch at once and acknowledges it; gives the batch back when the log
    /// did not take every record.
    fn append(&self, batch: Vec<PendingEvent>) -> Result<(), Vec<PendingEvent>> {
        let records = encode_batch(&batch, &self.stats);
        match self.log.append_now(&records) {
            Some(Ok(results))
                if results.len() == records.len() && results.iter().all(Result::is_ok) =>
            {
                let events: usize = records
                    .iter()
                    .map(|record| record_event_count(&record.data))
                    .sum();
                self.stats
                    .appended
                    .fetch_add(events as u64, Ordering::Relaxed);
                self.stats.group_commits.fetch_add(1, Ordering::Relaxed);
                for pending in batch {
                    if let Some(acknowledge) = pending.durable {
                        let _ = acknowledge.send(());
                    }
                }
                Ok(())
            }
            Some(Err(error)) => {
                tracing::warn!(error = %error, events = batch.len(), "usage events could not be appended at once; the writer retries them");
                Err(batch)
            }
            // Another writer holds the log, or some records failed (the writer sends the
            // whole batch again; consumers drop the repeats by producer sequence).
            _ => Err(batch),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many events wait for the running append (tests).
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

#[cfg(test)]
mod tests {
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
            });
            (log, Gate { release, entering })
        }

        async fn events(&self) -> Vec<UsageEvent> {
            self.store
                .read("0", None, 1000)
                .await
                .unwrap()
                .entries
                .iter()
                .flat_map(|entry| schemas::usage_frame::decode_events(&entry.data).unwrap())
                .collect()
        }
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
            self.store.append_now(records)
        }
    }

    fn event() -> UsageEvent {
        store::contract::event_on("c", Utc::now().date_naive(), "m", Outcome::Success, 1, 1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_durable_event_is_appended_on_the_callers_thread() {
        let (log, _gate) = LocalLog::new(false, false);
        let (emitter, handle) = EventEmitter::start_with(
            log.clone(),
            "instance".into(),
            Durability::BeforeAnswer,
            None,
        );
        handle.record(event(), None).await;
        assert_eq!(log.events().await.len(), 1, "durable when record returns");
        assert_eq!(
            (
                log.appends_now.load(Ordering::SeqCst),
                log.appends.load(Ordering::SeqCst)
            ),
            (1, 0),
            "appended at once, not through the writer"
        );
        drop(handle);
        emitter.finish(Duration::from_secs(5)).await;
        assert_eq!(log.events().await.len(), 1, "and only once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_that_cannot_append_at_once_gets_the_event_through_the_writer() {
        let (log, _gate) = LocalLog::new(true, false);
        let (emitter, handle) = EventEmitter::start_with(
            log.clone(),
            "instance".into(),
            Durability::BeforeAnswer,
            None,
        );
        handle.record(event(), None).await;
        assert_eq!(log.events().await.len(), 1, "durable when record returns");
        assert_eq!(
            (
                log.appends_now.load(Ordering::SeqCst),
                log.appends.load(Ordering::SeqCst)
            ),
            (0, 1)
        );
        drop(handle);
        emitter.finish(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_that_join_during_an_append_go_together_in_the_next_one() {
        let (log, gate) = LocalLog::new(false, true);
        let (emitter, handle) = EventEmitter::start_with(
            log.clone(),
            "instance".into(),
            Durability::BeforeAnswer,
            None,
        );
        let leader = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.record(event(), None).await })
        };
        // The leader is inside its append; 40 more calls join meanwhile.
        gate.entering
            .recv_timeout(Duration::from_secs(10))
            .expect("the first call appends at once");
        let followers: Vec<_> = (0..40)
            .map(|_| {
                let handle = handle.clone();
                tokio::spawn(async move { handle.record(event(), None).await })
            })
            .collect();
        let group = handle.group_for_tests().unwrap();
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
        let mut sequences: Vec<u64> = events.iter().map(|event| event.instance_seq).collect();
        sequences.sort_unstable();
        assert_eq!(sequences, (1..=41).collect::<Vec<u64>>(), "each event once");
        assert_eq!(
            (
                log.appends_now.load(Ordering::SeqCst),
                log.appends.load(Ordering::SeqCst)
            ),
            (2, 0),
            "the leader's own append, then one for the 40 that joined"
        );
        drop(handle);
        emitter.finish(Duration::from_secs(5)).await;
    }
}
