//! The spool's on-disk record format: `u32` payload length, `u32` CRC32 of the payload
//! (both little endian), payload = `u16` partition-key length, the key, the data; and the
//! segment files' names.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{LogRecord, Result, StoreError};

/// Size at which a new segment is started.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
pub(super) const HEADER_BYTES: u64 = 8;
/// Largest payload accepted when reading back (a usage event is far smaller).
const MAX_PAYLOAD_BYTES: u32 = 16 * 1024 * 1024;

pub(super) fn io_error(what: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("spool: cannot {what} {}: {error}", path.display()))
}

pub(super) fn segment_path(directory: &Path, number: u64) -> PathBuf {
    directory.join(format!("{number:020}.seg"))
}

pub(super) fn encode(record: &LogRecord) -> Result<Vec<u8>> {
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
pub(super) enum Read1 {
    Record { record: LogRecord, size: u64 },
    End,
    Damaged,
}

pub(super) fn read_one(file: &mut File) -> std::io::Result<Read1> {
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
