//! An event on its way to the log, and how a batch of them becomes log records (frames):
//! shared by the writer task and the group commit.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use schemas::UsageEvent;
use schemas::usage_frame::{FRAME_HEADER_LEN, FrameBuilder, FrameCodec, MAX_FRAME_LINES_BYTES};
use store::LogRecord;
use tokio::sync::oneshot;

use super::metrics::EmitterStats;

/// An event on its way to the log, with whom to tell once it is durable.
#[derive(Debug)]
pub(super) struct PendingEvent {
    pub(super) event: UsageEvent,
    pub(super) durable: Option<oneshot::Sender<()>>,
}

/// A frame whose JSON lines fit in one KiB (with the frame's header) is stored as it is;
/// a larger one is compressed with zstd, which makes the lines about ten times smaller.
/// Kinesis bills each record by the KiB rounded up, so compressing a small frame (one or
/// two events) saves nothing there, and for one event zstd costs about 8 µs of a durable
/// call's 25 (`cargo bench -p proxy --bench emitter`).
pub const COMPRESS_ABOVE_BYTES: usize = 1024 - FRAME_HEADER_LEN;

/// How a frame with `lines_bytes` of JSON lines is stored.
fn frame_codec(lines_bytes: usize) -> FrameCodec {
    if lines_bytes > COMPRESS_ABOVE_BYTES {
        FrameCodec::Zstd
    } else {
        FrameCodec::None
    }
}

/// Encodes a batch as frames (`schemas::usage_frame`): usually one, more only when the
/// lines pass [`MAX_FRAME_LINES_BYTES`]. Every record's partition key is the producer (this
/// process), so its records reach one partition, in order. An event that cannot be
/// encoded is counted and logged, never sent half-written.
pub(super) fn encode_batch(events: &[PendingEvent], stats: &EmitterStats) -> Vec<LogRecord> {
    let mut records = Vec::with_capacity(1);
    let mut frame = FrameBuilder::new();
    let mut producer = String::new();
    let finish = |frame: FrameBuilder, producer: &str, records: &mut Vec<LogRecord>| {
        if frame.is_empty() {
            return;
        }
        let codec = frame_codec(frame.lines_bytes());
        match frame.finish(codec) {
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use schemas::Outcome;
    use schemas::usage_frame::decode_events;

    use super::*;

    fn pending(count: usize) -> Vec<PendingEvent> {
        (0..count)
            .map(|index| {
                let mut event = store::contract::event_on(
                    "c",
                    Utc::now().date_naive(),
                    "m",
                    Outcome::Success,
                    1,
                    1,
                );
                event.proxy_instance = "instance".into();
                event.instance_seq = index as u64 + 1;
                PendingEvent {
                    event,
                    durable: None,
                }
            })
            .collect()
    }

    /// The frame's codec byte (after the magic and the version).
    fn codec_byte(record: &LogRecord) -> u8 {
        record.data[5]
    }

    #[test]
    fn a_frame_that_fits_in_a_kib_is_stored_as_it_is_and_a_larger_one_compressed() {
        let stats = EmitterStats::default();
        for (events, codec) in [(1, FrameCodec::None), (20, FrameCodec::Zstd)] {
            let batch = pending(events);
            let records = encode_batch(&batch, &stats);
            assert_eq!(records.len(), 1);
            assert_eq!(
                codec_byte(&records[0]),
                match codec {
                    FrameCodec::None => 0,
                    FrameCodec::Zstd => 1,
                },
                "{events} events"
            );
            let decoded = decode_events(&records[0].data).unwrap();
            assert_eq!(decoded.len(), events);
            assert!(
                decoded
                    .iter()
                    .zip(&batch)
                    .all(|(decoded, pending)| decoded.event_id == pending.event.event_id)
            );
        }
    }
}
