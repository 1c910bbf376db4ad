//! The event log's record format: one record carries a frame, a batch of usage events from
//! one producer (a proxy process), optionally compressed.
//!
//! ```text
//! offset size  field
//!      0    4  magic "TGUF"
//!      4    1  frame version: 1 JSON lines, 2 binary events, 3 binary events with compact ids
//!      5    1  codec: 0 none, 1 zstd, 2 LZ4
//!      6    2  reserved, zero
//!      8    4  event count, little-endian
//!     12    4  payload length in bytes (as stored, after compression), little-endian
//!     16    …  payload (decompressed): version 1, the events' JSON, one per line, each line
//!              ending in '\n'; versions 2 and 3, each event's binary form
//!              (`usage_event_binary`, ids as text or compact) after its length as a
//!              little-endian u32
//! ```
//!
//! Proxies write version 3, compressed with LZ4 when it is over a KiB: binary events are
//! about half the bytes of JSON lines before compression, a consumer reads one with loads
//! and a copy per string instead of parsing text, and the compact ids leave LZ4 (a third
//! of zstd's cost to decompress) as small a frame as zstd made of version 2. Versions 1
//! and 2 (written by earlier proxies, or by `--event-format json` and `binary-v2`, always
//! with zstd, which older consumers read) are still read, and so are records written
//! before frames existed, which hold one event's JSON object ([`decode_record`]).
//!
//! One record per batch keeps the log's per-record costs (Kinesis bills each record at
//! least 1 KiB on demand; 1,000 records/s per shard) per batch, not per event. The header
//! carries its own length, so frames can be told apart and split again when a raw archive
//! holds them back to back ([`split_archive`]).

mod compression;
mod format;
mod records;

use bytes::Bytes;

pub use compression::{FrameCodec, MAX_DECOMPRESSED_PAYLOAD};
use compression::{lz4_compress, lz4_decompress, with_compressor, with_decompressor};
pub use format::EventFormat;
pub use records::{record_format, single_event_frame, split_archive};

use crate::UsageEvent;
use crate::error::DecodeError;
use crate::name::Names;
use crate::usage_event_binary;

/// The first four bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"TGUF";
/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 16;

/// The largest payload the proxy puts in one frame before compression: a Kinesis record
/// holds 1 MiB with its partition key, and an uncompressed frame must fit too.
pub const MAX_FRAME_PAYLOAD_BYTES: usize = 900 * 1024;

/// A frame whose events fit in one KiB (with the frame's header) is stored as it is; a
/// larger one is compressed with its format's codec: LZ4 makes binary events with compact
/// ids about three times smaller, zstd JSON lines about ten times. Kinesis bills each
/// record by the KiB rounded up, so compressing a small frame (one or two events) saves
/// nothing there, and for one event zstd costs about 8 µs of a durable call's 25
/// (`cargo bench -p proxy --bench emitter`).
pub const COMPRESS_ABOVE_BYTES: usize = 1024 - FRAME_HEADER_LEN;

/// Builds one frame event by event.
#[derive(Debug, Default)]
pub struct FrameBuilder {
    format: EventFormat,
    payload: Vec<u8>,
    count: u32,
}

impl FrameBuilder {
    /// An empty frame of binary events (version 3).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty frame of `format`.
    pub fn with_format(format: EventFormat) -> Self {
        Self {
            format,
            ..Self::default()
        }
    }

    /// The format of the frame's events.
    pub fn format(&self) -> EventFormat {
        self.format
    }

