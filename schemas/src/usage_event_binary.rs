//! The usage event's binary form: what version 2 and 3 frames carry (`usage_frame`). Fixed
//! fields at fixed offsets, then the strings with their lengths, so a consumer reads an
//! event with a few loads and one copy per string, and the log stores about half the
//! bytes of the JSON line (before compression).
//!
//! ```text
//! offset size  field
//!      0   16  event_id (the UUID's bytes)
//!     16    2  schema_version
//!     18    8  occurred_at, milliseconds since the Unix epoch (signed)
//!     26    1  operation (see OPERATION_CODES)
//!     27    1  api (0 absent, see API_CODES)
//!     28    2  status
//!     30    1  outcome (see OUTCOME_CODES)
//!     31    1  flags: bit 0 upstream_request_id present, bit 1 upstream_latency_ms present;
//!              version 3 only: bit 2 request_id is the event id, bit 3 upstream_request_id
//!              is a UUID carried as its 16 bytes
//!     32   72  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
//!              latency_ms, upstream_latency_ms (0 when absent), request_bytes,
//!              response_bytes, instance_seq: nine u64
//!    104    …  customer_id, key_id, request_id, upstream_request_id (only when flagged),
//!              model_id, proxy_instance: each a u32 length and its UTF-8 bytes
//!   last   16  version 3, flag bit 3: upstream_request_id's UUID (and no text for it above)
//! ```
//!
//! **Version 3** (the [`IdForm::Compact`] form, what proxies write) carries the ids that are
//! UUIDs as UUIDs: `request_id` is not carried when it is the event id's hyphenated form
//! (the proxy's request id is its event id: flag bit 2), and `upstream_request_id` is its 16
//! bytes, last, when it is a UUID in lowercase hyphenated form (Bedrock's are: flag bit 3).
//! Last, so the strings before it are one run of text, checked as UTF-8 at once. Those ids
//! were two thirds of an event's random bytes: as text, 72 of them for the log to store
//! and the consumer to decompress, check as UTF-8 and copy. Either id in any other form is
//! carried as text, as in version 2.
//!
//! Every integer is little-endian. The codes of the enums are fixed here, once, and never
//! reused; an unknown code is an error that names it. Each event has one form in each
//! version: whatever [`UsageEvent::decode_binary_as`] accepts, [`UsageEvent::encode_binary_as`]
//! writes back byte for byte (tested).

use chrono::DateTime;
use uuid::Uuid;

use crate::DecodeError;
use crate::name::Names;
use crate::request_id::RequestId;
use crate::usage_event::{ApiSurface, Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};

/// Bytes before the strings.
pub const FIXED_LEN: usize = 104;

const UPSTREAM_REQUEST_ID: u8 = 1;
const UPSTREAM_LATENCY: u8 = 2;
/// Version 3: `request_id` is the event id's hyphenated form, not carried.
const REQUEST_ID_IS_EVENT_ID: u8 = 4;
/// Version 3: `upstream_request_id` is a UUID (lowercase, hyphenated), carried as its 16 bytes.
const UPSTREAM_ID_AS_UUID: u8 = 8;

/// How an event's ids are carried: the binary forms of frame versions 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdForm {
    /// Version 2: every id but the event id as text.
    Text,
    /// Version 3: ids that are UUIDs as UUIDs (see the module's documentation).
    Compact,
}

impl IdForm {
    fn known_flags(self) -> u8 {
        match self {
            Self::Text => UPSTREAM_REQUEST_ID | UPSTREAM_LATENCY,
            Self::Compact => {
                UPSTREAM_REQUEST_ID
                    | UPSTREAM_LATENCY
                    | REQUEST_ID_IS_EVENT_ID
                    | UPSTREAM_ID_AS_UUID
            }
        }
    }
}

/// Each operation's code in the binary form.
const OPERATION_CODES: [(Operation, u8); 5] = [
    (Operation::Invoke, 1),
    (Operation::InvokeStream, 2),
    (Operation::Converse, 3),
    (Operation::ConverseStream, 4),
    (Operation::CountTokens, 5),
];

