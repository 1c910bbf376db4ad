//! Retention of an event log that keeps every record until told otherwise (the embedded
//! SQLite log): its settled records move into the raw archive, in the Firehose archive's
//! format, then leave the log, and the space they took is given back.
//!
//! The archive's files are named after the log positions they hold
//! ([`LogArchiveName`]), so a reader takes the archive first and the log only after the
//! highest archived position: a record both archived and still in the log (a crash between
//! the two steps) is read once.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::Result;

/// What retention asks of a log that keeps everything: its consumers' positions, and the
/// three steps of moving settled records out, each safe to repeat after a crash.
#[async_trait]
pub trait LogRetention: Send + Sync {
    /// Every consumer's checkpoint in `partition`, as `(consumer, position)`.
    async fn checkpoints_in(&self, partition: &str) -> Result<Vec<(String, String)>>;

    /// Writes into the archive the records of `partition` after the highest position
    /// already archived, up to and including `through`, appended before `appended_before`,
    /// oldest first, stopping at the first record appended later. Each file is durable
    /// (written, flushed to disk and renamed into place) before this returns. Returns what
    /// it wrote; nothing is deleted from the log.
    async fn archive_settled(
        &self,
        partition: &str,
        through: &str,
        appended_before: DateTime<Utc>,
    ) -> Result<ArchivedRecords>;

    /// Deletes from the log every record of `partition` at or before the highest archived
    /// position (none when nothing is archived), in short transactions. Returns how many.
    async fn delete_archived(&self, partition: &str) -> Result<u64>;

    /// Gives the freed space back to the file system, in short steps. Returns the bytes
    /// the database file shrank by.
    async fn reclaim_space(&self) -> Result<u64>;

    /// How much the log takes now.
    async fn footprint(&self) -> Result<LogFootprint>;
}

/// What one [`LogRetention::archive_settled`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchivedRecords {
    /// Records written.
    pub records: u64,
    /// Files written.
    pub files: u64,
    /// The highest position now archived (written now or before), if any.
    pub archived_through: Option<String>,
}

/// The size of the log and its database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogFootprint {
    /// Records in the log.
    pub records: u64,
    /// The database's bytes (its pages, as the file holds them once the write-ahead log is
    /// copied back).
    pub database_bytes: u64,
    /// The write-ahead log's bytes.
    pub wal_bytes: u64,
    /// Bytes of the archive files.
    pub archive_bytes: u64,
}

/// The name of one archive file written by retention:
/// `dt=<day>/log-<partition>-<first position>-<last position>.gz`, the day being the UTC
/// day its records were appended (the Firehose archive's layout, `dt=YYYY-MM-DD/`). Every
/// record of the partition from `first` to `last` that the log held is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogArchiveName {
    pub day: NaiveDate,
    pub partition: String,
    pub first: String,
    pub last: String,
}

impl LogArchiveName {
    /// The file's path under the archive's root.
    pub fn path(&self) -> String {
        format!(
            "dt={}/log-{}-{}-{}.gz",
            self.day.format("%Y-%m-%d"),
            self.partition,
            self.first,
            self.last
        )
    }

    /// Reads a path under the archive's root back; `None` for any other file (one the
    /// retention did not write).
    pub fn parse(path: &str) -> Option<Self> {
        let (folder, file) = path.rsplit_once('/')?;
        let day = folder.rsplit('/').next()?.strip_prefix("dt=")?;
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        let stem = file.strip_prefix("log-")?.strip_suffix(".gz")?;
        let mut parts = stem.rsplitn(3, '-');
        let last = parts.next()?;
        let first = parts.next()?;
        let partition = parts.next()?;
        let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if !digits(first) || !digits(last) || partition.is_empty() {
            return None;
        }
        Some(Self {
            day,
            partition: partition.to_owned(),
            first: first.to_owned(),
            last: last.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_read_back_and_other_files_are_not_taken_for_them() {
        let name = LogArchiveName {
            day: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            partition: "0".into(),
            first: format!("{:020}", 1),
            last: format!("{:020}", 4_000),
        };
        assert_eq!(
            name.path(),
            "dt=2026-12-01/log-0-00000000000000000001-00000000000000004000.gz"
        );
        assert_eq!(LogArchiveName::parse(&name.path()), Some(name.clone()));
        assert_eq!(
            LogArchiveName::parse(&format!("archive/{}", name.path())),
            Some(name)
        );
        for other in [
            "dt=2026-12-01/usage-archive-1-2026-12-01-00-00-00-abc.gz",
            "dt=2026-12-01/log-0-12-x4.gz",
            "dt=2026-13-01/log-0-1-2.gz",
            "log-0-1-2.gz",
        ] {
            assert_eq!(LogArchiveName::parse(other), None, "{other}");
        }
    }
}
