//! A spool in a local directory: append-only segment files of checksummed records, a
//! `HEAD` file naming the first record not yet delivered, and a `LOCK` file that one process
//! holds while it uses the directory.
//!
//! Record: `u32` payload length, `u32` CRC32 of the payload (both little endian), payload =
//! `u16` partition-key length, the key, the data. Segments are named by a growing number
//! and rolled at [`SEGMENT_BYTES`]; a segment is deleted once the head has passed it.
//!
//! Every `push` ends with `fsync`, so a pushed record survives a crash of the machine;
//! `push_now` writes without it (a kill of the process loses nothing; the proxy's durable
//! events use it). `HEAD` is rewritten in place with one short write, not synced: after a
//! crash of the machine it may name an earlier record or be unreadable, and the spool is
//! then sent again from there or from its oldest record (consumers drop the repeats). On open, a record cut short at the end of the last segment (a push
//! the crash interrupted, never acknowledged) is truncated away; a damaged record anywhere
//! else is moved to a `.corrupt` file next to its segment and reported, never silently
//! dropped.

mod format;
mod mirror;
mod recovery;
mod slots;

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Spool, SpoolLevel};
use crate::{LogRecord, Result, StoreError};
pub use format::SEGMENT_BYTES;
use format::{Read1, encode, io_error, read_one, segment_path};
use mirror::{HeadRead, Mirror};
use recovery::{Segment, State, recover, sync_directory, write_head};
pub use slots::SpoolSlot;

/// A spool directory, held exclusively by this process.
pub struct FileSpool {
    directory: PathBuf,
    segment_bytes: u64,
    state: Mutex<State>,
    level: Mutex<SpoolLevel>,
    _lock: File,
}

impl std::fmt::Debug for FileSpool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FileSpool")
            .field("directory", &self.directory)
            .finish()
    }
}

impl FileSpool {
    /// Opens (creating if needed) the spool in `directory`, recovering it after a crash.
    /// Fails if another process holds the directory.
    pub fn open(directory: &Path) -> Result<Self> {
        Self::try_open(directory)?.ok_or_else(|| {
            StoreError::Unavailable(format!(
                "spool directory {} is in use by another process; give each proxy its own --spool-dir",
                directory.display()
            ))
        })
    }

    /// Like [`FileSpool::open`], but `None` when another process holds the directory.
    pub fn try_open(directory: &Path) -> Result<Option<Self>> {
        fs::create_dir_all(directory).map_err(|error| io_error("create", directory, error))?;
        let lock_path = directory.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| io_error("open", &lock_path, error))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(error)) => return Err(io_error("lock", &lock_path, error)),
        }
        let state = recover(directory)?;
        let level = state.level;
        Ok(Some(Self {
            directory: directory.to_owned(),
            segment_bytes: SEGMENT_BYTES,
            state: Mutex::new(state),
            level: Mutex::new(level),
            _lock: lock,
        }))
    }

    /// Rolls segments at `bytes` instead of [`SEGMENT_BYTES`] (tests).
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// Keeps at most `bytes` of undelivered records in memory instead of
    /// [`mirror::MIRROR_BYTES`] (tests).
    pub fn with_mirror_bytes(mut self, bytes: u64) -> Self {
        if let Ok(state) = self.state.get_mut() {
            state.mirror = Mirror::new(state.level.records, bytes);
        }
        self
    }

    /// The directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn locked(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::Task("spool lock poisoned".into()))
    }

    fn publish(&self, level: SpoolLevel) {
        if let Ok(mut published) = self.level.lock() {
            *published = level;
        }
    }

    fn push_blocking(&self, records: &[LogRecord]) -> Result<()> {
        let (encoded, sizes) = encode_all(records)?;
        let mut state = self.locked()?;
        self.push_locked(&mut state, records, (&encoded, &sizes), true)
    }

    /// Writes records, encoded (and each encoding's size), at the tail, with an fsync when
    /// `sync`, and publishes the new level.
    fn push_locked(
        &self,
        state: &mut State,
        records: &[LogRecord],
        (encoded, sizes): (&[u8], &[u64]),
        sync: bool,
    ) -> Result<()> {
        let count = records.len();
        let last = state
            .segments
            .back()
            .map(|segment| (segment.number, segment.len));
        if state.tail.is_none() || last.is_some_and(|(_, len)| len >= self.segment_bytes) {
            let number = match last {
                Some((number, len)) if len < self.segment_bytes => number,
                Some((number, _)) => number + 1,
                None => state.head.0.max(1),
            };
            let path = segment_path(&self.directory, number);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|error| io_error("create", &path, error))?;
            sync_directory(&self.directory)?;
            if last.is_none_or(|(last_number, _)| last_number != number) {
                state.segments.push_back(Segment { number, len: 0 });
                if state.segments.len() == 1 {
                    state.head = (number, 0);
                }
            }
            state.tail = Some(file);
        }
        let number = state.segments.back().map_or(0, |segment| segment.number);
        let Some(file) = state.tail.as_mut() else {
            return Err(StoreError::Task("spool tail missing".into()));
        };
        let written = file
            .write_all(encoded)
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        if let Err(error) = written {
            // What reached the file is unknown: read from the files from now on.
            state.mirror.drop_all();
            return Err(io_error(
                "write",
                &segment_path(&self.directory, number),
                error,
            ));
        }
        if let Some(segment) = state.segments.back_mut() {
            state
                .mirror
                .written(records, sizes, segment.number, segment.len);
            segment.len += encoded.len() as u64;
        }
        state.level.records += count as u64;
        state.level.bytes += encoded.len() as u64;
        self.publish(state.level);
        Ok(())
    }

    /// Reads up to `max` records from the head; returns them with the head after them.
    fn read_from_head(&self, state: &State, max: usize) -> Result<HeadRead> {
        if let Some(read) = state.mirror.read(max, state.head) {
            return Ok(read);
        }
        let mut records = Vec::new();
        let mut bytes = 0u64;
        let (mut number, mut offset) = state.head;
        let first = number;
        for segment in state
            .segments
            .iter()
            .filter(|segment| segment.number >= first)
        {
            if records.len() >= max {
                break;
            }
            if segment.number != number {
                number = segment.number;
                offset = 0;
            }
            if offset >= segment.len {
                continue;
            }
            let path = segment_path(&self.directory, segment.number);
            let mut file = File::open(&path).map_err(|error| io_error("open", &path, error))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|error| io_error("read", &path, error))?;
            while records.len() < max && offset < segment.len {
                match read_one(&mut file).map_err(|error| io_error("read", &path, error))? {
                    Read1::Record { record, size } => {
                        records.push(record);
                        offset += size;
                        bytes += size;
                    }
                    Read1::End | Read1::Damaged => {
                        return Err(StoreError::Corrupt(format!(
                            "spool segment {} changed under the spool at offset {offset}; stop the proxy and move the spool directory aside",
                            path.display()
                        )));
                    }
                }
            }
        }
        Ok((records, (number, offset), bytes))
    }

    fn pop_blocking(&self, count: usize) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        let mut state = self.locked()?;
        let (records, head, bytes) = self.read_from_head(&state, count)?;
        state.head = head;
        state.level.records = state.level.records.saturating_sub(records.len() as u64);
        state.level.bytes = state.level.bytes.saturating_sub(bytes);
        let remaining = state.level.records;
        state.mirror.delivered(records.len(), remaining);
        write_head(&self.directory, &mut state.head_file, head)?;
        // Delete the segments the head has left behind, and the head segment too when it
        // is fully delivered and not the one being written.
        while let Some(first) = state.segments.front() {
            let delivered = first.number < head.0
                || (first.number == head.0 && head.1 >= first.len && state.segments.len() > 1);
            if !delivered {
                break;
            }
            let path = segment_path(&self.directory, first.number);
            fs::remove_file(&path).map_err(|error| io_error("remove", &path, error))?;
            state.segments.pop_front();
        }
        let last = state
            .segments
            .back()
            .map(|segment| (segment.number, segment.len));
        if state.level.records == 0
            && let Some((last_number, last_len)) = last
            && head == (last_number, last_len)
            && last_len >= self.segment_bytes
        {
            // Everything delivered and the last segment full: start afresh on next push.
            let path = segment_path(&self.directory, last_number);
            state.tail = None;
            fs::remove_file(&path).map_err(|error| io_error("remove", &path, error))?;
            let next = last_number + 1;
            state.segments.clear();
            state.head = (next, 0);
            let head = state.head;
            write_head(&self.directory, &mut state.head_file, head)?;
        }
        // Published while the state is still locked, as a push publishes: published after
        // the lock, a pop's level could land after a newer push's and hide its record
        // from the drainer (which reads `level`) until the next push.
        self.publish(state.level);
        drop(state);
        Ok(())
    }
}

