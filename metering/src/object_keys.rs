//! Every object key metering writes or reads, typed, in one place: usage Parquet files
//! (a consumer batch's, compaction's, replay's), quarantined records and the raw archive.
//! No other module formats or parses a key by hand.
//!
//! Usage files live under Hive-style day partitions, `usage/dt=YYYY-MM-DD/`, the Glue
//! table's layout. Every key is deterministic, so a retried write overwrites the same
//! object instead of adding another.

use std::fmt;

use chrono::NaiveDate;
use object_store::path::Path;

/// The prefix under which usage Parquet lives (the Glue table's location).
pub const USAGE_PREFIX: &str = "usage";
/// The prefix of quarantined records.
pub const QUARANTINE_PREFIX: &str = "quarantine";
/// Where the raw archive lives in the bucket by default (the Firehose delivery stream's
/// prefix; `--archive-prefix` sets another).
pub const ARCHIVE_PREFIX: &str = store::backend::DEFAULT_ARCHIVE_PREFIX;
/// Where the Parquet projection keeps its progress, one object per log partition.
pub const PARQUET_STATE_PREFIX: &str = "state/parquet";

/// A key component made safe for every object store: ASCII letters, digits, `-` and `_`
/// are kept, anything else becomes `_`.
fn safe_component(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The directory of one day's usage files: `usage/dt=YYYY-MM-DD`.
pub fn usage_day_prefix(day: NaiveDate) -> Path {
    Path::from(format!("{USAGE_PREFIX}/dt={}", day.format("%Y-%m-%d")))
}

/// The Parquet projection's progress through one log partition:
/// `state/parquet/<partition>.json`.
pub fn parquet_state_key(partition: &str) -> Path {
    Path::from(format!(
        "{PARQUET_STATE_PREFIX}/{}.json",
        safe_component(partition)
    ))
}

/// The prefix of the raw archive.
pub fn archive_prefix() -> Path {
    Path::from(ARCHIVE_PREFIX)
}

/// One consumer batch's events of one day:
/// `usage/dt=YYYY-MM-DD/part-<partition>-<first position>.parquet`. A retried batch starts
/// at the same position (the checkpoint did not move), so it writes the same key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchObjectKey {
    pub day: NaiveDate,
    pub partition: String,
    pub first_position: String,
}

impl fmt::Display for BatchObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}/part-{}-{}.parquet",
            usage_day_prefix(self.day),
            safe_component(&self.partition),
            safe_component(&self.first_position)
        )
    }
}

impl BatchObjectKey {
    /// The key as an object-store path.
    pub fn to_path(&self) -> Path {
        Path::from(self.to_string())
    }
}

/// One of the `count` files a compaction of a day writes:
/// `usage/dt=YYYY-MM-DD/compacted-<digest>-<index>of<count>.parquet`, `index` from 1. The
/// digest names the set of events merged, so the same events give the same keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactedObjectKey {
    pub day: NaiveDate,
    pub digest: String,
    pub index: usize,
    pub count: usize,
}

impl CompactedObjectKey {
    /// The key as an object-store path.
    pub fn to_path(&self) -> Path {
        Path::from(format!(
            "{}/compacted-{}-{}of{}.parquet",
            usage_day_prefix(self.day),
            safe_component(&self.digest),
            self.index,
            self.count
        ))
    }

    /// The digest and the file count named in a compacted file's name
    /// (`compacted-<digest>-<i>of<n>.parquet`); `None` for any other name.
    pub fn digest_and_count(name: &str) -> Option<(&str, usize)> {
        let rest = name.strip_prefix("compacted-")?.strip_suffix(".parquet")?;
        let (digest, numbering) = rest.rsplit_once('-')?;
        let (_, count) = numbering.split_once("of")?;
        Some((digest, count.parse().ok()?))
    }
}

/// File `index` of a day's replay: `usage/dt=YYYY-MM-DD/replay-NNNNN.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayObjectKey {
    pub day: NaiveDate,
    pub index: usize,
}

impl ReplayObjectKey {
    /// The key as an object-store path.
    pub fn to_path(&self) -> Path {
        Path::from(format!(
            "{}/replay-{:05}.parquet",
            usage_day_prefix(self.day),
            self.index
        ))
    }
}

/// A quarantined log record: `quarantine/<partition>/<position>.payload` holds its bytes,
/// `.reason.txt` beside it says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineObjectKey {
    pub partition: String,
    pub position: String,
}

/// The suffix of a quarantined record's payload object.
const QUARANTINE_PAYLOAD_SUFFIX: &str = ".payload";
/// The suffix of the object beside it that says why.
const QUARANTINE_REASON_SUFFIX: &str = ".reason.txt";

/// The reason object beside a quarantined payload object; `None` for any other object
/// under the quarantine prefix (a reason object itself, or a stray one).
pub fn quarantine_reason_path(payload: &Path) -> Option<Path> {
    payload
        .as_ref()
        .strip_suffix(QUARANTINE_PAYLOAD_SUFFIX)
        .map(|stem| Path::from(format!("{stem}{QUARANTINE_REASON_SUFFIX}")))
}

impl QuarantineObjectKey {
    fn with_suffix(&self, suffix: &str) -> Path {
        Path::from(format!(
            "{QUARANTINE_PREFIX}/{}/{}{suffix}",
            safe_component(&self.partition),
            safe_component(&self.position)
        ))
    }