/// Each API's code in the binary form (0 is an event without `api`).
const API_CODES: [(ApiSurface, u8); 4] = [
    (ApiSurface::Bedrock, 1),
    (ApiSurface::Spec, 2),
    (ApiSurface::Anthropic, 3),
    (ApiSurface::OpenAi, 4),
];

/// Each outcome's code in the binary form.
const OUTCOME_CODES: [(Outcome, u8); 5] = [
    (Outcome::Success, 1),
    (Outcome::ClientError, 2),
    (Outcome::UpstreamError, 3),
    (Outcome::RejectedLimit, 4),
    (Outcome::ClientAborted, 5),
];

fn code_of<T: PartialEq + Copy>(codes: &[(T, u8)], value: T) -> u8 {
    codes
        .iter()
        .find(|(known, _)| *known == value)
        .map_or(0, |(_, code)| *code)
}

/// Each code's value, from a table of codes (`None` for a code no value has): a decoder
/// finds a value by indexing, not by searching the table.
const fn by_code<T: Copy, const N: usize>(codes: [(T, u8); N]) -> [Option<T>; 256] {
    let mut values = [None; 256];
    let mut at = 0;
    while at < N {
        values[codes[at].1 as usize] = Some(codes[at].0);
        at += 1;
    }
    values
}

const OPERATION_BY_CODE: [Option<Operation>; 256] = by_code(OPERATION_CODES);
const API_BY_CODE: [Option<ApiSurface>; 256] = by_code(API_CODES);
const OUTCOME_BY_CODE: [Option<Outcome>; 256] = by_code(OUTCOME_CODES);

fn value_of<T: Copy>(by_code: &[Option<T>; 256], code: u8, field: &str) -> Result<T, DecodeError> {
    by_code[usize::from(code)].ok_or_else(|| {
        damaged(format!(
            "{field} has code {code}, which this build does not know: upgrade tollgate"
        ))
    })
}

fn damaged(reason: String) -> DecodeError {
    DecodeError::Binary(reason)
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    // A string over 4 GiB cannot be in an event the proxy built (a request is capped far
    // below that); it is cut to the length the form can state rather than misframed.
    let bytes = text.as_bytes();
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[..len as usize]);
}

impl UsageEvent {
    /// Appends the event's binary form to `out`: version 3, ids compact.
    pub fn encode_binary(&self, out: &mut Vec<u8>) {
        self.encode_binary_as(IdForm::Compact, out);
    }

    /// Appends the event's binary form with its ids in `form` to `out`.
    pub fn encode_binary_as(&self, form: IdForm, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.upstream_request_id.is_some() {
            flags |= UPSTREAM_REQUEST_ID;
        }
        if self.upstream_latency_ms.is_some() {
            flags |= UPSTREAM_LATENCY;
        }
        let mut upstream_uuid = None;
        if form == IdForm::Compact {
            if self.request_id.as_uuid() == Some(&self.event_id) {
                flags |= REQUEST_ID_IS_EVENT_ID;
            }
            upstream_uuid = self
                .upstream_request_id
                .as_ref()
                .and_then(RequestId::as_uuid);
            if upstream_uuid.is_some() {
                flags |= UPSTREAM_ID_AS_UUID;
            }
        }
        out.reserve(FIXED_LEN + 6 * 4 + 256);
        out.extend_from_slice(self.event_id.as_bytes());
        out.extend_from_slice(&self.schema_version.to_le_bytes());
        out.extend_from_slice(&self.occurred_at.timestamp_millis().to_le_bytes());
        out.push(code_of(&OPERATION_CODES, self.operation));
        out.push(self.api.map_or(0, |api| code_of(&API_CODES, api)));
        out.extend_from_slice(&self.status.to_le_bytes());
        out.push(code_of(&OUTCOME_CODES, self.outcome));
        out.push(flags);
        for number in [
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.latency_ms,
            self.upstream_latency_ms.unwrap_or(0),
            self.request_bytes,
            self.response_bytes,
            self.instance_seq,
        ] {
            out.extend_from_slice(&number.to_le_bytes());
        }
        put_string(out, &self.customer_id);
        put_string(out, &self.key_id);
        if flags & REQUEST_ID_IS_EVENT_ID == 0 {
            put_string(out, self.request_id.text().as_str());
        }
        if let (None, Some(upstream)) = (upstream_uuid, &self.upstream_request_id) {
            put_string(out, upstream.text().as_str());
        }
        put_string(out, &self.model_id);
        put_string(out, &self.proxy_instance);
        if let Some(upstream) = upstream_uuid {
            out.extend_from_slice(upstream.as_bytes());
        }
    }

