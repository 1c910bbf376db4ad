//! `LogRetention` on the SQLite log: settled records are written into the data directory's
//! raw archive (gzip files of records back to back, under `dt=YYYY-MM-DD/`, as Firehose
//! writes them), then deleted in short transactions, then the freed pages are returned to
//! the file system with `PRAGMA incremental_vacuum`.
//!
//! Deletes and the vacuum run on the appenders' connection (`synchronous=NORMAL`), so each
//! short transaction commits without an fsync that appends would wait behind: losing the
//! last deletes to a machine crash only leaves records that are also archived, which
//! readers read once and the next run deletes.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;

use super::EmbeddedStore;
use super::event_log::{format_position, parse_position};
use crate::log_retention::{ArchivedRecords, LogArchiveName, LogFootprint, LogRetention};
use crate::{Result, StoreError};

/// Most bytes of records read from the log into one archive file.
const FILE_BYTES: usize = 32 * 1024 * 1024;
/// Most records read from the log into one archive file.
const FILE_RECORDS: i64 = 100_000;
/// Records deleted per transaction: short enough that appends waiting for the write lock
/// wait milliseconds, not seconds.
const DELETE_CHUNK: i64 = 1_000;
/// Pages returned to the file system per `incremental_vacuum` transaction (1 MiB of
/// 4 KiB pages): each moves pages from the file's end into free slots, holding the write
/// lock meanwhile.
const VACUUM_CHUNK_PAGES: i64 = 256;
/// The lock file that keeps two retention runs (`serve` and the operator's command) from
/// archiving the same records at once.
const LOCK_FILE: &str = "archive.lock";

/// The SQLite log's retention, writing its archive under `archive_root`.
#[derive(Debug, Clone)]
pub struct EmbeddedLogRetention {
    store: EmbeddedStore,
    archive_root: PathBuf,
}

impl EmbeddedLogRetention {
    /// Retention of `store`'s log into the archive rooted at `archive_root` (the data
    /// directory's `archive/`).
    pub fn new(store: EmbeddedStore, archive_root: impl Into<PathBuf>) -> Self {
        Self {
            store,
            archive_root: archive_root.into(),
        }
    }
}

/// One archive file's worth of records, read from the log.
struct ArchiveChunk {
    name: LogArchiveName,
    records: Vec<Vec<u8>>,
}

fn io_error(action: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "cannot {action} {}: {error}; check the data directory's permissions and free space",
        path.display()
    ))
}

fn day_of(appended_at_ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(appended_at_ms)
        .unwrap_or_default()
        .date_naive()
}

/// Every archive file retention wrote under `root`, with its size.
fn archive_files(root: &Path) -> Result<Vec<(LogArchiveName, u64)>> {
    let mut files = Vec::new();
    let folders = match fs::read_dir(root) {
        Ok(folders) => folders,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(error) => return Err(io_error("list", root, error)),
    };
    for folder in folders {
        let folder = folder.map_err(|error| io_error("list", root, error))?;
        if !folder.path().is_dir() {
            continue;
        }
        let folder_name = folder.file_name().to_string_lossy().into_owned();
        for file in fs::read_dir(folder.path()).map_err(|error| io_error("list", root, error))? {
            let file = file.map_err(|error| io_error("list", root, error))?;
            let path = format!("{folder_name}/{}", file.file_name().to_string_lossy());
            if let Some(name) = LogArchiveName::parse(&path) {
                let size = file.metadata().map(|meta| meta.len()).unwrap_or(0);
                files.push((name, size));
            }
        }
    }
    Ok(files)
}

/// The highest position of `partition` in the archive under `root`.
fn archived_through(root: &Path, partition: &str) -> Result<Option<i64>> {
    let mut highest = None;
    for (name, _) in archive_files(root)? {
        if name.partition == partition {
            highest = highest.max(Some(parse_position(&name.last)?));
        }
    }
    Ok(highest)
}

/// Holds the archive's lock while alive.
fn lock_archive(root: &Path) -> Result<File> {
    fs::create_dir_all(root).map_err(|error| io_error("create", root, error))?;
    let path = root.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| io_error("open", &path, error))?;
    lock.lock()
        .map_err(|error| io_error("lock", &path, error))?;
    Ok(lock)
}

