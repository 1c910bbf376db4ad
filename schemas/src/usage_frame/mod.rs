//! The event log's record format: one record carries a frame, a batch of usage events from
//! one producer (a proxy process), as JSON lines, optionally compressed.
//!
//! ```text
//! offset size  field
//!      0    4  magic "TGUF"
//!      4    1  frame version (1)
//!      5    1  codec: 0 none, 1 zstd
//!      6    2  reserved, zero
//!      8    4  event count, little-endian
//!     12    4  payload length in bytes (as stored, after compression), little-endian
//!     16    …  payload: the events' JSON, one per line, each line ending in '\n'
//! ```
//!
//! One record per batch keeps the log's per-record costs (Kinesis bills each record at
//! least 1 KiB on demand; 1,000 records/s per shard) per batch, not per event. Records
//! written before frames existed hold one event's JSON object and are still read
//! ([`decode_record`]). The header carries its own length, so frames can be told apart and
//! split again when a raw archive holds them back to back ([`split_archive`]).

use bytes::Bytes;
use std::cell::RefCell;

use crate::UsageEvent;
use crate::error::DecodeError;

/// The first four bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"TGUF";
/// The frame version this build writes and reads.
pub const FRAME_VERSION: u8 = 1;
/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 16;
/// The largest payload a frame may declare once decompressed: a Kinesis record holds at
/// most 1 MiB, and zstd compresses these lines about tenfold.
pub const MAX_DECOMPRESSED_PAYLOAD: usize = 64 * 1024 * 1024;

/// How a frame's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameCodec {
    /// The JSON lines as they are.
    #[default]
    None,
    /// The JSON lines compressed with zstd (level 1: cheap for the proxy, about 10× smaller).
    Zstd,
}

impl FrameCodec {
    fn byte(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Zstd => 1,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            0 => Ok(Self::None),
            1 => Ok(Self::Zstd),
            other => Err(DecodeError::Frame(format!(
                "unknown codec {other}; this build reads 0 (none) and 1 (zstd): upgrade tollgate"
            ))),
        }
    }
}

/// The largest payload the proxy puts in one frame before compression: a Kinesis record
/// holds 1 MiB with its partition key, and an uncompressed frame must fit too.
pub const MAX_FRAME_LINES_BYTES: usize = 900 * 1024;

/// Builds one frame event by event.
#[derive(Debug, Default)]
pub struct FrameBuilder {
    lines: Vec<u8>,
    count: u32,
}

impl FrameBuilder {
    /// An empty frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event's line. On an encoding error the frame is left as it was.
    pub fn push(&mut self, event: &UsageEvent) -> Result<(), serde_json::Error> {
        let before = self.lines.len();
        if let Err(error) = serde_json::to_writer(&mut self.lines, event) {
            self.lines.truncate(before);
            return Err(error);
        }
        self.lines.push(b'\n');
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Events added so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of JSON lines so far, before compression.
    /// Appends `count` events already encoded as JSON lines (each ending in `'\n'`), as
    /// [`frame_lines`] returns them: merging frames without decoding their events.
    pub fn push_lines(&mut self, lines: &[u8], count: u32) {
        self.lines.extend_from_slice(lines);
        self.count = self.count.saturating_add(count);
    }

    pub fn lines_bytes(&self) -> usize {
        self.lines.len()
    }

    /// The frame, its payload stored with `codec`.
    pub fn finish(self, codec: FrameCodec) -> std::io::Result<Vec<u8>> {
        let payload = match codec {
            FrameCodec::None => self.lines,
            FrameCodec::Zstd => with_compressor(|compressor| compressor.compress(&self.lines))?,
        };
        let payload_len = u32::try_from(payload.len()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a frame payload is over 4 GiB",
            )
        })?;
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        frame.extend_from_slice(&FRAME_MAGIC);
        frame.push(FRAME_VERSION);
        frame.push(codec.byte());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&self.count.to_le_bytes());
        frame.extend_from_slice(&payload_len.to_le_bytes());
        frame.extend_from_slice(&payload);
        Ok(frame)
    }
}

thread_local! {
    /// One zstd context per thread, reused: creating one costs more than compressing or
    /// decompressing a small frame (a frame of one event is about 700 bytes).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's compression context (level 1), made on first use.
fn with_compressor<T>(
    work: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Compressor::new(1)?);
        }
        match slot.as_mut() {
            Some(compressor) => work(compressor),
            None => Err(std::io::Error::other("no zstd compression context")),
        }
    })
}

/// Runs `work` with this thread's decompression context, made on first use.
fn with_decompressor<T>(
    work: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(decompressor) => work(decompressor),
            None => Err(std::io::Error::other("no zstd decompression context")),
        }
    })
}

/// Encodes events into one frame.
pub fn encode_frame<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
    codec: FrameCodec,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut builder = FrameBuilder::new();
    for event in events {
        builder.push(event)?;
    }
    builder.finish(codec).map_err(serde_json::Error::io)
}

/// One event line of a record: its bytes (for quarantine) and what they decode to.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedLine {
    pub bytes: Bytes,
    pub event: Result<UsageEvent, DecodeError>,
}

/// A frame's header, read and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHeader {
    codec: FrameCodec,
    event_count: usize,
    payload_len: usize,
}

fn read_u32(bytes: &[u8], at: usize) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word) as usize
}

/// Whether `bytes` starts like a frame (the magic), whatever follows.
pub fn is_frame(bytes: &[u8]) -> bool {
    bytes.starts_with(&FRAME_MAGIC)
}

/// How many events a record carries: a frame's declared count, 1 for anything else (a
/// single event, or damage the consumer will report).
pub fn record_event_count(record: &[u8]) -> usize {
    if is_frame(record) && record.len() >= FRAME_HEADER_LEN {
        read_u32(record, 8)
    } else {
        1
    }
}