    /// Decodes one event's binary form (version 3, ids compact), all of `bytes`.
    pub fn decode_binary(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_binary_as(IdForm::Compact, bytes)
    }

    /// Decodes one event's binary form with its ids in `form`, all of `bytes`. Damage (a
    /// short record, an unknown code, a string that is not UTF-8, bytes left over, an id
    /// in another form than the event's one) is a typed error naming it.
    pub fn decode_binary_as(form: IdForm, bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_binary_with(form, bytes, &mut Names::default())
    }

    /// As [`Self::decode_binary_as`], the event's names shared through `names` with the
    /// other events decoded through it (a frame's, a run's).
    pub fn decode_binary_with(
        form: IdForm,
        bytes: &[u8],
        names: &mut Names,
    ) -> Result<Self, DecodeError> {
        let Some((fixed, strings)) = bytes.split_first_chunk::<FIXED_LEN>() else {
            return Err(damaged(format!(
                "{} bytes, the fixed fields alone take {FIXED_LEN}",
                bytes.len()
            )));
        };
        let schema_version = u16::from_le_bytes([fixed[16], fixed[17]]);
        if schema_version != USAGE_EVENT_SCHEMA_VERSION {
            return Err(DecodeError::UnknownVersion {
                found: u64::from(schema_version),
                supported: u64::from(USAGE_EVENT_SCHEMA_VERSION),
            });
        }
        let flags = fixed[31];
        if flags & !form.known_flags() != 0 {
            return Err(damaged(format!(
                "flags {flags:#04x} set bits this build does not know: upgrade tollgate"
            )));
        }
        if flags & UPSTREAM_ID_AS_UUID != 0 && flags & UPSTREAM_REQUEST_ID == 0 {
            return Err(damaged(
                "upstream_request_id is flagged a UUID but flagged absent".to_owned(),
            ));
        }
        let event_id = Uuid::from_bytes(word(fixed, 0));
        let millis = i64::from_le_bytes(word(fixed, 18));
        let occurred_at = DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| damaged(format!("occurred_at {millis} ms is out of range")))?;
        let api = match fixed[27] {
            0 => None,
            code => Some(value_of(&API_BY_CODE, code, "api")?),
        };
        let number = |index: usize| u64::from_le_bytes(word(fixed, 32 + 8 * index));
        if flags & UPSTREAM_LATENCY == 0 && number(5) != 0 {
            // One form per event: an absent latency is written as 0.
            return Err(damaged(format!(
                "upstream_latency_ms is {} but flagged absent",
                number(5)
            )));
        }
        let (strings, upstream_uuid) = split_upstream_uuid(strings, flags)?;
        let mut strings = Strings::new(strings);
        let customer_id = names.name(strings.next("customer_id")?);
        let key_id = names.name(strings.next("key_id")?);
        let request_id = strings.request_id(form, flags, &event_id)?;
        let upstream_request_id = match upstream_uuid {
            Some(uuid) => Some(RequestId::of_uuid(uuid)),
            None => strings.upstream_request_id(form, flags)?,
        };
        let model_id = names.name(strings.next("model_id")?);
        let proxy_instance = names.name(strings.next("proxy_instance")?);
        let left = strings.bytes.len() - strings.at;
        if left > 0 {
            return Err(damaged(format!("{left} bytes follow the last field")));
        }
        Ok(Self {
            event_id,
            schema_version,
            occurred_at,
            customer_id,
            key_id,
            request_id,
            upstream_request_id,
            model_id,
            operation: value_of(&OPERATION_BY_CODE, fixed[26], "operation")?,
            api,
            status: u16::from_le_bytes([fixed[28], fixed[29]]),
            outcome: value_of(&OUTCOME_BY_CODE, fixed[30], "outcome")?,
            input_tokens: number(0),
            output_tokens: number(1),
            cache_read_tokens: number(2),
            cache_write_tokens: number(3),
            latency_ms: number(4),
            upstream_latency_ms: (flags & UPSTREAM_LATENCY != 0).then(|| number(5)),
            request_bytes: number(6),
            response_bytes: number(7),
            proxy_instance,
            instance_seq: number(8),
        })
    }
}