#[async_trait]
impl Spool for Arc<FileSpool> {
    async fn push(&self, records: &[LogRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let spool = Arc::clone(self);
        let records = records.to_vec();
        tokio::task::spawn_blocking(move || spool.push_blocking(&records))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }

    async fn peek(&self, max: usize) -> Result<Vec<LogRecord>> {
        let spool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let state = spool.locked()?;
            Ok(spool.read_from_head(&state, max)?.0)
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }

    async fn pop(&self, count: usize) -> Result<()> {
        let spool = Arc::clone(self);
        tokio::task::spawn_blocking(move || spool.pop_blocking(count))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }

    fn push_now(&self, records: &[LogRecord]) -> Option<Result<()>> {
        if records.is_empty() {
            return Some(Ok(()));
        }
        // Waits for the spool's own short steps (the drainer's read of a few records and
        // its move of the head), never for an fsync: pushes with one hold the lock only
        // while the log is failing.
        let (encoded, sizes) = match encode_all(records) {
            Ok(encoded) => encoded,
            Err(error) => return Some(Err(error)),
        };
        Some(
            self.locked().and_then(|mut state| {
                self.push_locked(&mut state, records, (&encoded, &sizes), false)
            }),
        )
    }

    fn peek_now(&self, max: usize) -> Option<Result<Vec<LogRecord>>> {
        Some(
            self.locked()
                .and_then(|state| Ok(self.read_from_head(&state, max)?.0)),
        )
    }

    fn pop_now(&self, count: usize) -> Option<Result<()>> {
        Some(self.pop_blocking(count))
    }

    fn level(&self) -> SpoolLevel {
        self.level
            .lock()
            .map_or(SpoolLevel::default(), |level| *level)
    }
}

/// Records in the segment format, one after another, and each one's size.
fn encode_all(records: &[LogRecord]) -> Result<(Vec<u8>, Vec<u64>)> {
    let mut encoded = Vec::new();
    let mut sizes = Vec::with_capacity(records.len());
    for record in records {
        let one = encode(record)?;
        sizes.push(one.len() as u64);
        encoded.extend(one);
    }
    Ok((encoded, sizes))
}

impl FileSpool {
    /// What the spool holds now.
    pub fn level(&self) -> SpoolLevel {
        self.level
            .lock()
            .map_or(SpoolLevel::default(), |level| *level)
    }
}

#[cfg(test)]
mod tests;
