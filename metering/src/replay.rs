//! Replay: rebuilds the counters and the Parquet files into fresh projections from the raw
//! events (the event log on the embedded backend, the raw archive on AWS, or the Kinesis
//! stream's window when no archive is configured; the report names the source).
//!
//! Deterministic by construction, so running it twice gives the same result: raw records
//! are decoded, deduplicated by `event_id` (the first copy wins), filtered like the
//! consumer filters them (undecodable records and unknown customers are not metered), and
//! sorted by `event_id`. Counters are applied as the records of a partition named `replay`,
//! numbered in that order, so a second run counts nothing again (the producers' numbers are
//! taken). Parquet is written per day as
//! `usage/dt=YYYY-MM-DD/replay-NNNNN.parquet`, each file holding up to
//! [`REPLAY_ROWS_PER_FILE`] events in `event_id` order, so a second run writes the same
//! files with the same bytes.

use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use schemas::parquet_codec::encode_events_parquet;
use store::backend::Ports;
use store::{Counters, SourcedEvent};

use crate::Result;
use crate::object_keys::ReplayObjectKey;
use crate::parquet_sink::group_by_day;
use crate::raw::{RawSourceReport, meterable_events};

/// Events per replayed Parquet file (large files, as Athena prefers).
pub const REPLAY_ROWS_PER_FILE: usize = 1_000_000;
/// Events per counters `apply`.
const APPLY_CHUNK: usize = 500;

/// Where a replay writes.
#[derive(Clone)]
pub struct ReplayTarget {
    pub counters: Arc<dyn Counters>,
    pub objects: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for ReplayTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ReplayTarget")
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    /// Where the raw events were read: the archive, the embedded log or the stream.
    pub source: RawSourceReport,
    pub raw_records: usize,
    pub duplicates_dropped: usize,
    pub unmeterable: usize,
    pub events: usize,
    /// Events the target's counters counted for the first time (0 on a second run).
    pub newly_counted: usize,
    pub days: usize,
    pub parquet_objects: usize,
}

/// Replays every raw event of `source` into `target`. `progress(done, total)` is called
/// as events are applied.
pub async fn replay(
    source: &Ports,
    target: &ReplayTarget,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ReplayReport> {
    let sorted = meterable_events(source).await?;
    let mut events = sorted.meterable;
    events.sort_by_key(|event| event.event_id);
    let total = events.len() as u64;

    let mut newly_counted = 0;
    for (index, chunk) in events.chunks(APPLY_CHUNK).enumerate() {
        let first_position = index * APPLY_CHUNK + 1;
        let partition: std::sync::Arc<str> = "replay".into();
        let sourced: Vec<SourcedEvent> = (first_position..)
            .zip(chunk)
            .map(|(position, event)| SourcedEvent {
                partition: partition.clone(),
                position: position.to_string().into(),
                event: event.clone(),
            })
            .collect();
        newly_counted += target.counters.apply(&sourced).await?.counted;
        progress(((index * APPLY_CHUNK) + chunk.len()) as u64, total);
    }

    let days = group_by_day(&events);
    let mut parquet_objects = 0;
    for (day, day_events) in &days {
        for (index, chunk) in day_events.chunks(REPLAY_ROWS_PER_FILE).enumerate() {
            let bytes = encode_events_parquet(chunk)?;
            target
                .objects
                .put(
                    &ReplayObjectKey { day: *day, index }.to_path(),
                    PutPayload::from(bytes),
                )
                .await?;
            parquet_objects += 1;
        }
    }
    Ok(ReplayReport {
        source: sorted.source,
        raw_records: sorted.records,
        duplicates_dropped: sorted.duplicates,
        unmeterable: sorted.undecodable + sorted.unknown_customer.len(),
        events: events.len(),
        newly_counted,
        days: days.len(),
        parquet_objects,
    })
}
