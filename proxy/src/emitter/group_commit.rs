//! Group commit on the callers' own threads, for durable events.
//!
//! A call whose answer waits for its event joins its thread's group. If no write is
//! running, the call leads: it writes its own event, and then, round after round, every
//! event that joined while the previous write ran. The others wait for the leader's word.
//! So at low load a durable event costs one local write and no hand-off to another thread;
//! under load one write carries many events.
//!
//! Each thread has a group of its own ([`THREAD_GROUPS`] of them; threads past that share
//! one). A group shared by the server's I/O threads let a leader on one thread write the
//! events of calls on another, but each of those calls was then woken across threads (a
//! write to that thread's eventfd and a return from its `epoll_wait`): about one call in
//! four at saturation, more than the writes the sharing saved. The spool serialises the
//! groups' writes with its own short lock.
//!
//! Where the group writes ([`Target`]):
//! - **The spool, as a journal** (servers: `tollgate serve`, `tollgate-proxy`). A durable
//!   event is one write to the spool's segment file, without fsync
//!   ([`store::Spool::push_now`]): it survives a kill of the process, as an append to the
//!   embedded log does, for a few microseconds instead of a SQLite commit. The drainer
//!   moves the spool to the log in batches and consumers drop any record it sends twice.
//! - **The log itself**, when it appends locally ([`EventAppender::append_now`]: the
//!   embedded log without a spool).
//!
//! When the group wrote moments ago ([`BUSY_WRITE_GAP`]), the thread is busy: a new leader
//! first lets the tasks already ready on its thread run (one yield), so the calls whose
//! answers arrived in the same wake-up join its write instead of each making one. At low
//! load nothing waits.
//!
//! Whatever the target does not take at once (it is held by another writer, an error)
//! goes to the writer task with its acknowledgement, which retries it and spools it like
//! any batch. So does what is still waiting after [`MAX_LEADER_ROUNDS`], so that no leader
//! serves others for long.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use schemas::usage_frame::{EventFormat, record_event_count};
use store::{EventAppender, LogRecord, Spool};
use tokio::sync::Notify;

use super::metrics::EmitterStats;
use super::pending::{PendingEvent, Storage, encode_batch};

/// Most appends one leader makes (its own, then those of calls that joined meanwhile).
pub const MAX_LEADER_ROUNDS: usize = 8;

/// Groups, one per thread: a thread takes the next on its first durable event, and
/// threads past this many share them in turn. The servers run one I/O thread per core.
pub const THREAD_GROUPS: usize = 16;

/// A group write this soon after the last one finds the thread busy: its leader yields
/// once before writing, so that events of calls already ready join the write.
pub const BUSY_WRITE_GAP: Duration = Duration::from_micros(300);

/// Where a group writes its events at once.
pub(super) enum Target {
    /// The spool, as the journal of durable events; the drainer, woken after each write,
    /// moves them to the log.
    Spool {
        spool: Arc<dyn Spool>,
        wake: Arc<Notify>,
    },
    /// The event log.
    Log(Arc<dyn EventAppender>),
}

/// The groups of durable events being written on callers' threads, one per thread.
pub(super) struct GroupCommit {
    target: Target,
    stats: Arc<EmitterStats>,
    /// How the group's frames write events.
    format: EventFormat,
    /// Writes closer together than this make a leader yield first ([`BUSY_WRITE_GAP`]).
    busy_gap: Duration,
    /// Indexed by the calling thread's [`thread_group`], modulo their number.
    groups: Box<[Mutex<Group>]>,
}

#[derive(Default)]
struct Group {
    /// A leader is writing.
    appending: bool,
    /// Events that joined while it writes, for its next round.
    waiting: Vec<PendingEvent>,
    /// When the last write ended.
    last_write: Option<Instant>,
}

/// How an event joined its thread's group.
pub(super) enum Joined {
    /// A leader is writing or about to: it writes this event too.
    Follower,
    /// This caller leads group `group` (see [`GroupCommit::lead`]); `busy` when the group
    /// wrote moments ago, so the caller should let ready tasks run first.
    Leader { group: usize, busy: bool },
}

