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
mod compaction_tests {
    use super::*;
    use crate::object_keys::BatchObjectKey;
    use crate::parquet_sink::write_usage_parquet;
    use object_store::memory::InMemory;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    fn events(count: usize) -> Vec<UsageEvent> {
        (0..count)
            .map(|index| {
                store::contract::event_on(
                    "c",
                    day(),
                    "m",
                    schemas::Outcome::Success,
                    index as u64,
                    1,
                )
            })
            .collect()
    }

    async fn write_batch(objects: &Arc<dyn ObjectStore>, first: u64, batch: &[UsageEvent]) {
        let refs: Vec<&UsageEvent> = batch.iter().collect();
        write_usage_parquet(objects, "0", &format!("{first:020}"), &refs)
            .await
            .unwrap();
    }

    async fn day_files(objects: &Arc<dyn ObjectStore>) -> Vec<(String, bytes::Bytes)> {
        let listed: Vec<ObjectMeta> = objects
            .list(Some(&usage_day_prefix(day())))
            .try_collect()
            .await
            .unwrap();
        let mut files = Vec::new();
        for meta in listed {
            let body = objects
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            files.push((meta.location.filename().unwrap().to_owned(), body));
        }
        files.sort();
        files
    }

    async fn rows(objects: &Arc<dyn ObjectStore>) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for (_, body) in day_files(objects).await {
            ids.extend(
                decode_events_parquet(body)
                    .unwrap()
                    .into_iter()
                    .map(|event| event.event_id),
            );
        }
        ids.sort();
        ids
    }

    /// Parquet's progress through partition "0" reaches `through`.
    async fn settle_through(objects: &Arc<dyn ObjectStore>, through: u64) {
        ParquetState {
            through: Some(format!("{through:020}")),
            stored: true,
            ..ParquetState::default()
        }
        .store(objects, "0")
        .await
        .unwrap();
    }

    fn settings() -> CompactionSettings {
        CompactionSettings {
            settle_after: Duration::from_secs(7 * 24 * 3600),
            target_file_bytes: TARGET_FILE_BYTES,
        }
    }

    /// Invariant: compaction keeps exactly the day's unique events, in one file when the
    /// day is small, and a second run changes nothing.
    #[tokio::test]
    async fn a_day_becomes_one_file_of_its_unique_events_and_stays_so() {
        let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let all = events(30);
        write_batch(&objects, 1, &all[..10]).await;
        write_batch(&objects, 11, &all[10..20]).await;
        // A producer retry: one event again in a later batch.
        let mut third = all[20..].to_vec();
        third.push(all[5].clone());
        write_batch(&objects, 21, &third).await;
        settle_through(&objects, 31).await;

        let report = compact_day(&objects, day(), &settings()).await.unwrap();
        assert_eq!(report.files_merged, 3);
        assert_eq!(report.duplicates_dropped, 1);
        assert_eq!(report.files_written, 1);
        let mut expected: Vec<Uuid> = all.iter().map(|event| event.event_id).collect();
        expected.sort();
        assert_eq!(rows(&objects).await, expected);
        let files = day_files(&objects).await;
        assert_eq!(files.len(), 1);
        assert!(files[0].0.starts_with("compacted-"), "{}", files[0].0);

        let again = compact_day(&objects, day(), &settings()).await.unwrap();
        assert_eq!((again.files_written, again.files_merged), (0, 0));
        assert_eq!(day_files(&objects).await, files, "byte for byte the same");
    }

    /// Files written before the integer columns were delta-encoded (PLAIN and SNAPPY, as
    /// builds before 2026-12-03 wrote them) merge with newer ones; the merged file is
    /// written as files are now.
    #[tokio::test]
    async fn files_with_plain_integer_columns_merge_with_delta_encoded_ones() {
        use parquet::basic::{Compression, Encoding};
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::schema::types::ColumnPath;
        use schemas::parquet_codec::{DELTA_COLUMNS, encode_with_arrow_writer, writer_properties};

        let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let all = events(20);
        let mut older = writer_properties().into_builder();
        for column in DELTA_COLUMNS {
            older = older
                .set_column_encoding(ColumnPath::from(column), Encoding::PLAIN)
                .set_column_compression(ColumnPath::from(column), Compression::SNAPPY);
        }
        let old_file = encode_with_arrow_writer(&all[..10], older.build()).unwrap();
        let encodings_of = |body: &bytes::Bytes| {
            let reader = SerializedFileReader::new(body.clone()).unwrap();
            let column = reader
                .metadata()
                .row_group(0)
                .columns()
                .iter()
                .find(|column| column.column_path().string() == "input_tokens")
                .unwrap()
                .clone();
            column.encodings().collect::<Vec<_>>()
        };
        assert!(!encodings_of(&old_file).contains(&Encoding::DELTA_BINARY_PACKED));
        let old_key = BatchObjectKey {
            day: day(),
            partition: "0".into(),
            first_position: format!("{:020}", 1),
        };
        objects
            .put(&old_key.to_path(), old_file.into())
            .await
            .unwrap();
        write_batch(&objects, 11, &all[10..]).await;
        settle_through(&objects, 20).await;

        let report = compact_day(&objects, day(), &settings()).await.unwrap();
        assert_eq!((report.files_merged, report.files_written), (2, 1));
        let mut expected: Vec<Uuid> = all.iter().map(|event| event.event_id).collect();
        expected.sort();
        assert_eq!(rows(&objects).await, expected);
        let (_, merged) = &day_files(&objects).await[0];
        let merged = decode_events_parquet(merged.clone()).unwrap();
        let mut by_id: Vec<UsageEvent> = all.clone();
        by_id.sort_by_key(|event| event.event_id);
        let mut merged_by_id = merged;
        merged_by_id.sort_by_key(|event| event.event_id);
        assert_eq!(
            merged_by_id, by_id,
            "every field of every event, as written"
        );
        let (_, body) = &day_files(&objects).await[0];
        let tokens = encodings_of(body);
        assert!(
            tokens.contains(&Encoding::DELTA_BINARY_PACKED),
            "{tokens:?}"
        );
    }

    /// Invariant: a batch file that may still be rewritten (its batch is not committed and
    /// it is recent) is left alone, and merged by a later run once it is settled.
    #[tokio::test]
    async fn a_batch_that_can_still_be_rewritten_waits_for_a_later_run() {
        let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let all = events(12);
        write_batch(&objects, 1, &all[..6]).await;
        write_batch(&objects, 7, &all[6..]).await;
        settle_through(&objects, 6).await;
        let report = compact_day(&objects, day(), &settings()).await.unwrap();
        assert_eq!((report.files_merged, report.files_not_settled), (1, 1));
        let pending = BatchObjectKey {
            day: day(),
            partition: "0".into(),
            first_position: format!("{:020}", 7),
        };
        assert!(
            objects.head(&pending.to_path()).await.is_ok(),
            "left in place"
        );

        // The batch is committed now; the next run merges everything into one file.
        settle_through(&objects, 12).await;
        let later = compact_day(&objects, day(), &settings()).await.unwrap();
        assert_eq!(later.files_not_settled, 0);
        assert_eq!(day_files(&objects).await.len(), 1);
        let mut expected: Vec<Uuid> = all.iter().map(|event| event.event_id).collect();
        expected.sort();
        assert_eq!(rows(&objects).await, expected);
    }

    /// A large day is split into as many files as the target size allows.
    #[tokio::test]
    async fn a_large_day_is_split_by_the_target_size() {
        let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let all = events(3_000);
        for (index, batch) in all.chunks(300).enumerate() {
            write_batch(&objects, (index * 300 + 1) as u64, batch).await;
        }
        settle_through(&objects, 3_000).await;
        let input: u64 = day_files(&objects)
            .await
            .iter()
            .map(|(_, body)| body.len() as u64)
            .sum();
        let target = input / 3;
        let report = compact_day(
            &objects,
            day(),
            &CompactionSettings {
                target_file_bytes: target,
                ..settings()
            },
        )
        .await
        .unwrap();
        assert_eq!(report.files_written, 3);
        assert_eq!(rows(&objects).await.len(), 3_000);
        for (name, _) in day_files(&objects).await {
            assert!(name.contains("of3"), "{name}");
        }
    }

    #[test]
    fn a_scheduled_run_compacts_yesterday_and_the_day_that_just_settled() {
        use chrono::TimeZone;
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 29, 1, 0, 0).unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        // A week of retries: 2026-11-21 ended at 22 00:00 and settled at 29 00:00.
        assert_eq!(
            scheduled_days(now, Duration::from_secs(168 * 3600)),
            vec![day(21), day(28), day(29)]
        );
        assert_eq!(scheduled_days(now, Duration::ZERO), vec![day(28), day(29)]);
        // Other hours compact only the live day and yesterday.
        let later = chrono::Utc
            .with_ymd_and_hms(2026, 11, 29, 14, 0, 0)
            .unwrap();
        assert_eq!(
            scheduled_days(later, Duration::from_secs(168 * 3600)),
            vec![day(28), day(29)]
        );
    }
}