    /// Where the record's full payload is kept.
    pub fn payload_path(&self) -> Path {
        self.with_suffix(QUARANTINE_PAYLOAD_SUFFIX)
    }

    /// Where the reason it was quarantined is kept.
    pub fn reason_path(&self) -> Path {
        self.with_suffix(QUARANTINE_REASON_SUFFIX)
    }
}

/// A file of a day's usage directory, as compaction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayFile {
    /// A [`BatchObjectKey`], written by the consumer; it may be rewritten until Parquet's
    /// progress for its partition has passed its first position.
    Batch {
        partition: String,
        first_position: String,
    },
    /// A [`CompactedObjectKey`] or a [`ReplayObjectKey`]; never rewritten.
    Final,
}

/// Classifies a file name of a day's directory; `None` for what is not usage Parquet.
pub fn classify_day_file(name: &str) -> Option<DayFile> {
    let stem = name.strip_suffix(".parquet")?;
    if name.starts_with('_') || name.starts_with('.') {
        return None;
    }
    if stem.starts_with("compacted-") || stem.starts_with("replay-") {
        return Some(DayFile::Final);
    }
    let rest = stem.strip_prefix("part-")?;
    let (partition, first_position) = rest.rsplit_once('-')?;
    Some(DayFile::Batch {
        partition: partition.to_owned(),
        first_position: first_position.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compacted_name_gives_back_its_digest_and_count() {
        let key = CompactedObjectKey {
            day: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            digest: "00ff00ff00ff00ff".into(),
            index: 2,
            count: 3,
        };
        let path = key.to_path();
        assert_eq!(
            CompactedObjectKey::digest_and_count(path.filename().unwrap()),
            Some(("00ff00ff00ff00ff", 3))
        );
        assert_eq!(
            CompactedObjectKey::digest_and_count("part-0-1.parquet"),
            None
        );
        assert_eq!(
            CompactedObjectKey::digest_and_count("compacted-x-1ofy.parquet"),
            None
        );
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    #[test]
    fn batch_keys_are_hive_partitioned_and_deterministic() {
        let key = BatchObjectKey {
            day: day(),
            partition: "shardId-000000000001".into(),
            first_position: "00000000000000000042".into(),
        };
        assert_eq!(
            key.to_string(),
            "usage/dt=2026-11-29/part-shardId-000000000001-00000000000000000042.parquet"
        );
        let odd = BatchObjectKey {
            partition: "a/b".into(),
            ..key
        };
        assert!(odd.to_string().contains("part-a_b-"));
    }

    #[test]
    fn compacted_replay_and_quarantine_keys_have_their_documented_shape() {
        let compacted = CompactedObjectKey {
            day: day(),
            digest: "00ff".into(),
            index: 2,
            count: 3,
        };
        assert_eq!(
            compacted.to_path().as_ref(),
            "usage/dt=2026-11-29/compacted-00ff-2of3.parquet"
        );
        let replay = ReplayObjectKey {
            day: day(),
            index: 7,
        };
        assert_eq!(
            replay.to_path().as_ref(),
            "usage/dt=2026-11-29/replay-00007.parquet"
        );
        let quarantined = QuarantineObjectKey {
            partition: "shard/1".into(),
            position: "42".into(),
        };
        assert_eq!(
            quarantined.payload_path().as_ref(),
            "quarantine/shard_1/42.payload"
        );
        assert_eq!(
            quarantined.reason_path().as_ref(),
            "quarantine/shard_1/42.reason.txt"
        );
        assert_eq!(
            quarantine_reason_path(&quarantined.payload_path()),
            Some(quarantined.reason_path())
        );
        assert_eq!(quarantine_reason_path(&quarantined.reason_path()), None);
        assert_eq!(usage_day_prefix(day()).as_ref(), "usage/dt=2026-11-29");
    }

    #[test]
    fn every_written_usage_key_is_classified_back() {
        let batch = BatchObjectKey {
            day: day(),
            partition: "shardId-000000000001".into(),
            first_position: "49655".into(),
        };
        let name = batch.to_path().filename().unwrap().to_owned();
        assert_eq!(
            classify_day_file(&name),
            Some(DayFile::Batch {
                partition: "shardId-000000000001".into(),
                first_position: "49655".into()
            })
        );
        let compacted = CompactedObjectKey {
            day: day(),
            digest: "abc".into(),
            index: 1,
            count: 1,
        };
        let replay = ReplayObjectKey {
            day: day(),
            index: 0,
        };
        for path in [compacted.to_path(), replay.to_path()] {
            assert_eq!(
                classify_day_file(path.filename().unwrap()),
                Some(DayFile::Final)
            );
        }
    }

    #[test]
    fn day_files_are_told_apart_by_name() {
        assert_eq!(
            classify_day_file("part-0-00000000000000000042.parquet"),
            Some(DayFile::Batch {
                partition: "0".into(),
                first_position: "00000000000000000042".into()
            })
        );
        assert_eq!(classify_day_file("_manifest.json"), None);
        assert_eq!(classify_day_file("notes.txt"), None);
        assert_eq!(classify_day_file(".part-0-1.parquet"), None);
    }
}
