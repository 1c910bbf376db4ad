//! A spool in a local directory: append-only segment files of checksummed records, a
//! `HEAD` file naming the first record not yet delivered, and a `LOCK` file that one process
//! holds while it uses the directory.
//!
//! Record: `u32` payload length, `u32` CRC32 of the payload (both little endian), payload =
//! `u16` partition-key length, the key, the data. Segments are named by a growing number
//! and rolled at [`SEGMENT_BYTES`]; a segment is deleted once the head has passed it.
//!
//! Every push ends with `fsync`, so a pushed record survives a crash. On open, a record cut
//! short at the end of the last segment (a push the crash interrupted, never acknowledged)
//! is truncated away; a damaged record anywhere else is moved to a `.corrupt` file next to
//! its segment and reported, never silently dropped.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Spool, SpoolLevel};
use crate::{LogRecord, Result, StoreError};

/// Size at which a new segment is started.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const HEADER_BYTES: u64 = 8;
/// Largest payload accepted when reading back (a usage event is far smaller).
const MAX_PAYLOAD_BYTES: u32 = 16 * 1024 * 1024;

fn io_error(what: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("spool: cannot {what} {}: {error}", path.display()))
}

fn segment_path(directory: &Path, number: u64) -> PathBuf {
    directory.join(format!("{number:020}.seg"))
}

fn encode(record: &LogRecord) -> Result<Vec<u8>> {
    let key = record.partition_key.as_bytes();
    let key_len = u16::try_from(key.len()).map_err(|_| {
        StoreError::Corrupt("spool: a partition key is longer than 65535 bytes".into())
    })?;
    let mut payload = Vec::with_capacity(2 + key.len() + record.data.len());
    payload.extend_from_slice(&key_len.to_le_bytes());
    payload.extend_from_slice(key);
    payload.extend_from_slice(&record.data);
    let payload_len = u32::try_from(payload.len())
        .map_err(|_| StoreError::Corrupt("spool: a record is larger than 4 GiB".into()))?;
    let mut encoded = Vec::with_capacity(payload.len() + HEADER_BYTES as usize);
    encoded.extend_from_slice(&payload_len.to_le_bytes());
    encoded.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    encoded.extend_from_slice(&payload);
    Ok(encoded)
}

fn decode(payload: &[u8]) -> Option<LogRecord> {
    let key_len = usize::from(u16::from_le_bytes([*payload.first()?, *payload.get(1)?]));
    let key = payload.get(2..2 + key_len)?;
    let data = payload.get(2 + key_len..)?;
    Some(LogRecord {
        partition_key: String::from_utf8(key.to_vec()).ok()?,
        data: Bytes::copy_from_slice(data),
    })
}

/// One record read from a segment, or why reading stopped.
enum Read1 {
    Record { record: LogRecord, size: u64 },
    End,
    Damaged,
}

fn read_one(file: &mut File) -> std::io::Result<Read1> {
    let mut header = [0u8; HEADER_BYTES as usize];
    match read_fully(file, &mut header)? {
        0 => return Ok(Read1::End),
        read if read < header.len() => return Ok(Read1::Damaged),
        _ => {}
    }
    let payload_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let checksum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if payload_len > MAX_PAYLOAD_BYTES {
        return Ok(Read1::Damaged);
    }
    let mut payload = vec![0u8; payload_len as usize];
    if read_fully(file, &mut payload)? < payload.len() || crc32fast::hash(&payload) != checksum {
        return Ok(Read1::Damaged);
    }
    Ok(match decode(&payload) {
        Some(record) => Read1::Record {
            record,
            size: HEADER_BYTES + u64::from(payload_len),
        },
        None => Read1::Damaged,
    })
}

