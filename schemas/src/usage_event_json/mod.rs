//! Decoding the usage event's JSON: `UsageEvent::decode_json`, and its single pass over a
//! record as producers write it. Strings are read in place (borrowed from the input) and
//! copied once into the event; numbers and the timestamp are parsed without serde's
//! intermediate values.
//!
//! It is a fast path, not a second definition of the format. It accepts only a JSON object
//! holding each of the event's fields exactly once (`api` at most once: records written
//! before it existed lack it), with plain values: strings without escapes, unsigned
//! integers, `null` for the optional fields, and the current `schema_version`. Anything
//! else, well formed or not, yields `None`, and the caller decodes with serde, whose answer
//! (the event or the typed error) is the reference. Whatever this decoder accepts, serde
//! decodes to the same event (proved by tests over mutated records).

mod reader;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::DecodeError;

use crate::arrow_column::StringEnum;
use crate::name::Names;
use crate::request_id::RequestId;
use crate::usage_event::{ApiSurface, Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};
use reader::Reader;

/// The record's version alone, read when the single pass declines the record.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: Option<serde_json::Value>,
}

impl UsageEvent {
    /// Decodes versioned JSON. Corrupt input or an unknown version is a typed error, never a panic.
    ///
    /// A record as producers write it (every field once, plain values) is read in a single
    /// pass that borrows its strings (this module). Any other JSON object
    /// that parses as a current-version event is decoded by serde in one pass; anything else
    /// goes through the version probe first, so every error stays what it was.
    pub fn decode_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_json_with(bytes, &mut Names::default())
    }

    /// As [`Self::decode_json`], a plain record's names shared through `names` with the
    /// other events decoded through it (a frame's, a run's).
    pub fn decode_json_with(bytes: &[u8], names: &mut Names) -> Result<Self, DecodeError> {
        if let Some(event) = decode_plain_event(bytes, names) {
            return Ok(event);
        }
        let is_object = bytes
            .iter()
            .find(|byte| !matches!(byte, b' ' | b'\n' | b'\t' | b'\r'))
            == Some(&b'{');
        if is_object
            && let Ok(event) = serde_json::from_slice::<Self>(bytes)
            && event.schema_version == USAGE_EVENT_SCHEMA_VERSION
        {
            return Ok(event);
        }
        Self::decode_json_probing_version(bytes)
    }

    /// Reads `schema_version` alone first, then the whole event: a missing or unknown
    /// version is reported as such, not as a field error.
    pub(crate) fn decode_json_probing_version(bytes: &[u8]) -> Result<Self, DecodeError> {
        let probe: VersionProbe =
            serde_json::from_slice(bytes).map_err(|error| DecodeError::Json(error.to_string()))?;
        let version = probe
            .schema_version
            .ok_or(DecodeError::MissingVersion)?
            .as_u64()
            .ok_or_else(|| DecodeError::Json("schema_version is not a whole number".into()))?;
        if version != u64::from(USAGE_EVENT_SCHEMA_VERSION) {
            return Err(DecodeError::UnknownVersion {
                found: version,
                supported: u64::from(USAGE_EVENT_SCHEMA_VERSION),
            });
        }
        serde_json::from_slice(bytes).map_err(|error| DecodeError::Json(error.to_string()))
    }
}

/// Decodes one record in a single pass, or `None` when it is not a plain current-version
/// event (the caller then decodes with serde, which names the problem if there is one).
pub(crate) fn decode_plain_event(bytes: &[u8], names: &mut Names) -> Option<UsageEvent> {
    // Valid JSON is valid UTF-8 throughout: checking the record once lets every string be
    // sliced from it without a check of its own.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut reader = Reader {
        text,
        bytes,
        position: 0,
    };
    let mut fields = Fields::default();
    reader.skip_whitespace();
    reader.expect(b'{')?;
    let mut expected = 0;
    loop {
        reader.skip_whitespace();
        // Producers write the fields in declaration order: the expected name is compared in
        // place, and any other name is read as a string and looked up (the next one is then
        // expected after it, so a record without `api` misses once).
        let field = match FIELD_ORDER.get(expected) {
            Some(name) if reader.skip_name(name) => expected,
            _ => field_index(reader.plain_string_bytes()?)?,
        };
        expected = field + 1;
        reader.skip_whitespace();
        reader.expect(b':')?;
        reader.skip_whitespace();
        fields.read_value(field, &mut reader)?;
        reader.skip_whitespace();
        match reader.next_byte()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    reader.skip_whitespace();
    if reader.position != bytes.len() {
        return None;
    }
    fields.into_event(names)
}

