//! An event on its way to the log, and how a batch of them becomes log records (frames):
//! shared by the writer task and the group commit.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use schemas::UsageEvent;
use schemas::usage_frame::{
    EventFormat, FrameBuilder, FrameCodec, MAX_FRAME_PAYLOAD_BYTES, frame_payload,
};
use store::LogRecord;
use tokio::sync::oneshot;

use super::metrics::EmitterStats;

/// An event on its way to the log, with whom to tell once it is durable.
#[derive(Debug)]
pub(super) struct PendingEvent {
    pub(super) event: UsageEvent,
    pub(super) durable: Option<oneshot::Sender<()>>,
}

/// How [`encode_batch`] stores its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Storage {
    /// For the log: compressed past a KiB (`FrameBuilder::codec`).
    Log,
    /// For the spool, a local journal the drainer reads back: as they are. The drainer
    /// merges a producer's frames and compresses them once, for the log
    /// ([`coalesce_frames`]); compressing here, on the caller's thread, would be undone.
    Journal,
}

/// Encodes a batch as frames of `format` (`schemas::usage_frame`): usually one, more only
/// when the events pass [`MAX_FRAME_PAYLOAD_BYTES`]. Every record's partition key is the producer (this
/// process), so its records reach one partition, in order. An event that cannot be
/// encoded is counted and logged, never sent half-written.
pub(super) fn encode_batch(
    events: &[PendingEvent],
    format: EventFormat,
    storage: Storage,
    stats: &EmitterStats,
) -> Vec<LogRecord> {
    let mut records = Vec::with_capacity(1);
    let mut frame = FrameBuilder::with_format(format);
    let mut producer = String::new();
    let finish = |frame: FrameBuilder, producer: &str, records: &mut Vec<LogRecord>| {
        if frame.is_empty() {
            return;
        }
        let codec = match storage {
            Storage::Log => frame.codec(),
            Storage::Journal => FrameCodec::None,
        };
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
        if producer != event.proxy_instance || frame.payload_bytes() >= MAX_FRAME_PAYLOAD_BYTES {
            finish(
                std::mem::replace(&mut frame, FrameBuilder::with_format(format)),
                &producer,
                &mut records,
            );
            event.proxy_instance.as_str().clone_into(&mut producer);
        }
        if let Err(error) = frame.push(event) {
            stats.encode_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(event_id = %event.event_id, error = %error, "usage event could not be encoded");
        }
    }
    finish(frame, &producer, &mut records);
    records
}

/// Merges consecutive records of one producer and one event format into as few frames as
/// fit [`MAX_FRAME_PAYLOAD_BYTES`]: the spool holds a frame per group commit, often of one event
/// at light load, and the log (Kinesis on demand bills each record as at least 1 KiB)
/// should receive them together. Each event's bytes are kept as they are and in order, so
/// the consumer sees the same events, in the same order, from the same producer. A record
/// that is not a readable frame is passed on as it is, in its place; a run of one record
/// is re-encoded only when it is not stored as the log stores it (a journal's frame past
/// a KiB, stored as it is, is compressed).
pub(super) fn coalesce_frames(records: Vec<LogRecord>) -> Vec<LogRecord> {
    let mut merged: Vec<LogRecord> = Vec::with_capacity(records.len().min(4));
    let mut run: Option<Run> = None;
    for record in records {
        let Some(payload) = frame_payload(&record.data) else {
            Run::flush(run.take(), &mut merged);
            merged.push(record);
            continue;
        };
        let joins = run.as_ref().is_some_and(|run| {
            run.originals[0].partition_key == record.partition_key
                && run.frame.format() == payload.format
                && run.frame.payload_bytes() + payload.bytes.len() <= MAX_FRAME_PAYLOAD_BYTES
        });
        if !joins {
            Run::flush(run.take(), &mut merged);
        }
        let current = run.get_or_insert_with(|| Run {
            originals: Vec::new(),
            frame: FrameBuilder::with_format(payload.format),
            first_codec: payload.codec,
        });
        // Same format, checked above or new: always taken.
        current.frame.push_payload(&payload);
        current.originals.push(record);
    }
    Run::flush(run, &mut merged);
    merged
}

