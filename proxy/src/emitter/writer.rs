//! The batch writer: one background task takes queued events off the channel, batches
//! them, encodes each batch as a frame (one log record), and hands it to the spool route.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use schemas::usage_frame::{FrameBuilder, FrameCodec, MAX_FRAME_LINES_BYTES};
use store::{EventAppender, LogRecord};
use tokio::sync::{mpsc, oneshot};

use super::handle::PendingEvent;
use super::metrics::EmitterStats;
use super::spool_route::SpoolRoute;

/// Most events in one batch (Kinesis PutRecords takes 500 records; a batch is usually one).
pub const MAX_BATCH_RECORDS: usize = 500;
/// Longest a received event waits for more to batch with.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);
/// How frames are compressed: zstd makes the event lines about ten times smaller, which is
/// what Kinesis bills (on demand, per KiB in and out) and what the embedded log stores.
pub const FRAME_CODEC: FrameCodec = FrameCodec::Zstd;

/// Encodes a batch as frames (`schemas::usage_frame`): usually one, more only when the
/// lines pass [`MAX_FRAME_LINES_BYTES`]. Every record's partition key is the producer (this
/// process), so its records reach one partition, in order. An event that cannot be
/// encoded is counted and logged, never sent half-written.
fn encode_batch(events: &[PendingEvent], stats: &EmitterStats) -> Vec<LogRecord> {
    let mut records = Vec::with_capacity(1);
    let mut frame = FrameBuilder::new();
    let mut producer = String::new();
    let finish = |frame: FrameBuilder, producer: &str, records: &mut Vec<LogRecord>| {
        if frame.is_empty() {
            return;
        }
        match frame.finish(FRAME_CODEC) {
            Ok(data) => records.push(LogRecord {
                partition_key: producer.to_owned(),
                data: Bytes::from(data),
            }),
            Err(error) => {
                stats.encode_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %error, "a frame of usage events could not be compressed");
            }
        }
    };
    for pending in events {
        let event = &pending.event;
        if producer != event.proxy_instance || frame.lines_bytes() >= MAX_FRAME_LINES_BYTES {
            finish(std::mem::take(&mut frame), &producer, &mut records);
            producer.clone_from(&event.proxy_instance);
        }
        if let Err(error) = frame.push(event) {
            stats.encode_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(event_id = %event.event_id, error = %error, "usage event could not be encoded");
        }
    }
    finish(frame, &producer, &mut records);
    records
}

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
        let records = encode_batch(&batch, &route.stats);
        route.deliver(log.as_ref(), records).await;
        for pending in batch.drain(..) {
            if let Some(acknowledge) = pending.durable {
                let _ = acknowledge.send(());
            }
        }
    }
}