/// The fields in declaration order, the order serde writes them in.
const FIELD_ORDER: [&[u8]; 22] = [
    b"event_id",
    b"schema_version",
    b"occurred_at",
    b"customer_id",
    b"key_id",
    b"request_id",
    b"upstream_request_id",
    b"model_id",
    b"operation",
    b"api",
    b"status",
    b"outcome",
    b"input_tokens",
    b"output_tokens",
    b"cache_read_tokens",
    b"cache_write_tokens",
    b"latency_ms",
    b"upstream_latency_ms",
    b"request_bytes",
    b"response_bytes",
    b"proxy_instance",
    b"instance_seq",
];

/// A field's place in [`FIELD_ORDER`]; `None` for a name the event does not have.
fn field_index(name: &[u8]) -> Option<usize> {
    FIELD_ORDER.iter().position(|field| *field == name)
}

/// The fields read so far; each may be set once.
#[derive(Default)]
struct Fields<'a> {
    event_id: Option<Uuid>,
    schema_version: Option<u16>,
    occurred_at: Option<DateTime<Utc>>,
    customer_id: Option<&'a str>,
    key_id: Option<&'a str>,
    request_id: Option<&'a str>,
    upstream_request_id: Option<Option<&'a str>>,
    model_id: Option<&'a str>,
    operation: Option<Operation>,
    api: Option<Option<ApiSurface>>,
    status: Option<u16>,
    outcome: Option<Outcome>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    latency_ms: Option<u64>,
    upstream_latency_ms: Option<Option<u64>>,
    request_bytes: Option<u64>,
    response_bytes: Option<u64>,
    proxy_instance: Option<&'a str>,
    instance_seq: Option<u64>,
}

/// Sets a field read for the first time; a second occurrence (serde's "duplicate field"
/// error) or an unreadable value is `None`.
fn set_once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

impl<'a> Fields<'a> {
    /// Reads the value of the field at `field` in [`FIELD_ORDER`].
    fn read_value(&mut self, field: usize, reader: &mut Reader<'a>) -> Option<()> {
        match field {
            0 => set_once(&mut self.event_id, reader.uuid()),
            1 => set_once(&mut self.schema_version, reader.small_unsigned()),
            2 => set_once(&mut self.occurred_at, reader.occurred_at()),
            3 => set_once(&mut self.customer_id, reader.string()),
            4 => set_once(&mut self.key_id, reader.string()),
            5 => set_once(&mut self.request_id, reader.string()),
            6 => set_once(&mut self.upstream_request_id, reader.optional_string()),
            7 => set_once(&mut self.model_id, reader.string()),
            8 => set_once(
                &mut self.operation,
                reader.string().and_then(Operation::parse),
            ),
            9 => set_once(&mut self.api, reader.optional_enum()),
            10 => set_once(&mut self.status, reader.small_unsigned()),
            11 => set_once(&mut self.outcome, reader.string().and_then(Outcome::parse)),
            12 => set_once(&mut self.input_tokens, reader.unsigned()),
            13 => set_once(&mut self.output_tokens, reader.unsigned()),
            14 => set_once(&mut self.cache_read_tokens, reader.unsigned()),
            15 => set_once(&mut self.cache_write_tokens, reader.unsigned()),
            16 => set_once(&mut self.latency_ms, reader.unsigned()),
            17 => set_once(&mut self.upstream_latency_ms, reader.optional_unsigned()),
            18 => set_once(&mut self.request_bytes, reader.unsigned()),
            19 => set_once(&mut self.response_bytes, reader.unsigned()),
            20 => set_once(&mut self.proxy_instance, reader.string()),
            21 => set_once(&mut self.instance_seq, reader.unsigned()),
            _ => None,
        }
    }

    /// The event, when every field was read and the version is the current one.
    fn into_event(self, names: &mut Names) -> Option<UsageEvent> {
        let schema_version = self.schema_version?;
        if schema_version != USAGE_EVENT_SCHEMA_VERSION {
            return None;
        }
        Some(UsageEvent {
            event_id: self.event_id?,
            schema_version,
            occurred_at: self.occurred_at?,
            customer_id: names.name(self.customer_id?),
            key_id: names.name(self.key_id?),
            request_id: RequestId::from(self.request_id?),
            upstream_request_id: self.upstream_request_id?.map(RequestId::from),
            model_id: names.name(self.model_id?),
            operation: self.operation?,
            // Absent in records written before the field existed (serde's default).
            api: self.api.unwrap_or(None),
            status: self.status?,
            outcome: self.outcome?,
            input_tokens: self.input_tokens?,
            output_tokens: self.output_tokens?,
            cache_read_tokens: self.cache_read_tokens?,
            cache_write_tokens: self.cache_write_tokens?,
            latency_ms: self.latency_ms?,
            upstream_latency_ms: self.upstream_latency_ms?,
            request_bytes: self.request_bytes?,
            response_bytes: self.response_bytes?,
            proxy_instance: names.name(self.proxy_instance?),
            instance_seq: self.instance_seq?,
        })
    }
}

#[cfg(test)]
mod tests;
