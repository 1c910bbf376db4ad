//! The batch writer: one background task takes queued events off the channel, batches
//! them, encodes each batch as a frame (one log record), and hands it to the spool route.

use std::sync::Arc;
use std::time::Duration;

use store::EventAppender;
use tokio::sync::{mpsc, oneshot};

use super::pending::{PendingEvent, Storage, encode_batch};
use super::spool_route::SpoolRoute;

/// Most events in one batch (Kinesis PutRecords takes 500 records; a batch is usually one).
pub const MAX_BATCH_RECORDS: usize = 500;
/// Longest a received event waits for more to batch with.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);

/// The writer task: batches queued events (lingering when nobody waits), delivers each
/// batch, and acknowledges durable ones. Returns once the queue is closed and empty.
pub(super) async fn write_events(
    log: Arc<dyn EventAppender>,
    mut receiver: mpsc::Receiver<PendingEvent>,
    mut close: oneshot::Receiver<()>,
    route: SpoolRoute,
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
        let records = encode_batch(&batch, route.format, Storage::Log, &route.stats);
        route.deliver(log.as_ref(), records).await;
        for pending in batch.drain(..) {
            if let Some(acknowledge) = pending.durable {
                let _ = acknowledge.send(());
            }
        }
    }
}