fn read_header(bytes: &[u8]) -> Result<FrameHeader, DecodeError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(DecodeError::Frame(format!(
            "frame is cut short: {} bytes, its header alone takes {FRAME_HEADER_LEN}",
            bytes.len()
        )));
    }
    if bytes[4] != FRAME_VERSION {
        return Err(DecodeError::Frame(format!(
            "frame version {} is unknown; this build reads {FRAME_VERSION}: upgrade tollgate",
            bytes[4]
        )));
    }
    Ok(FrameHeader {
        codec: FrameCodec::from_byte(bytes[5])?,
        event_count: read_u32(bytes, 8),
        payload_len: read_u32(bytes, 12),
    })
}

/// The frame's JSON lines: the payload itself (shared with the record, not copied) or,
/// compressed, what it decompresses to.
fn payload_lines(header: FrameHeader, payload: &Bytes) -> Result<Bytes, DecodeError> {
    match header.codec {
        FrameCodec::None => Ok(payload.clone()),
        FrameCodec::Zstd => {
            // The zstd frame declares its size: allocate that, not the largest allowed.
            let size = zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten()
                .and_then(|size| usize::try_from(size).ok())
                .filter(|size| *size <= MAX_DECOMPRESSED_PAYLOAD)
                .ok_or_else(|| {
                    DecodeError::Frame(format!(
                        "frame payload is not a zstd frame declaring a size up to {MAX_DECOMPRESSED_PAYLOAD} bytes"
                    ))
                })?;
            with_decompressor(|decompressor| decompressor.decompress(payload, size))
                .map(Bytes::from)
                .map_err(|error| {
                    DecodeError::Frame(format!("frame payload is not valid zstd: {error}"))
                })
        }
    }
}

/// A frame's header and its payload's JSON lines (decompressed), when the header reads and
/// the payload is as long as it declares.
fn read_frame(record: &Bytes) -> Result<(FrameHeader, Bytes), DecodeError> {
    let header = read_header(record)?;
    let payload = record.slice(FRAME_HEADER_LEN..);
    if payload.len() != header.payload_len {
        return Err(DecodeError::Frame(format!(
            "frame declares a {}-byte payload but holds {} bytes",
            header.payload_len,
            payload.len()
        )));
    }
    Ok((header, payload_lines(header, &payload)?))
}

/// A frame's events as its JSON lines (decompressed, each ending in `'\n'`) and their
/// count, when the record is a frame that reads whole and whose line count matches its
/// header; `None` otherwise (a record from before frames, or a damaged one).
pub fn frame_lines(record: &Bytes) -> Option<(u32, Bytes)> {
    if !is_frame(record) {
        return None;
    }
    let (header, lines) = read_frame(record).ok()?;
    // Whole lines only, none blank: then its lines are exactly its events.
    if lines.last() != Some(&b'\n')
        || lines.first() == Some(&b'\n')
        || memchr::memmem::find(&lines, b"\n\n").is_some()
    {
        return None;
    }
    let count = memchr::memchr_iter(b'\n', &lines).count();
    if count != header.event_count {
        return None;
    }
    Some((u32::try_from(count).ok()?, lines))
}

/// Decodes one log record: a frame of events, or (written before frames) one event's JSON.
///
/// `Err` means the record as a whole cannot be read (a damaged header or payload, a count
/// that does not match its lines); it is quarantined whole. Otherwise each line decodes on
/// its own, so one bad line never hides the events next to it.
pub fn decode_record(record: &Bytes) -> Result<Vec<DecodedLine>, DecodeError> {
    if !is_frame(record) {
        return Ok(vec![DecodedLine {
            bytes: record.clone(),
            event: UsageEvent::decode_json(record),
        }]);
    }
    let (header, lines) = read_frame(record)?;
    let mut decoded: Vec<DecodedLine> = Vec::with_capacity(header.event_count.min(lines.len()));
    let mut start = 0;
    // Line ends found with memchr (SIMD), not byte by byte; a last line without its
    // newline is read too.
    let ends = memchr::memchr_iter(b'\n', &lines).chain(std::iter::once(lines.len()));
    for end in ends {
        if end > start {
            let line = lines.slice(start..end);
            let event = UsageEvent::decode_json(&line);
            decoded.push(DecodedLine { bytes: line, event });
        }
        start = end + 1;
    }
    if decoded.len() != header.event_count {
        return Err(DecodeError::Frame(format!(
            "frame declares {} events but holds {} lines",
            header.event_count,
            decoded.len()
        )));
    }
    Ok(decoded)
}

/// Every event of a record, or the first error: for readers that need the record whole
/// (tests, tools). The consumer uses [`decode_record`], which keeps good lines.
pub fn decode_events(record: &Bytes) -> Result<Vec<UsageEvent>, DecodeError> {
    decode_record(record)?
        .into_iter()
        .map(|line| line.event)
        .collect()
}

/// Splits a raw archive object back into its records: frames (by their declared length)
/// and the JSON lines of single-event records, in order. Newlines between records are
/// skipped. A frame whose declared length runs past the end is returned as it is, so the
/// reader reports it as damaged rather than losing it.
pub fn split_archive(body: &Bytes) -> Vec<Bytes> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let rest = &body[at..];
        if rest[0].is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let end = if is_frame(rest) && rest.len() >= FRAME_HEADER_LEN {
            (at + FRAME_HEADER_LEN + read_u32(rest, 12)).min(body.len())
        } else {
            rest.iter()
                .position(|byte| *byte == b'\n')
                .map_or(body.len(), |newline| at + newline)
        };
        records.push(body.slice(at..end));
        at = end;
    }
    records
}

#[cfg(test)]
#[path = "usage_frame_tests.rs"]
mod tests;