fn read_fully(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

#[derive(Debug)]
struct Segment {
    number: u64,
    len: u64,
}

#[derive(Debug)]
struct State {
    segments: VecDeque<Segment>,
    /// The first undelivered record: a segment number and an offset in it.
    head: (u64, u64),
    tail: Option<File>,
    level: SpoolLevel,
}

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

/// A spool directory claimed under a parent: `slot-0`, `slot-1`, … Each running proxy
/// holds one; a slot left by a process that stopped is free for the next one to take, with
/// whatever it still holds.
#[derive(Debug)]
pub struct SpoolSlot {
    pub spool: Arc<FileSpool>,
    pub directory: PathBuf,
}

impl SpoolSlot {
    /// The slot's spool as the port.
    pub fn port(&self) -> Arc<dyn Spool> {
        Arc::new(Arc::clone(&self.spool))
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

    /// Claims the first free `slot-N` under `parent` for this process.
    pub fn claim_slot(parent: &Path) -> Result<SpoolSlot> {
        for index in 0..1024 {
            let directory = parent.join(format!("slot-{index}"));
            if let Some(spool) = Self::try_open(&directory)? {
                return Ok(SpoolSlot {
                    spool: Arc::new(spool),
                    directory,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "every spool slot under {} is in use",
            parent.display()
        )))
    }

    /// Free slots under `parent` that still hold records (left by a process that stopped),
    /// opened for this process to drain. Each stays held until dropped.
    pub fn orphaned_slots(parent: &Path) -> Result<Vec<SpoolSlot>> {
        let Ok(entries) = fs::read_dir(parent) else {
            return Ok(Vec::new());
        };
        let mut orphans = Vec::new();
        for entry in entries.flatten() {
            let directory = entry.path();
            let is_slot = directory
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("slot-"));
            if !is_slot || !directory.is_dir() {
                continue;
            }
            if let Some(spool) = Self::try_open(&directory)?
                && spool.level().records > 0
            {
                orphans.push(SpoolSlot {
                    spool: Arc::new(spool),
                    directory,
                });
            }
        }
        Ok(orphans)
    }

    /// Rolls segments at `bytes` instead of [`SEGMENT_BYTES`] (tests).
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(1);
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
        let mut encoded = Vec::new();
        for record in records {
            encoded.extend(encode(record)?);
        }
        let mut state = self.locked()?;
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
        let path = segment_path(
            &self.directory,
            state.segments.back().map_or(0, |segment| segment.number),
        );
        let Some(file) = state.tail.as_mut() else {
            return Err(StoreError::Task("spool tail missing".into()));
        };
        file.write_all(&encoded)
            .and_then(|()| file.sync_data())
            .map_err(|error| io_error("write", &path, error))?;
        if let Some(segment) = state.segments.back_mut() {
            segment.len += encoded.len() as u64;
        }
        state.level.records += records.len() as u64;
        state.level.bytes += encoded.len() as u64;
        let level = state.level;
        drop(state);
        self.publish(level);
        Ok(())
    }

    /// Reads up to `max` records from the head; returns them with the head after them.
    fn read_from_head(
        &self,
        state: &State,
        max: usize,
    ) -> Result<(Vec<LogRecord>, (u64, u64), u64)> {
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
        write_head(&self.directory, head)?;
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
            write_head(&self.directory, state.head)?;
        }
        let level = state.level;
        drop(state);
        self.publish(level);
        Ok(())
    }
}

fn sync_directory(directory: &Path) -> Result<()> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| io_error("sync", directory, error))
}

fn write_head(directory: &Path, head: (u64, u64)) -> Result<()> {
    let temporary = directory.join("HEAD.tmp");
    let path = directory.join("HEAD");
    let mut file =
        File::create(&temporary).map_err(|error| io_error("write", &temporary, error))?;
    file.write_all(format!("{} {}\n", head.0, head.1).as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|error| io_error("write", &temporary, error))?;
    fs::rename(&temporary, &path).map_err(|error| io_error("replace", &path, error))?;
    sync_directory(directory)
}