/// The calling thread's group number: given on the thread's first call, in turn.
fn thread_group() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static GROUP: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    GROUP.with(|group| *group)
}

impl GroupCommit {
    /// A group over the spool when it takes writes at once, else over the log when it
    /// does; `None` when neither does.
    pub(super) fn over(
        log: &Arc<dyn EventAppender>,
        spool: Option<(&Arc<dyn Spool>, &Arc<Notify>)>,
        stats: &Arc<EmitterStats>,
        format: EventFormat,
    ) -> Option<Self> {
        let target = match spool {
            Some((spool, wake)) if matches!(spool.push_now(&[]), Some(Ok(()))) => Target::Spool {
                spool: Arc::clone(spool),
                wake: Arc::clone(wake),
            },
            _ if store::appends_on_the_calling_thread(log.as_ref()) => Target::Log(Arc::clone(log)),
            _ => return None,
        };
        Some(Self {
            target,
            stats: Arc::clone(stats),
            format,
            busy_gap: BUSY_WRITE_GAP,
            groups: (0..THREAD_GROUPS)
                .map(|_| Mutex::new(Group::default()))
                .collect(),
        })
    }

    /// The same group with another busy gap (tests).
    #[cfg(test)]
    pub(super) fn with_busy_gap(mut self, busy_gap: Duration) -> Self {
        self.busy_gap = busy_gap;
        self
    }

    /// The same writes with one group for every thread (tests of joins across threads).
    #[cfg(test)]
    pub(super) fn with_one_group(mut self) -> Self {
        self.groups = vec![Mutex::new(Group::default())].into_boxed_slice();
        self
    }

    /// Whether the group writes to the spool (so every durable event keeps its order
    /// behind what the spool holds).
    pub(super) fn journals(&self) -> bool {
        matches!(self.target, Target::Spool { .. })
    }

    /// Joins `pending` (which carries its acknowledgement) to its thread's group. Appends it, and
    /// what joins meanwhile, when no append is running; otherwise leaves it to the running
    /// one. Returns the events that were not appended: the caller hands them to the writer.
    /// A leader on a busy thread yields once before it writes, so the events of tasks
    /// already ready share its write. Should this future be dropped during that yield, the
    /// lead is taken on the spot (see [`DeferredLead`]).
    pub(super) async fn join_batching(
        &self,
        pending: PendingEvent,
        writer: &tokio::sync::mpsc::Sender<PendingEvent>,
    ) -> Vec<PendingEvent> {
        match self.enter(pending) {
            Joined::Follower => Vec::new(),
            Joined::Leader { group, busy: false } => self.lead(group),
            Joined::Leader { group, busy: true } => {
                // The group is the one entered: on a runtime that moves tasks between
                // threads, the call may resume on another.
                let deferred = DeferredLead {
                    commit: self,
                    group,
                    writer,
                    pending: true,
                };
                tokio::task::yield_now().await;
                deferred.take()
            }
        }
    }

    /// Adds `pending` to the events waiting in the calling thread's group; the caller
    /// leads when no write of that group is running.
    pub(super) fn enter(&self, pending: PendingEvent) -> Joined {
        let index = thread_group() % self.groups.len();
        let mut group = self.lock(index);
        group.waiting.push(pending);
        if group.appending {
            return Joined::Follower;
        }
        group.appending = true;
        let busy = group
            .last_write
            .is_some_and(|at| at.elapsed() < self.busy_gap);
        Joined::Leader { group: index, busy }
    }

