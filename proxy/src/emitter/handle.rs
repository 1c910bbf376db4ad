//! The handle requests record their usage events with; it alone decides how durable an
//! event is before its call is answered ([`Durability`]), and stamps each event with this
//! process's instance and sequence number.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use schemas::{Name, UsageEvent};
use store::Spool;
use tokio::sync::{mpsc, oneshot};

use super::group_commit::GroupCommit;
use super::pending::PendingEvent;
use super::spool_route::Backpressure;

/// A store write that closes a call together with its event (a strict reservation's
/// settlement): it runs in the background, or before the answer when events do.
pub type ClosingWrite = BoxFuture<'static, ()>;

/// What a call's answer waits for. The emitter alone decides; callers record events
/// through [`EmitterHandle::record`] and [`EmitterHandle::answer_and_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Events are queued for the log and the answer does not wait for it (servers, whose
    /// spool keeps what the log does not take in time).
    #[default]
    Queued,
    /// The answer waits until the event, and the call's closing write, are durable
    /// (Lambda, whose process may be frozen as soon as it answers).
    BeforeAnswer,
}

/// The handle requests use to emit events.
#[derive(Clone)]
pub struct EmitterHandle {
    sender: mpsc::Sender<PendingEvent>,
    sequence: Arc<AtomicU64>,
    instance: Arc<str>,
    durability: Durability,
    spool: Option<(Arc<dyn Spool>, u64)>,
    backpressure: Arc<Backpressure>,
    /// Durable events are appended on the callers' threads when the log allows it.
    group: Option<Arc<GroupCommit>>,
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
    /// A handle queueing into `sender`, its sequence starting at 1.
    pub(super) fn new(
        sender: mpsc::Sender<PendingEvent>,
        instance: String,
        durability: Durability,
        spool: Option<(Arc<dyn Spool>, u64)>,
        backpressure: Arc<Backpressure>,
        group: Option<Arc<GroupCommit>>,
    ) -> Self {
        Self {
            sender,
            sequence: Arc::new(AtomicU64::new(0)),
            instance: Arc::from(instance),
            durability,
            spool,
            backpressure,
            group,
        }
    }

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

    /// How durable an event is before its call is answered.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The next `instance_seq`, starting at 1.
    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Stamps this process's `proxy_instance` and the next `instance_seq` (gapless, 1, 2,
    /// 3… per process, taken when the call's event is recorded at the end of the call).
    fn stamp(&self, mut event: UsageEvent) -> UsageEvent {
        event.proxy_instance = Name::from(Arc::clone(&self.instance));
        event.instance_seq = self.next_sequence();
        event
    }

    /// Records a call's event, with its closing write, as the durability requires before
    /// the call is answered: queued (waiting only while the queue is full) with the write
    /// in the background, or both durable when this returns.
    pub async fn record(&self, event: UsageEvent, closing_write: Option<ClosingWrite>) {
        let event = self.stamp(event);
        match self.durability {
            Durability::Queued => {
                if let Some(write) = closing_write {
                    run_in_background(write);
                }
                self.queue(event).await;
            }
            Durability::BeforeAnswer => {
                let write = async {
                    if let Some(write) = closing_write {
                        write.await;
                    }
                };
                futures::join!(write, self.queue_durable(event));
            }
        }
    }

    /// Records the event of a call nobody waits for (its client has gone): queued, with
    /// the closing write, in the background.
    pub fn record_in_background(&self, event: UsageEvent, closing_write: Option<ClosingWrite>) {
        let event = self.stamp(event);
        if let Some(write) = closing_write {
            run_in_background(write);
        }
        let handle = self.clone();
        run_in_background(Box::pin(async move { handle.queue(event).await }));
    }

    /// Answers a call and records its event, in the order the durability requires.
    /// `client_waiting` says whether the client is still there to be answered; `answer`
    /// delivers the answer and says whether the client took it; `event_for` builds the
    /// event (and settles the call) knowing whether the answer reaches the client.
    /// - [`Durability::Queued`]: the answer goes first; an answer the client did not take
    ///   is recorded as such (`client_aborted`).
    /// - [`Durability::BeforeAnswer`]: the event is made durable first, then the client is
    ///   answered. A client that hung up before its answer was ready is recorded as
    ///   `client_aborted`; one that hangs up in the instant between the event and the
    ///   answer is recorded as answered.
    pub async fn answer_and_record(
        &self,
        client_waiting: impl FnOnce() -> bool,
        answer: impl FnOnce() -> bool,
        event_for: impl FnOnce(bool) -> (UsageEvent, Option<ClosingWrite>),
    ) {
        match self.durability {
            Durability::Queued => {
                let delivered = answer();
                let (event, closing_write) = event_for(delivered);
                self.record(event, closing_write).await;
            }
            Durability::BeforeAnswer => {
                let (event, closing_write) = event_for(client_waiting());
                self.record(event, closing_write).await;
                answer();
            }
        }
    }