fn read_head(directory: &Path) -> Result<Option<(u64, u64)>> {
    let path = directory.join("HEAD");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("read", &path, error)),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(number)), Some(Ok(offset))) => Ok(Some((number, offset))),
        _ => Err(StoreError::Corrupt(format!(
            "spool head {} is unreadable ({text:?}); move the spool directory aside and restart",
            path.display()
        ))),
    }
}

/// Lists segments, finds the head and counts what is left, repairing damage.
fn recover(directory: &Path) -> Result<State> {
    let mut numbers: Vec<u64> = fs::read_dir(directory)
        .map_err(|error| io_error("list", directory, error))?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    let head = read_head(directory)?.unwrap_or((numbers.first().copied().unwrap_or(1), 0));
    let mut segments = VecDeque::new();
    let mut level = SpoolLevel::default();
    let last = numbers.last().copied();
    for number in numbers {
        let path = segment_path(directory, number);
        if number < head.0 {
            // Delivered before a crash interrupted its removal.
            fs::remove_file(&path).map_err(|error| io_error("remove", &path, error))?;
            continue;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|error| io_error("open", &path, error))?;
        let mut offset = 0u64;
        let counted_from = if number == head.0 { head.1 } else { 0 };
        loop {
            match read_one(&mut file).map_err(|error| io_error("read", &path, error))? {
                Read1::Record { size, .. } => {
                    if offset >= counted_from {
                        level.records += 1;
                        level.bytes += size;
                    }
                    offset += size;
                }
                Read1::End => break,
                Read1::Damaged => {
                    let end = file
                        .seek(SeekFrom::End(0))
                        .map_err(|error| io_error("read", &path, error))?;
                    if Some(number) != last {
                        // Damage inside the spool: keep the bytes for inspection.
                        let kept = path.with_extension(format!("seg.corrupt-{offset}"));
                        let mut rest = Vec::new();
                        file.seek(SeekFrom::Start(offset))
                            .and_then(|_| file.read_to_end(&mut rest))
                            .map_err(|error| io_error("read", &path, error))?;
                        fs::write(&kept, &rest).map_err(|error| io_error("write", &kept, error))?;
                        tracing::error!(segment = %path.display(), offset, kept = %kept.display(), "damaged spool record; the rest of the segment was moved aside");
                    } else {
                        tracing::warn!(segment = %path.display(), offset, bytes = end - offset, "incomplete record at the end of the spool (a write the crash interrupted); truncated");
                    }
                    file.set_len(offset)
                        .and_then(|()| file.sync_all())
                        .map_err(|error| io_error("truncate", &path, error))?;
                    break;
                }
            }
        }
        segments.push_back(Segment {
            number,
            len: offset,
        });
    }
    let head = if segments.iter().any(|segment| segment.number == head.0) {
        let len = segments
            .iter()
            .find(|segment| segment.number == head.0)
            .map_or(0, |segment| segment.len);
        (head.0, head.1.min(len))
    } else {
        (segments.front().map_or(head.0, |segment| segment.number), 0)
    };
    Ok(State {
        segments,
        head,
        tail: None,
        level,
    })
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

    fn level(&self) -> SpoolLevel {
        self.level
            .lock()
            .map_or(SpoolLevel::default(), |level| *level)
    }
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
mod tests {
    use super::*;
    use crate::contract::spool::{numbered, run_all};

    fn spool_in(directory: &Path) -> Arc<FileSpool> {
        Arc::new(FileSpool::open(directory).unwrap())
    }

    #[tokio::test]
    async fn file_spool_contract() {
        let directory = tempfile::tempdir().unwrap();
        run_all(&spool_in(directory.path())).await;
        let small = tempfile::tempdir().unwrap();
        run_all(&Arc::new(
            FileSpool::open(small.path())
                .unwrap()
                .with_segment_bytes(40),
        ))
        .await;
    }

    #[tokio::test]
    async fn what_was_pushed_and_not_popped_survives_a_restart_across_segments() {
        let directory = tempfile::tempdir().unwrap();
        {
            let spool = Arc::new(
                FileSpool::open(directory.path())
                    .unwrap()
                    .with_segment_bytes(100),
            );
            for index in 0..50 {
                spool.push(&[numbered(index)]).await.unwrap();
            }
            spool.pop(17).await.unwrap();
            let segments = fs::read_dir(directory.path())
                .unwrap()
                .filter(|entry| {
                    entry
                        .as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".seg")
                })
                .count();
            assert!(segments > 1, "records span several segments");
        }
        let reopened = Arc::new(
            FileSpool::open(directory.path())
                .unwrap()
                .with_segment_bytes(100),
        );
        assert_eq!(Spool::level(&reopened).records, 33);
        assert_eq!(
            reopened.peek(1_000).await.unwrap(),
            (17..50).map(numbered).collect::<Vec<_>>()
        );
        reopened.push(&[numbered(50)]).await.unwrap();
        reopened.pop(33).await.unwrap();
        assert_eq!(reopened.peek(10).await.unwrap(), vec![numbered(50)]);
    }

    #[tokio::test]
    async fn a_write_cut_short_by_a_crash_is_truncated_and_nothing_else_is_lost() {
        let directory = tempfile::tempdir().unwrap();
        {
            let spool = spool_in(directory.path());
            spool.push(&[numbered(1), numbered(2)]).await.unwrap();
        }
        let segment = segment_path(directory.path(), 1);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        let torn = encode(&numbered(3)).unwrap();
        file.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(file);
        let reopened = spool_in(directory.path());
        assert_eq!(
            reopened.peek(10).await.unwrap(),
            vec![numbered(1), numbered(2)]
        );
        reopened.push(&[numbered(4)]).await.unwrap();
        assert_eq!(
            reopened.peek(10).await.unwrap(),
            vec![numbered(1), numbered(2), numbered(4)]
        );
    }

    #[tokio::test]
    async fn damage_inside_the_spool_is_moved_aside_not_dropped() {
        let directory = tempfile::tempdir().unwrap();
        {
            let spool = Arc::new(
                FileSpool::open(directory.path())
                    .unwrap()
                    .with_segment_bytes(30),
            );
            for index in 0..4 {
                spool.push(&[numbered(index)]).await.unwrap();
            }
        }
        // Flip a byte in the first record of the first segment (which holds records 0
        // and 1): record boundaries after damage cannot be trusted, so the rest of that
        // segment is moved aside whole.
        let first = segment_path(directory.path(), 1);
        let mut bytes = fs::read(&first).unwrap();
        let segment_len = bytes.len();
        bytes[HEADER_BYTES as usize + 3] ^= 0xff;
        fs::write(&first, &bytes).unwrap();
        let reopened = spool_in(directory.path());
        let kept: Vec<_> = fs::read_dir(directory.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".corrupt-"))
            .collect();
        assert_eq!(kept.len(), 1, "the damaged bytes are kept: {kept:?}");
        assert_eq!(
            fs::read(directory.path().join(&kept[0])).unwrap().len(),
            segment_len
        );
        assert_eq!(
            reopened.peek(10).await.unwrap(),
            (2..4).map(numbered).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn one_process_at_a_time_and_free_slots_are_found() {
        let directory = tempfile::tempdir().unwrap();
        let held = spool_in(directory.path());
        let refused = FileSpool::open(directory.path()).unwrap_err();
        assert!(refused.to_string().contains("--spool-dir"), "{refused}");
        drop(held);
        let parent = tempfile::tempdir().unwrap();
        let first = FileSpool::claim_slot(parent.path()).unwrap();
        let second = FileSpool::claim_slot(parent.path()).unwrap();
        assert_ne!(first.directory, second.directory);
        second.spool.push(&[numbered(1)]).await.unwrap();
        drop(second);
        let orphans = FileSpool::orphaned_slots(parent.path()).unwrap();
        assert_eq!(orphans.len(), 1, "the stopped process's records are found");
        assert_eq!(orphans[0].spool.peek(5).await.unwrap(), vec![numbered(1)]);
    }
}