    /// The leader's work on group `index`: writes what waits, round after round, until
    /// nothing waits or [`MAX_LEADER_ROUNDS`]. Returns the events that were not appended:
    /// the caller hands them to the writer.
    pub(super) fn lead(&self, index: usize) -> Vec<PendingEvent> {
        let mut batch = std::mem::take(&mut self.lock(index).waiting);
        for _round in 0..MAX_LEADER_ROUNDS {
            let appended = self.append(batch);
            let mut group = self.lock(index);
            group.last_write = Some(Instant::now());
            if let Err(mut left) = appended {
                group.appending = false;
                left.append(&mut group.waiting);
                drop(group);
                self.stats
                    .group_handoffs
                    .fetch_add(left.len() as u64, Ordering::Relaxed);
                return left;
            }
            if group.waiting.is_empty() {
                group.appending = false;
                return Vec::new();
            }
            batch = std::mem::take(&mut group.waiting);
        }
        let mut group = self.lock(index);
        group.appending = false;
        let left = std::mem::take(&mut group.waiting);
        drop(group);
        self.stats
            .group_handoffs
            .fetch_add(left.len() as u64, Ordering::Relaxed);
        left
    }

    /// Writes one batch at once and acknowledges it; gives the batch back when the target
    /// did not take every record.
    fn append(&self, batch: Vec<PendingEvent>) -> Result<(), Vec<PendingEvent>> {
        let storage = match self.target {
            Target::Spool { .. } => Storage::Journal,
            Target::Log(_) => Storage::Log,
        };
        let records = encode_batch(&batch, self.format, storage, &self.stats);
        match self.write(&records) {
            Some(Ok(())) => {
                self.stats.group_commits.fetch_add(1, Ordering::Relaxed);
                for pending in batch {
                    if let Some(acknowledge) = pending.durable {
                        let _ = acknowledge.send(());
                    }
                }
                Ok(())
            }
            Some(Err(error)) => {
                tracing::warn!(error = %error, events = batch.len(), "usage events could not be written at once; the writer retries them");
                Err(batch)
            }
            None => Err(batch),
        }
    }

    /// One write to the target: `None` when it cannot take the records at once.
    fn write(&self, records: &[LogRecord]) -> Option<store::Result<()>> {
        match &self.target {
            Target::Spool { spool, wake } => {
                let pushed = spool.push_now(records);
                if matches!(pushed, Some(Ok(()))) {
                    wake.notify_one();
                }
                pushed
            }
            Target::Log(log) => match log.append_now(records)? {
                Ok(results)
                    if results.len() == records.len() && results.iter().all(Result::is_ok) =>
                {
                    let events: usize = records
                        .iter()
                        .map(|record| record_event_count(&record.data))
                        .sum();
                    self.stats
                        .appended
                        .fetch_add(events as u64, Ordering::Relaxed);
                    Some(Ok(()))
                }
                // Some records failed: the writer sends the whole batch again (consumers
                // drop the repeats by producer sequence).
                Ok(_) => None,
                Err(error) => Some(Err(error)),
            },
        }
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Group> {
        self.groups[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many events wait for the running appends, in every group (tests).
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        (0..self.groups.len())
            .map(|index| self.lock(index).waiting.len())
            .sum()
    }
}

/// A lead that was put off for one yield. Dropped before it is taken (the caller's future
/// was dropped mid-yield), it leads at once, so no follower waits for a leader that is
/// gone, and hands what the target did not take to the writer.
pub(super) struct DeferredLead<'a> {
    commit: &'a GroupCommit,
    /// The group this caller leads.
    group: usize,
    writer: &'a tokio::sync::mpsc::Sender<PendingEvent>,
    /// Not yet taken by its caller.
    pending: bool,
}

impl<'a> DeferredLead<'a> {
    /// Leads now; returns what the target did not take.
    fn take(mut self) -> Vec<PendingEvent> {
        self.pending = false;
        self.commit.lead(self.group)
    }
}

impl Drop for DeferredLead<'_> {
    fn drop(&mut self) {
        if !self.pending {
            return;
        }
        for pending in self.commit.lead(self.group) {
            let event_id = pending.event.event_id;
            if self.writer.try_send(pending).is_err() {
                tracing::error!(%event_id, "a usage event could not be handed to the writer; it was not logged");
            }
        }
    }
}

#[cfg(test)]
#[path = "group_commit_tests.rs"]
pub(super) mod tests;