    /// Adds an event. On an encoding error the frame is left as it was.
    pub fn push(&mut self, event: &UsageEvent) -> Result<(), serde_json::Error> {
        let before = self.payload.len();
        match self.format.id_form() {
            None => {
                if let Err(error) = serde_json::to_writer(&mut self.payload, event) {
                    self.payload.truncate(before);
                    return Err(error);
                }
                self.payload.push(b'\n');
            }
            Some(form) => {
                self.payload.extend_from_slice(&[0; 4]);
                event.encode_binary_as(form, &mut self.payload);
                let len = self.payload.len() - before - 4;
                let Ok(len) = u32::try_from(len) else {
                    self.payload.truncate(before);
                    return Err(serde_json::Error::io(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "a usage event's binary form is over 4 GiB",
                    )));
                };
                self.payload[before..before + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
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

    /// Appends another frame's events, as [`frame_payload`] returns them: merging frames
    /// without decoding their events. Only a payload of this frame's format is taken; one
    /// of another format is refused (`false`) and the frame is left as it was.
    pub fn push_payload(&mut self, payload: &FramePayload) -> bool {
        if payload.format != self.format {
            return false;
        }
        self.payload.extend_from_slice(&payload.bytes);
        self.count = self.count.saturating_add(payload.count);
        true
    }

    /// Bytes of payload so far, before compression.
    pub fn payload_bytes(&self) -> usize {
        self.payload.len()
    }

    /// The codec proxies store this frame with: none while its events fit in
    /// [`COMPRESS_ABOVE_BYTES`], its format's codec (`EventFormat::compressed_codec`) past it.
    pub fn codec(&self) -> FrameCodec {
        if self.payload.len() > COMPRESS_ABOVE_BYTES {
            self.format.compressed_codec()
        } else {
            FrameCodec::None
        }
    }

    /// The frame, its payload stored with `codec`.
    pub fn finish(self, codec: FrameCodec) -> std::io::Result<Vec<u8>> {
        let payload = match codec {
            FrameCodec::None => self.payload,
            FrameCodec::Zstd => with_compressor(|compressor| compressor.compress(&self.payload))?,
            FrameCodec::Lz4 => lz4_compress(&self.payload)?,
        };
        let payload_len = u32::try_from(payload.len()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a frame payload is over 4 GiB",
            )
        })?;
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        frame.extend_from_slice(&FRAME_MAGIC);
        frame.push(self.format.version());
        frame.push(codec.byte());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&self.count.to_le_bytes());
        frame.extend_from_slice(&payload_len.to_le_bytes());
        frame.extend_from_slice(&payload);
        Ok(frame)
    }
}

/// Encodes events into one frame of binary events.
pub fn encode_frame<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
    codec: FrameCodec,
) -> Result<Vec<u8>, serde_json::Error> {
    encode_frame_as(events, EventFormat::Binary, codec)
}

/// Encodes events into one frame of `format`.
pub fn encode_frame_as<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
    format: EventFormat,
    codec: FrameCodec,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut builder = FrameBuilder::with_format(format);
    for event in events {
        builder.push(event)?;
    }
    builder.finish(codec).map_err(serde_json::Error::io)
}

/// One event of a record: its bytes (for quarantine: a JSON line, or an event's binary
/// form without its length) and what they decode to.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedLine {
    pub bytes: Bytes,
    pub event: Result<UsageEvent, DecodeError>,
}

/// A frame's header, read and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHeader {
    format: EventFormat,
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
    Ok(FrameHeader {
        format: EventFormat::from_version(bytes[4])?,
        codec: FrameCodec::from_byte(bytes[5])?,
        event_count: read_u32(bytes, 8),
        payload_len: read_u32(bytes, 12),
    })
}

/// The frame's events: the payload itself (shared with the record, not copied) or,
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
        FrameCodec::Lz4 => lz4_decompress(payload).map(Bytes::from),
    }
}

/// A frame's header and its payload (decompressed), when the header reads and
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

/// A frame's events as they are stored (decompressed), ready to be appended to another
/// frame of the same format ([`FrameBuilder::push_payload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePayload {
    pub format: EventFormat,
    /// How the record stored the payload (`bytes` are always decompressed).
    pub codec: FrameCodec,
    pub count: u32,
    pub bytes: Bytes,
}

/// A frame's events, when the record is a frame that reads whole and holds exactly the
/// events its header counts (whole JSON lines, none blank; or binary events whose lengths
/// end at the payload's end); `None` otherwise (a record from before frames, or a damaged
/// one).
pub fn frame_payload(record: &Bytes) -> Option<FramePayload> {
    if !is_frame(record) {
        return None;
    }
    let (header, payload) = read_frame(record).ok()?;
    let count = match header.format.id_form() {
        None => {
            if payload.last() != Some(&b'\n')
                || payload.first() == Some(&b'\n')
                || memchr::memmem::find(&payload, b"\n\n").is_some()
            {
                return None;
            }
            memchr::memchr_iter(b'\n', &payload).count()
        }
        Some(_) => split_binary(&payload, |_| {}).ok()?,
    };
    if count != header.event_count {
        return None;
    }
    Some(FramePayload {
        format: header.format,
        codec: header.codec,
        count: u32::try_from(count).ok()?,
        bytes: payload,
    })
}

