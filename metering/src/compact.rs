//! Compaction: merges one day's Parquet files into large ones holding exactly the day's
//! unique events.
//!
//! **Which files are merged.** A batch file `part-<partition>-<first position>.parquet` can
//! be rewritten by the consumer until its batch is committed: a batch retried after a crash
//! starts at the same position and writes the same key, possibly with more events. Merging
//! and deleting such a file while it can still be rewritten would let the rewrite bring its
//! rows back next to the merged copy. So a batch file is merged only once it can no longer
//! change:
//! - the Parquet projection's progress for its partition (`state/parquet/<partition>.json`,
//!   kept by the server consumer and the Lambda alike) has reached its first position: the
//!   flush that wrote it finished, and the files of a flush that did not (listed in
//!   `pending`, after `through`) are never merged; or
//! - its partition has no progress stored (files written before it existed) and it was last
//!   written longer ago than the longest a record is retried (`--max-record-age-hours`).
//!
//! Merged and replayed files are never rewritten and are always merged. Files a writer adds
//! while compaction runs are not in its listing and stay untouched for the next run.
//!
//! **Idempotent and deterministic.** The output is named after a digest of the merged
//! events' ids (`compacted-<digest>-<i>of<n>.parquet`), with rows sorted by `event_id`, so
//! running it again over the same events writes the same files (and finds nothing to do).
//! The outputs are written before any input is deleted: a crash in between leaves both,
//! which the next run merges again; `reconcile` reports the duplicated rows meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use schemas::UsageEvent;
use schemas::parquet_codec::{decode_events_parquet, encode_events_parquet};
use uuid::Uuid;

use crate::object_keys::{CompactedObjectKey, DayFile, classify_day_file, usage_day_prefix};
use crate::parquet_projection::ParquetState;
use crate::{MeteringError, Result};

/// Smallest merged file when a day has more than this much data.
pub const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// How compaction decides which batch files are settled.
#[derive(Clone)]
pub struct CompactionSettings {
    /// A batch file of a partition without Parquet progress, older than this, can no
    /// longer be rewritten.
    pub settle_after: Duration,
    /// Smallest merged file (tests lower it).
    pub target_file_bytes: u64,
}

impl std::fmt::Debug for CompactionSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CompactionSettings")
            .field("settle_after", &self.settle_after)
            .finish()
    }
}

/// What one compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactionReport {
    pub day: NaiveDate,
    pub files_merged: usize,
    /// Batch files left for a later run because they may still be rewritten.
    pub files_not_settled: usize,
    pub rows_read: usize,
    pub duplicates_dropped: usize,
    pub events: usize,
    pub files_written: usize,
    pub bytes_written: u64,
}

/// Orders log positions: numeric strings by value (Kinesis sequence numbers and the
/// embedded log's zero-padded numbers), others as text.
pub fn position_at_or_after(position: &str, reference: &str) -> bool {
    let numeric = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if numeric(position) && numeric(reference) {
        store::dedupe::compare_positions(position, reference) != std::cmp::Ordering::Less
    } else {
        position >= reference
    }
}

