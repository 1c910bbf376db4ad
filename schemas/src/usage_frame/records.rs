//! Records as wholes: a record's event format, a frame of one already-encoded event (a
//! quarantined event sent again), and a raw archive split back into its records.

use bytes::Bytes;

use super::{
    EventFormat, FRAME_HEADER_LEN, FrameBuilder, FrameCodec, FramePayload, is_frame, read_u32,
};

/// The format of a record's events: a frame's, or JSON for a record from before frames;
/// `None` for a frame whose version this build does not know.
pub fn record_format(record: &[u8]) -> Option<EventFormat> {
    if !is_frame(record) {
        return Some(EventFormat::Json);
    }
    EventFormat::from_version(*record.get(4)?).ok()
}

/// A frame of one event already encoded in `format` (a JSON line without its newline, or a
/// binary event without its length), as a record's quarantined event is sent again.
pub fn single_event_frame(format: EventFormat, event: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut payload = Vec::with_capacity(event.len() + 4);
    match format {
        EventFormat::Json => {
            payload.extend_from_slice(event);
            payload.push(b'\n');
        }
        EventFormat::BinaryV2 | EventFormat::Binary => {
            let len = u32::try_from(event.len()).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "an event over 4 GiB")
            })?;
            payload.extend_from_slice(&len.to_le_bytes());
            payload.extend_from_slice(event);
        }
    }
    let mut frame = FrameBuilder::with_format(format);
    frame.push_payload(&FramePayload {
        format,
        codec: FrameCodec::None,
        count: 1,
        bytes: Bytes::from(payload),
    });
    frame.finish(FrameCodec::None)
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
