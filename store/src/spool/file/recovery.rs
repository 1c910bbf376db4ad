//! The spool's state in memory and how it is rebuilt from the directory after a crash:
//! the `HEAD` file, the segments, and the repair of damaged or cut-short records.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::format::{Read1, io_error, read_one, segment_path};
use super::mirror::{MIRROR_BYTES, Mirror};
use crate::Result;
use crate::spool::SpoolLevel;

#[derive(Debug)]
pub(super) struct Segment {
    pub(super) number: u64,
    pub(super) len: u64,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) segments: VecDeque<Segment>,
    /// The first undelivered record: a segment number and an offset in it.
    pub(super) head: (u64, u64),
    pub(super) tail: Option<File>,
    /// `HEAD`, open for writing once the head first moves.
    pub(super) head_file: Option<File>,
    pub(super) level: SpoolLevel,
    /// The undelivered records in memory while this process wrote them all.
    pub(super) mirror: Mirror,
}

pub(super) fn sync_directory(directory: &Path) -> Result<()> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| io_error("sync", directory, error))
}

/// Stores the head in `HEAD`, in place: one write of a fixed-width line at its start, on
/// a handle kept open in `file`. A kill of the process cannot cut one short write, so a
/// restart reads either the old head or the new one. Not synced: the drainer moves the
/// head after every append to the log, and an fsync each time would cost more than the
/// append. After a crash of the machine the head may be stale or unreadable; what
/// follows it is then sent again and dropped by consumers.
pub(super) fn write_head(
    directory: &Path,
    file: &mut Option<File>,
    head: (u64, u64),
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let path = directory.join("HEAD");
    if file.is_none() {
        let opened = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| io_error("open", &path, error))?;
        *file = Some(opened);
    }
    let line = format!("{:020} {:020}\n", head.0, head.1);
    file.as_ref()
        .map_or(Ok(()), |handle| handle.write_all_at(line.as_bytes(), 0))
        .map_err(|error| io_error("write", &path, error))
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
        _ => {
            // A head cut short by a crash of the machine: start from the oldest record.
            tracing::warn!(head = %path.display(), content = ?text, "spool head unreadable; sending the spool again from its oldest record (consumers drop the repeats)");
            Ok(None)
        }
    }
}

/// Lists segments, finds the head and counts what is left, repairing damage.
pub(super) fn recover(directory: &Path) -> Result<State> {
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
        head_file: None,
        level,
        mirror: Mirror::new(level.records, MIRROR_BYTES),
    })
}