/// Calls `each` with a binary payload's events in order (each without its length) and
/// returns how many there were, or what is damaged: a length that runs past the end, or
/// bytes too few for a length.
fn split_binary(payload: &Bytes, mut each: impl FnMut(Bytes)) -> Result<usize, DecodeError> {
    let mut count = 0;
    let mut at = 0;
    while at < payload.len() {
        let Some(len) = payload.get(at..at + 4) else {
            return Err(DecodeError::Frame(format!(
                "event {} of the payload is cut short: {} bytes left, its length takes 4",
                count + 1,
                payload.len() - at
            )));
        };
        let len = read_u32(len, 0);
        let start = at + 4;
        let Some(end) = start.checked_add(len).filter(|end| *end <= payload.len()) else {
            return Err(DecodeError::Frame(format!(
                "event {} of the payload declares {len} bytes but {} remain",
                count + 1,
                payload.len() - start
            )));
        };
        each(payload.slice(start..end));
        count += 1;
        at = end;
    }
    Ok(count)
}

/// Decodes one log record: a frame of events, or (written before frames) one event's JSON.
///
/// `Err` means the record as a whole cannot be read (a damaged header or payload, a count
/// that does not match its lines); it is quarantined whole. Otherwise each line decodes on
/// its own, so one bad line never hides the events next to it.
pub fn decode_record(record: &Bytes) -> Result<Vec<DecodedLine>, DecodeError> {
    decode_record_with(record, &mut Names::default())
}

/// As [`decode_record`], the events' names shared through `names` with the other events
/// decoded through it (a consumer's run: one copy of each customer's name, not one an event).
pub fn decode_record_with(
    record: &Bytes,
    names: &mut Names,
) -> Result<Vec<DecodedLine>, DecodeError> {
    if !is_frame(record) {
        return Ok(vec![DecodedLine {
            bytes: record.clone(),
            event: UsageEvent::decode_json_with(record, names),
        }]);
    }
    let (header, payload) = read_frame(record)?;
    let decoded = match header.format.id_form() {
        None => json_lines(&payload, header.event_count, names),
        Some(form) => {
            // Room for the declared count, bounded by what the payload could hold.
            let room = header
                .event_count
                .min(payload.len() / usage_event_binary::FIXED_LEN);
            let mut decoded = Vec::with_capacity(room);
            split_binary(&payload, |bytes| {
                decoded.push(DecodedLine {
                    event: UsageEvent::decode_binary_with(form, &bytes, names),
                    bytes,
                });
            })?;
            decoded
        }
    };
    if decoded.len() != header.event_count {
        return Err(DecodeError::Frame(format!(
            "frame declares {} events but holds {}",
            header.event_count,
            decoded.len()
        )));
    }
    Ok(decoded)
}

/// A JSON-lines payload's events, line by line.
fn json_lines(lines: &Bytes, declared: usize, names: &mut Names) -> Vec<DecodedLine> {
    let mut decoded: Vec<DecodedLine> = Vec::with_capacity(declared.min(lines.len()));
    let mut start = 0;
    // Line ends found with memchr (SIMD), not byte by byte; a last line without its
    // newline is read too.
    let ends = memchr::memchr_iter(b'\n', lines).chain(std::iter::once(lines.len()));
    for end in ends {
        if end > start {
            let line = lines.slice(start..end);
            let event = UsageEvent::decode_json_with(&line, names);
            decoded.push(DecodedLine { bytes: line, event });
        }
        start = end + 1;
    }
    decoded
}

/// Every event of a record, or the first error: for readers that need the record whole
/// (tests, tools). The consumer uses [`decode_record`], which keeps good lines.
pub fn decode_events(record: &Bytes) -> Result<Vec<UsageEvent>, DecodeError> {
    decode_events_with(record, &mut Names::default())
}

/// As [`decode_events`], the events' names shared through `names` (see [`decode_record_with`]).
pub fn decode_events_with(
    record: &Bytes,
    names: &mut Names,
) -> Result<Vec<UsageEvent>, DecodeError> {
    decode_record_with(record, names)?
        .into_iter()
        .map(|line| line.event)
        .collect()
}

#[cfg(test)]
mod tests;