/// Writes one archive file durably: into a staging name next to it (`…#<n>`, which the
/// archive's readers skip), flushed to disk, renamed into place, and the folder flushed.
fn write_archive_file(root: &Path, chunk: &ArchiveChunk) -> Result<()> {
    let final_path = root.join(chunk.name.path());
    let folder = final_path.parent().unwrap_or(root).to_owned();
    let new_folder = !folder.exists();
    fs::create_dir_all(&folder).map_err(|error| io_error("create", &folder, error))?;
    let mut staging = final_path.clone().into_os_string();
    staging.push("#1");
    let staging = PathBuf::from(staging);
    let file = File::create(&staging).map_err(|error| io_error("create", &staging, error))?;
    let mut gzip = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    for record in &chunk.records {
        gzip.write_all(record)
            .map_err(|error| io_error("write", &staging, error))?;
    }
    let file = gzip
        .finish()
        .and_then(|writer| writer.into_inner().map_err(|error| error.into_error()))
        .map_err(|error| io_error("write", &staging, error))?;
    file.sync_all()
        .map_err(|error| io_error("flush", &staging, error))?;
    fs::rename(&staging, &final_path).map_err(|error| io_error("rename", &staging, error))?;
    let sync_folder = |path: &Path| {
        File::open(path)
            .and_then(|opened| opened.sync_all())
            .map_err(|error| io_error("flush", path, error))
    };
    sync_folder(&folder)?;
    if new_folder {
        sync_folder(root)?;
    }
    Ok(())
}

