//! Compaction against an in-memory object store: unique events kept, unsettled batches
//! left, large days split, older files merged.

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
            store::contract::event_on("c", day(), "m", schemas::Outcome::Success, index as u64, 1)
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