/// Consecutive frames of one producer being merged, and the records they came in.
struct Run {
    originals: Vec<LogRecord>,
    frame: FrameBuilder,
    /// How the run's first record stored its payload.
    first_codec: FrameCodec,
}

impl Run {
    fn flush(run: Option<Self>, merged: &mut Vec<LogRecord>) {
        let Some(Self {
            mut originals,
            frame,
            first_codec,
        }) = run
        else {
            return;
        };
        let codec = frame.codec();
        if originals.len() == 1 && codec == first_codec {
            merged.append(&mut originals);
            return;
        }
        match frame.finish(codec) {
            Ok(data) => merged.push(LogRecord {
                partition_key: std::mem::take(&mut originals[0].partition_key),
                data: Bytes::from(data),
            }),
            // Compression failed: the records go as they came.
            Err(_) => merged.append(&mut originals),
        }
    }
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
        // Version 3 with LZ4; the versions older consumers read with zstd, which they know.
        for (format, events, codec) in [
            (EventFormat::Binary, 1, 0),
            (EventFormat::Binary, 20, 2),
            (EventFormat::BinaryV2, 1, 0),
            (EventFormat::BinaryV2, 20, 1),
            (EventFormat::Json, 20, 1),
        ] {
            let batch = pending(events);
            let records = encode_batch(&batch, format, Storage::Log, &stats);
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].data[4], format.version());
            assert_eq!(
                codec_byte(&records[0]),
                codec,
                "{format:?}, {events} events"
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

    #[test]
    fn the_journal_stores_frames_as_they_are_and_the_log_receives_them_compressed() {
        let stats = EmitterStats::default();
        let batch = pending(20);
        let journal = encode_batch(&batch, EventFormat::Binary, Storage::Journal, &stats);
        assert_eq!(journal.len(), 1);
        assert_eq!(
            codec_byte(&journal[0]),
            0,
            "a journal frame is not compressed"
        );
        let before = events_of(&journal);

        // Alone in the drainer's batch, it is compressed for the log all the same.
        let merged = coalesce_frames(journal.clone());
        assert_eq!(merged.len(), 1);
        assert_eq!(
            codec_byte(&merged[0]),
            2,
            "20 events reach the log with LZ4"
        );
        assert!(merged[0].data.len() < journal[0].data.len());
        assert_eq!(events_of(&merged), before);

        // A frame the log would store as it is passes unchanged.
        let small = encode_batch(&pending(1), EventFormat::Binary, Storage::Journal, &stats);
        assert_eq!(coalesce_frames(small.clone())[0].data, small[0].data);
        // And one the log's way (compressed) is not compressed again.
        let logged = encode_batch(&batch, EventFormat::Binary, Storage::Log, &stats);
        assert_eq!(coalesce_frames(logged.clone())[0].data, logged[0].data);
    }

    /// One record per event, as the group commit journals them at light load.
    fn one_event_records(producer: &str, first_seq: u64, count: usize) -> Vec<LogRecord> {
        let stats = EmitterStats::default();
        pending(count)
            .into_iter()
            .enumerate()
            .map(|(index, mut pending)| {
                pending.event.proxy_instance = producer.into();
                pending.event.instance_seq = first_seq + index as u64;
                encode_batch(
                    std::slice::from_ref(&pending),
                    EventFormat::Binary,
                    Storage::Journal,
                    &stats,
                )
                .remove(0)
            })
            .collect()
    }

    fn events_of(records: &[LogRecord]) -> Vec<(String, u64)> {
        records
            .iter()
            .flat_map(|record| decode_events(&record.data).unwrap())
            .map(|event| (event.proxy_instance.to_string(), event.instance_seq))
            .collect()
    }

    #[test]
    fn a_producers_one_event_frames_reach_the_log_as_one_record_in_order() {
        let records = one_event_records("p", 1, 30);
        let before = events_of(&records);
        let merged = coalesce_frames(records);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].partition_key, "p");
        assert_eq!(
            codec_byte(&merged[0]),
            2,
            "30 events are compressed, with LZ4"
        );
        assert_eq!(events_of(&merged), before);
    }

    #[test]
    fn merging_keeps_producers_apart_and_other_records_in_their_place() {
        let mut records = one_event_records("p", 1, 2);
        let legacy = LogRecord {
            partition_key: "p".into(),
            data: Bytes::from(pending(1)[0].event.encode_json().unwrap()),
        };
        let damaged = LogRecord {
            partition_key: "p".into(),
            data: Bytes::from_static(b"TGUF\x01\x00\x00\x00\x05\x00\x00\x00\x03\x00\x00\x00abc"),
        };
        records.push(legacy.clone());
        let single = one_event_records("p", 3, 1).remove(0);
        records.push(single.clone());
        records.extend(one_event_records("q", 1, 3));
        records.push(damaged.clone());
        records.extend(one_event_records("q", 4, 2));
        let merged = coalesce_frames(records);
        let shape: Vec<(String, usize)> = merged
            .iter()
            .map(|record| {
                (
                    record.partition_key.clone(),
                    schemas::usage_frame::record_event_count(&record.data),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("p".to_owned(), 2),
                ("p".to_owned(), 1),
                ("p".to_owned(), 1),
                ("q".to_owned(), 3),
                ("p".to_owned(), 5),
                ("q".to_owned(), 2),
            ]
        );
        assert_eq!(
            merged[1], legacy,
            "a record from before frames goes as it is"
        );
        assert_eq!(
            merged[4], damaged,
            "a frame that does not read goes as it is"
        );
        assert_eq!(merged[2], single, "a run of one is not re-encoded");
    }

    #[test]
    fn merged_frames_stay_within_a_records_size() {
        let mut big = pending(1).remove(0);
        big.event.model_id = "m".repeat(300 * 1024).into();
        let stats = EmitterStats::default();
        let records: Vec<LogRecord> = (0..7)
            .map(|seq| {
                let mut event = PendingEvent {
                    event: big.event.clone(),
                    durable: None,
                };
                event.event.instance_seq = seq + 1;
                encode_batch(
                    std::slice::from_ref(&event),
                    EventFormat::Binary,
                    Storage::Log,
                    &stats,
                )
                .remove(0)
            })
            .collect();
        let merged = coalesce_frames(records);
        let counts: Vec<usize> = merged
            .iter()
            .map(|record| schemas::usage_frame::record_event_count(&record.data))
            .collect();
        assert_eq!(
            counts,
            vec![2, 2, 2, 1],
            "900 KiB of events at most per frame"
        );
        let seqs: Vec<u64> = events_of(&merged).into_iter().map(|(_, seq)| seq).collect();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    }

    #[test]
    fn frames_of_different_event_formats_are_never_merged_into_one() {
        let stats = EmitterStats::default();
        let batch = pending(5);
        let mut records = Vec::new();
        for (events, format) in batch.chunks(1).zip([
            EventFormat::Json,
            EventFormat::Json,
            EventFormat::BinaryV2,
            EventFormat::Binary,
            EventFormat::Binary,
        ]) {
            let record = encode_batch(events, format, Storage::Log, &stats).remove(0);
            assert_eq!(record.data[4], format.version());
            records.push(record);
        }
        let merged = coalesce_frames(records);
        let versions: Vec<(u8, usize)> = merged
            .iter()
            .map(|record| {
                let count = schemas::usage_frame::record_event_count(&record.data);
                (record.data[4], count)
            })
            .collect();
        assert_eq!(versions, vec![(1, 2), (2, 1), (3, 2)]);
        let seqs: Vec<u64> = events_of(&merged).into_iter().map(|(_, seq)| seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }
}