/// Reads the records after `after`, up to `through`, appended before `before_ms`, into
/// one file's worth: one day, at most [`FILE_BYTES`] and [`FILE_RECORDS`]. `None` when no
/// record qualifies.
fn read_chunk(
    connection: &rusqlite::Connection,
    partition: &str,
    after: i64,
    through: i64,
    before_ms: i64,
) -> Result<Option<ArchiveChunk>> {
    let mut select = connection.prepare_cached(
        "SELECT seq, data, appended_at_ms FROM event_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut rows = select.query(params![after, through, FILE_RECORDS])?;
    let (mut records, mut bytes, mut range, mut day) = (Vec::new(), 0, None, None);
    while let Some(row) = rows.next()? {
        let (seq, appended_at_ms): (i64, i64) = (row.get(0)?, row.get(2)?);
        let row_day = day_of(appended_at_ms);
        if appended_at_ms >= before_ms || day.is_some_and(|day| day != row_day) {
            break;
        }
        let data: Vec<u8> = row.get(1)?;
        bytes += data.len();
        records.push(data);
        day = Some(row_day);
        range = Some((range.map_or(seq, |(first, _)| first), seq));
        if bytes >= FILE_BYTES {
            break;
        }
    }
    Ok(match (range, day) {
        (Some((first, last)), Some(day)) => Some(ArchiveChunk {
            name: LogArchiveName {
                day,
                partition: partition.to_owned(),
                first: format_position(first),
                last: format_position(last),
            },
            records,
        }),
        _ => None,
    })
}

impl EmbeddedLogRetention {
    /// Reads the next file's worth of records on the store's connection.
    async fn next_chunk(
        &self,
        partition: &str,
        after: i64,
        through: i64,
        before_ms: i64,
    ) -> Result<Option<ArchiveChunk>> {
        let partition = partition.to_owned();
        self.store
            .with_connection(move |connection| {
                read_chunk(connection, &partition, after, through, before_ms)
            })
            .await
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T> + Send + 'static,
    {
        let root = self.archive_root.clone();
        tokio::task::spawn_blocking(move || work(&root))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }
}

#[async_trait]
impl LogRetention for EmbeddedLogRetention {
    async fn checkpoints_in(&self, partition: &str) -> Result<Vec<(String, String)>> {
        let partition = partition.to_owned();
        self.store
            .with_connection(move |connection| {
                let mut select = connection.prepare_cached(
                    "SELECT consumer, position FROM checkpoints WHERE partition = ?1 ORDER BY consumer",
                )?;
                let rows = select.query_map(params![partition], |row| Ok((row.get(0)?, row.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn archive_settled(
        &self,
        partition: &str,
        through: &str,
        appended_before: DateTime<Utc>,
    ) -> Result<ArchivedRecords> {
        let through = parse_position(through)?;
        let before_ms = appended_before.timestamp_millis();
        let owned_partition = partition.to_owned();
        let (lock, mut after) = self
            .blocking(move |root| {
                Ok((
                    lock_archive(root)?,
                    archived_through(root, &owned_partition)?,
                ))
            })
            .await?;
        let mut written = ArchivedRecords {
            archived_through: after.map(format_position),
            ..ArchivedRecords::default()
        };
        while let Some(chunk) = self
            .next_chunk(partition, after.unwrap_or(0), through, before_ms)
            .await?
        {
            after = Some(parse_position(&chunk.name.last)?);
            written.records += chunk.records.len() as u64;
            written.files += 1;
            written.archived_through = Some(chunk.name.last.clone());
            self.blocking(move |root| write_archive_file(root, &chunk))
                .await?;
        }
        drop(lock);
        Ok(written)
    }

    async fn delete_archived(&self, partition: &str) -> Result<u64> {
        let owned_partition = partition.to_owned();
        let (lock, through) = self
            .blocking(move |root| {
                Ok((
                    lock_archive(root)?,
                    archived_through(root, &owned_partition)?,
                ))
            })
            .await?;
        let Some(through) = through else {
            return Ok(0);
        };
        let mut deleted = 0;
        loop {
            let removed = self
                .store
                .with_log_connection(move |connection| {
                    Ok(connection.execute(
                        "DELETE FROM event_log WHERE seq IN (SELECT seq FROM event_log WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
                        params![through, DELETE_CHUNK],
                    )?)
                })
                .await?;
            if removed == 0 {
                break;
            }
            deleted += removed as u64;
        }
        drop(lock);
        Ok(deleted)
    }

    async fn reclaim_space(&self) -> Result<u64> {
        let (before, page_size, incremental) = self
            .store
            .with_connection(|connection| {
                let value = |name: &str| -> Result<i64> {
                    Ok(connection.pragma_query_value(None, name, |row| row.get(0))?)
                };
                Ok((
                    value("page_count")?,
                    value("page_size")?,
                    value("auto_vacuum")? == 2,
                ))
            })
            .await?;
        // Without auto_vacuum=INCREMENTAL (a database that could not be converted) nothing is
        // returned; later writes then reuse the free pages, so the file stops growing.
        let mut steps_left = before / VACUUM_CHUNK_PAGES + 2;
        while incremental && steps_left > 0 {
            steps_left -= 1;
            let free_left: i64 = self
                .store
                .with_log_connection(|connection| {
                    // Each step of the statement frees one page: step it to its end.
                    let mut vacuum = connection
                        .prepare(&format!("PRAGMA incremental_vacuum({VACUUM_CHUNK_PAGES})"))?;
                    let mut steps = vacuum.query([])?;
                    while steps.next()?.is_some() {}
                    Ok(connection.pragma_query_value(None, "freelist_count", |row| row.get(0))?)
                })
                .await?;
            if free_left == 0 {
                break;
            }
        }
        let after: i64 = self
            .store
            .with_log_connection(|connection| {
                // Copies the log's pages back into the file without waiting for readers; the
                // write-ahead log is then cut to `journal_size_limit` when it next restarts.
                connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
                Ok(connection.pragma_query_value(None, "page_count", |row| row.get(0))?)
            })
            .await?;
        Ok(u64::try_from((before - after).max(0) * page_size).unwrap_or(0))
    }

    async fn footprint(&self) -> Result<LogFootprint> {
        let (records, database_bytes): (i64, i64) = self
            .store
            .with_connection(|connection| {
                let records =
                    connection.query_row("SELECT count(*) FROM event_log", [], |row| row.get(0))?;
                let pages: i64 =
                    connection.pragma_query_value(None, "page_count", |row| row.get(0))?;
                let page_size: i64 =
                    connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
                Ok((records, pages * page_size))
            })
            .await?;
        let database = self.store.path().to_owned();
        self.blocking(move |root| {
            let mut wal = database.into_os_string();
            wal.push("-wal");
            Ok(LogFootprint {
                records: u64::try_from(records).unwrap_or(0),
                database_bytes: u64::try_from(database_bytes).unwrap_or(0),
                wal_bytes: fs::metadata(Path::new(&wal))
                    .map(|meta| meta.len())
                    .unwrap_or(0),
                archive_bytes: archive_files(root)?.iter().map(|(_, bytes)| bytes).sum(),
            })
        })
        .await
    }
}