    /// Queues an event for the log and returns at once. Waits only when the queue is full;
    /// fails (and logs) only after shutdown.
    async fn queue(&self, event: UsageEvent) {
        let event_id = event.event_id;
        let pending = PendingEvent {
            event,
            durable: None,
        };
        if self.sender.send(pending).await.is_err() {
            tracing::error!(%event_id, "usage event emitted after the emitter stopped; it was not logged");
        }
    }

    /// Makes an event durable and waits for it: written on this thread with whatever
    /// joined meanwhile ([`GroupCommit`]) to the spool, or to the log when it allows it and
    /// the spool is empty (spooled events go first); otherwise queued for the writer, which
    /// batches it with concurrent events.
    async fn queue_durable(&self, event: UsageEvent) {
        let event_id = event.event_id;
        let (acknowledge, acknowledged) = oneshot::channel();
        let pending = PendingEvent {
            event,
            durable: Some(acknowledge),
        };
        let for_writer = match &self.group {
            Some(group) if group.journals() || !self.spool_holds_records() => {
                group.join_batching(pending, &self.sender).await
            }
            _ => vec![pending],
        };
        for pending in for_writer {
            let event_id = pending.event.event_id;
            if self.sender.send(pending).await.is_err() {
                tracing::error!(%event_id, "usage event emitted after the emitter stopped; it was not logged");
            }
        }
        if acknowledged.await.is_err() {
            tracing::error!(%event_id, "usage event emitted after the emitter stopped; it was not logged");
        }
    }

    /// The group commit, when durable events use it (tests).
    #[cfg(test)]
    pub(super) fn group_for_tests(&self) -> Option<Arc<GroupCommit>> {
        self.group.clone()
    }

    fn spool_holds_records(&self) -> bool {
        self.spool
            .as_ref()
            .is_some_and(|(spool, _)| spool.level().records > 0)
    }
}

/// Runs a write on the current runtime without waiting for it.
fn run_in_background(write: ClosingWrite) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(write);
        }
        Err(_) => tracing::error!("no runtime to run a usage event's write"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use chrono::Utc;
    use schemas::Outcome;
    use store::EventReader;
    use store::memory::MemoryStore;

    use super::*;
    use crate::emitter::EventEmitter;

    fn event() -> UsageEvent {
        store::contract::event_on("c", Utc::now().date_naive(), "m", Outcome::Success, 1, 1)
    }

    /// Runs `answer_and_record` and returns the order of the steps as they happened.
    /// `delivered` is both whether the client is still waiting and whether it takes the
    /// answer.
    async fn steps_of(durability: Durability, delivered: bool) -> (Vec<String>, Vec<UsageEvent>) {
        let store = Arc::new(MemoryStore::new());
        let (emitter, handle) = EventEmitter::start_with(
            store.clone(),
            "instance".into(),
            durability,
            None,
            schemas::usage_frame::EventFormat::default(),
        );
        let steps = Arc::new(Mutex::new(Vec::new()));
        let (answer_steps, event_steps, write_steps) =
            (steps.clone(), steps.clone(), steps.clone());
        handle
            .answer_and_record(
                move || delivered,
                move || {
                    answer_steps.lock().unwrap().push("answer".to_owned());
                    delivered
                },
                move |delivered| {
                    event_steps
                        .lock()
                        .unwrap()
                        .push(format!("event (delivered: {delivered})"));
                    let write: ClosingWrite = Box::pin(async move {
                        write_steps.lock().unwrap().push("closing write".to_owned());
                    });
                    (event(), Some(write))
                },
            )
            .await;
        drop(handle);
        emitter.finish(Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let events = store
            .read("0", None, 10)
            .await
            .unwrap()
            .entries
            .iter()
            .flat_map(|entry| schemas::usage_frame::decode_events(&entry.data).unwrap())
            .collect();
        let steps = steps.lock().unwrap().clone();
        (steps, events)
    }

    #[tokio::test]
    async fn queued_answers_first_and_learns_whether_the_client_took_the_answer() {
        let (steps, events) = steps_of(Durability::Queued, false).await;
        assert_eq!(steps[..2], ["answer", "event (delivered: false)"]);
        assert!(steps.contains(&"closing write".to_owned()));
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].proxy_instance.as_str(), events[0].instance_seq),
            ("instance", 1)
        );
    }

    #[tokio::test]
    async fn before_answer_makes_the_event_and_the_closing_write_durable_first() {
        let (steps, events) = steps_of(Durability::BeforeAnswer, true).await;
        assert_eq!(
            steps,
            ["event (delivered: true)", "closing write", "answer"],
            "the closing write runs, and the event is durable, before the answer"
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].instance_seq, 1);
    }

    #[tokio::test]
    async fn before_answer_records_a_client_gone_before_its_answer_as_not_delivered() {
        let (steps, events) = steps_of(Durability::BeforeAnswer, false).await;
        assert_eq!(steps[0], "event (delivered: false)");
        assert_eq!(events.len(), 1);
    }
}