/// A stable digest of a set of event ids (order-independent), for output names.
pub fn digest(ids: &[Uuid]) -> String {
    let mut sorted: Vec<&Uuid> = ids.iter().collect();
    sorted.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for id in sorted {
        for byte in id.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

async fn is_settled(
    objects: &Arc<dyn ObjectStore>,
    settings: &CompactionSettings,
    progress: &mut HashMap<String, ParquetState>,
    meta: &ObjectMeta,
    partition: &str,
    first_position: &str,
) -> Result<bool> {
    if !progress.contains_key(partition) {
        let state = ParquetState::load(objects, partition).await?;
        progress.insert(partition.to_owned(), state);
    }
    if let Some(state) = progress.get(partition)
        && state.stored
    {
        return Ok(state.covers(first_position));
    }
    let age = Utc::now() - meta.last_modified;
    Ok(age.to_std().is_ok_and(|age| age >= settings.settle_after))
}

/// The days a scheduled run compacts at `now` (it runs hourly): today and yesterday, whose
/// files settle as the consumers write them out; and, in the 01:00 run, the newest day all
/// of whose batch files have settled by age (files of partitions without Parquet progress).
/// Oldest first, without repeats.
pub fn scheduled_days(
    now: chrono::DateTime<chrono::Utc>,
    settle_after: Duration,
) -> Vec<NaiveDate> {
    use chrono::Timelike;
    let today = now.date_naive();
    let yesterday = today - chrono::Days::new(1);
    let settled = chrono::Duration::from_std(settle_after)
        .ok()
        .filter(|_| now.hour() == 1)
        .and_then(|settle| now.checked_sub_signed(settle))
        .map(|horizon| horizon.date_naive() - chrono::Days::new(1));
    let mut days: Vec<NaiveDate> = settled.into_iter().chain([yesterday, today]).collect();
    days.sort_unstable();
    days.dedup();
    days
}

/// Compacts one day under `objects`: reads its settled files, drops repeated events,
/// writes the merged files, then deletes the inputs that are not among the outputs.
pub async fn compact_day(
    objects: &Arc<dyn ObjectStore>,
    day: NaiveDate,
    settings: &CompactionSettings,
) -> Result<CompactionReport> {
    let mut report = CompactionReport {
        day,
        ..CompactionReport::default()
    };
    let inputs = settled_inputs(objects, day, settings, &mut report).await?;
    if is_one_compaction(&inputs) {
        return Ok(report);
    }
    let (rows, input_bytes) = unique_rows(objects, &inputs, &mut report).await?;
    if rows.is_empty() {
        return Ok(report);
    }
    let outputs = output_paths(day, &rows, input_bytes, settings.target_file_bytes);
    let already_done = inputs.len() == outputs.len()
        && inputs
            .iter()
            .zip(&outputs)
            .all(|(input, output)| &input.location == output);
    if already_done {
        return Ok(report);
    }
    let per_file = rows.len().div_ceil(outputs.len());
    for (chunk, output) in rows.chunks(per_file).zip(&outputs) {
        let bytes = encode_events_parquet(chunk)?;
        report.bytes_written += bytes.len() as u64;
        objects.put(output, PutPayload::from(bytes)).await?;
        report.files_written += 1;
    }
    for input in &inputs {
        if !outputs.contains(&input.location) {
            objects.delete(&input.location).await?;
            report.files_merged += 1;
        }
    }
    Ok(report)
}

/// Whether `inputs` are exactly the files of one earlier compaction (nothing to merge,
/// and nothing to read to know it).
fn is_one_compaction(inputs: &[ObjectMeta]) -> bool {
    let names: Vec<&str> = inputs
        .iter()
        .filter_map(|meta| meta.location.filename())
        .collect();
    let Some(first) = names.first() else {
        return false;
    };
    let Some((digest, count)) = CompactedObjectKey::digest_and_count(first) else {
        return false;
    };
    names.len() == inputs.len()
        && count == names.len()
        && names.iter().all(|name| {
            CompactedObjectKey::digest_and_count(name).is_some_and(|(other, _)| other == digest)
        })
}

/// The day's files that can be merged (final ones, and batch files that can no longer be
/// rewritten), in key order; the others are counted in `files_not_settled`.
async fn settled_inputs(
    objects: &Arc<dyn ObjectStore>,
    day: NaiveDate,
    settings: &CompactionSettings,
    report: &mut CompactionReport,
) -> Result<Vec<ObjectMeta>> {
    let listed: Vec<ObjectMeta> = objects
        .list(Some(&usage_day_prefix(day)))
        .try_collect()
        .await?;
    let mut inputs: Vec<ObjectMeta> = Vec::new();
    let mut progress = HashMap::new();
    for meta in listed {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        match classify_day_file(name) {
            Some(DayFile::Final) => inputs.push(meta),
            Some(DayFile::Batch {
                partition,
                first_position,
            }) => {
                if is_settled(
                    objects,
                    settings,
                    &mut progress,
                    &meta,
                    &partition,
                    &first_position,
                )
                .await?
                {
                    inputs.push(meta);
                } else {
                    report.files_not_settled += 1;
                }
            }
            None => {}
        }
    }
    inputs.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(inputs)
}

/// Every row of `inputs`, each `event_id` once, sorted by it; and the inputs' total size.
async fn unique_rows(
    objects: &Arc<dyn ObjectStore>,
    inputs: &[ObjectMeta],
    report: &mut CompactionReport,
) -> Result<(Vec<UsageEvent>, u64)> {
    let mut rows: Vec<UsageEvent> = Vec::new();
    let mut input_bytes = 0u64;
    for meta in inputs {
        let body = objects.get(&meta.location).await?.bytes().await?;
        input_bytes += meta.size;
        rows.extend(decode_events_parquet(body).map_err(|error| {
            MeteringError::Invalid(format!(
                "{} cannot be read ({error}); move it aside and compact again",
                meta.location
            ))
        })?);
    }
    report.rows_read = rows.len();
    let mut seen = HashSet::with_capacity(rows.len());
    rows.retain(|event| seen.insert(event.event_id));
    report.duplicates_dropped = report.rows_read - rows.len();
    rows.sort_by_key(|event| event.event_id);
    report.events = rows.len();
    Ok((rows, input_bytes))
}

/// The merged files' keys: one per `target_file_bytes` of input (at least one, at most one
/// per row), named after a digest of the rows' ids.
fn output_paths(
    day: NaiveDate,
    rows: &[UsageEvent],
    input_bytes: u64,
    target_file_bytes: u64,
) -> Vec<Path> {
    let files = usize::try_from((input_bytes / target_file_bytes.max(1)).max(1))
        .unwrap_or(1)
        .min(rows.len());
    let ids: Vec<Uuid> = rows.iter().map(|event| event.event_id).collect();
    let digest = digest(&ids);
    (0..files)
        .map(|index| {
            CompactedObjectKey {
                day,
                digest: digest.clone(),
                index: index + 1,
                count: files,
            }
            .to_path()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_compare_as_numbers() {
        assert!(position_at_or_after(
            "00000000000000000042",
            "00000000000000000042"
        ));
        assert!(position_at_or_after(
            "00000000000000000100",
            "00000000000000000042"
        ));
        assert!(!position_at_or_after("41", "00000000000000000042"));
        assert!(position_at_or_after(
            "49655000000000000000000000000000000000000000000002",
            "4965500000000000000000000000000000000000000000001"
        ));
    }

    #[test]
    fn the_digest_depends_on_the_set_not_the_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(digest(&[a, b]), digest(&[b, a]));
        assert_ne!(digest(&[a]), digest(&[a, b]));
    }
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod compaction_tests;