/// `N` bytes of `fixed` from `at`; every caller's range lies inside the fixed part.
fn word<const N: usize>(fixed: &[u8; FIXED_LEN], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&fixed[at..at + N]);
    out
}

/// The bytes after the fixed fields as their strings and, when flagged, the upstream
/// request id's UUID (their last 16 bytes).
fn split_upstream_uuid(bytes: &[u8], flags: u8) -> Result<(&[u8], Option<Uuid>), DecodeError> {
    if flags & UPSTREAM_ID_AS_UUID == 0 {
        return Ok((bytes, None));
    }
    match bytes.split_last_chunk::<16>() {
        Some((strings, uuid)) => Ok((strings, Some(Uuid::from_bytes(*uuid)))),
        None => Err(damaged(format!(
            "upstream_request_id is cut short: {} bytes, its UUID takes 16",
            bytes.len()
        ))),
    }
}

/// The strings after the fixed fields, read in order.
struct Strings<'a> {
    bytes: &'a [u8],
    /// `bytes` as text when all of it is UTF-8 (the lengths of strings under 128 bytes are
    /// too), so each string is a slice of it rather than checked on its own.
    text: Option<&'a str>,
    /// Where the next string's length starts.
    at: usize,
}

impl<'a> Strings<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            // Checked with SIMD: most of an event's strings are this one run of text.
            text: simdutf8::basic::from_utf8(bytes).ok(),
            at: 0,
        }
    }

    /// `request_id`: the event id's text when flagged so, else carried as text (which in
    /// version 3 must not be the event id's).
    fn request_id(
        &mut self,
        form: IdForm,
        flags: u8,
        event_id: &Uuid,
    ) -> Result<RequestId, DecodeError> {
        if flags & REQUEST_ID_IS_EVENT_ID != 0 {
            return Ok(RequestId::of_uuid(*event_id));
        }
        let id = RequestId::from(self.next("request_id")?);
        if form == IdForm::Compact && id.as_uuid() == Some(event_id) {
            return Err(damaged(
                "request_id is the event id as text, which version 3 flags instead".to_owned(),
            ));
        }
        Ok(id)
    }

    /// `upstream_request_id` as text, when flagged present (in version 3 not a UUID's
    /// lowercase hyphenated form, which is carried as its bytes, last).
    fn upstream_request_id(
        &mut self,
        form: IdForm,
        flags: u8,
    ) -> Result<Option<RequestId>, DecodeError> {
        if flags & UPSTREAM_REQUEST_ID == 0 {
            return Ok(None);
        }
        let id = RequestId::from(self.next("upstream_request_id")?);
        if form == IdForm::Compact && id.as_uuid().is_some() {
            return Err(damaged(
                "upstream_request_id is a UUID as text, which version 3 carries as 16 bytes"
                    .to_owned(),
            ));
        }
        Ok(Some(id))
    }

    fn next(&mut self, field: &str) -> Result<&'a str, DecodeError> {
        let rest: &'a [u8] = self.bytes.get(self.at..).unwrap_or_default();
        let Some((len, rest)) = rest.split_first_chunk::<4>() else {
            return Err(damaged(format!("{field} is cut short (no length)")));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(damaged(format!(
                "{field} declares {len} bytes but {} remain",
                rest.len()
            )));
        }
        let start = self.at + 4;
        self.at = start + len;
        if let Some(text) = self.text.and_then(|text| text.get(start..start + len)) {
            return Ok(text);
        }
        // Not a slice of checked text (the run is not all UTF-8): checked on its own.
        std::str::from_utf8(&rest[..len])
            .map_err(|error| damaged(format!("{field} is not UTF-8: {error}")))
    }
}

#[cfg(test)]
#[path = "usage_event_binary_tests.rs"]
mod tests;
