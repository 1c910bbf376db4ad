//! Decoding the usage event's JSON: `UsageEvent::decode_json`, and its single pass over a
//! record as producers write it. Strings are read in place (borrowed from the input) and
//! copied once into the event; numbers and the timestamp are parsed without serde's
//! intermediate values.
//!
//! It is a fast path, not a second definition of the format. It accepts only a JSON object
//! holding each of the event's fields exactly once, with plain values: strings without
//! escapes, unsigned integers, `null` for the optional fields, and the current
//! `schema_version`. Anything else, well formed or not, yields `None`, and the caller decodes
//! with serde, whose answer (the event or the typed error) is the reference. Whatever this
//! decoder accepts, serde decodes to the same event (proved by tests over mutated records).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::DecodeError;

use crate::arrow_column::StringEnum;
use crate::usage_event::{
    Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent, truncate_to_millis,
};

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
        if let Some(event) = decode_plain_event(bytes) {
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
pub(crate) fn decode_plain_event(bytes: &[u8]) -> Option<UsageEvent> {
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
        // place, and any other name is read as a string and looked up.
        let field = match FIELD_ORDER.get(expected) {
            Some(name) if reader.skip_name(name) => expected,
            _ => field_index(reader.plain_string_bytes()?)?,
        };
        expected += 1;
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
    fields.into_event()
}

/// The fields in declaration order, the order serde writes them in.
const FIELD_ORDER: [&[u8]; 21] = [
    b"event_id",
    b"schema_version",
    b"occurred_at",
    b"customer_id",
    b"key_id",
    b"request_id",
    b"upstream_request_id",
    b"model_id",
    b"operation",
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

/// A cursor over the record: its text and the same text's bytes.
struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.position) {
            self.position += 1;
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.position)?;
        self.position += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next_byte()? == wanted).then_some(())
    }

    /// Consumes the string `"name"` when it is next; false (nothing consumed) otherwise.
    fn skip_name(&mut self, name: &[u8]) -> bool {
        let rest = self.bytes.get(self.position..).unwrap_or_default();
        let matches = rest.first() == Some(&b'"')
            && rest.get(name.len() + 1) == Some(&b'"')
            && rest
                .get(1..=name.len())
                .is_some_and(|text| equal_words(text, name));
        if matches {
            self.position += name.len() + 2;
        }
        matches
    }

    /// The bytes of a string without escapes or control characters, and its end.
    fn plain_string_range(&mut self) -> Option<(usize, usize)> {
        self.expect(b'"')?;
        let start = self.position;
        let length = plain_string_length(self.bytes.get(start..)?)?;
        self.position = start + length + 1;
        Some((start, start + length))
    }

    /// A string without escapes or control characters, as bytes (field names).
    fn plain_string_bytes(&mut self) -> Option<&'a [u8]> {
        let (start, end) = self.plain_string_range()?;
        self.bytes.get(start..end)
    }

    /// A string without escapes or control characters, borrowed from the input.
    fn string(&mut self) -> Option<&'a str> {
        let (start, end) = self.plain_string_range()?;
        self.text.get(start..end)
    }

    /// The string next when it is exactly `length` bytes between its quotes, not consumed
    /// (see [`Reader::skip_fixed`]); `None` otherwise. Its contents are not checked: the
    /// caller parses them into a type whose every valid form has no quote, backslash or
    /// control character.
    fn peek_fixed(&self, length: usize) -> Option<&'a str> {
        let start = self.position + 1;
        let quoted = self.bytes.get(self.position) == Some(&b'"')
            && self.bytes.get(start + length) == Some(&b'"');
        if quoted {
            self.text.get(start..start + length)
        } else {
            None
        }
    }

    /// Consumes the string [`Reader::peek_fixed`] returned.
    fn skip_fixed(&mut self, length: usize) {
        self.position += length + 2;
    }

    /// A UUID written the hyphenated way (36 characters) is parsed in place; any other
    /// string is read as one and parsed.
    fn uuid(&mut self) -> Option<Uuid> {
        const HYPHENATED: usize = 36;
        if let Some(id) = self
            .peek_fixed(HYPHENATED)
            .and_then(|text| Uuid::try_parse(text).ok())
        {
            self.skip_fixed(HYPHENATED);
            return Some(id);
        }
        self.string().and_then(|text| Uuid::try_parse(text).ok())
    }

    /// A timestamp as producers write it (24 characters) is parsed in place; any other
    /// string is read as one and parsed with chrono's RFC 3339 parser.
    fn occurred_at(&mut self) -> Option<DateTime<Utc>> {
        const CANONICAL: usize = 24;
        if let Some(at) = self
            .peek_fixed(CANONICAL)
            .and_then(|text| parse_canonical_millis(text.as_bytes()))
        {
            self.skip_fixed(CANONICAL);
            return Some(at);
        }
        self.string().and_then(parse_occurred_at)
    }

    /// `null`, consumed; false (nothing consumed) when the value is something else.
    fn null(&mut self) -> bool {
        let is_null = self
            .bytes
            .get(self.position..self.position + 4)
            .is_some_and(|word| word == b"null");
        if is_null {
            self.position += 4;
        }
        is_null
    }

    /// An unsigned integer as JSON writes it: no sign, no leading zero, no fraction or
    /// exponent, within u64.
    fn unsigned(&mut self) -> Option<u64> {
        let start = self.position;
        let mut value: u64 = 0;
        while let Some(byte @ b'0'..=b'9') = self.bytes.get(self.position) {
            value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
            self.position += 1;
        }
        let digits = self.position - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        let continues = matches!(
            self.bytes.get(self.position),
            Some(b'.' | b'e' | b'E' | b'-' | b'+')
        );
        (digits > 0 && !leading_zero && !continues).then_some(value)
    }

    fn small_unsigned(&mut self) -> Option<u16> {
        u16::try_from(self.unsigned()?).ok()
    }

    fn optional_string(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    fn optional_unsigned(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.unsigned().map(Some)
    }
}

/// Whether two slices of the same length hold the same bytes, compared eight at a time
/// (a field name is 6 to 19 bytes: two or three words instead of a call to `memcmp`).
fn equal_words(left: &[u8], right: &[u8]) -> bool {
    let length = left.len();
    if length != right.len() {
        return false;
    }
    if length < 8 {
        return left == right;
    }
    let mut at = 0;
    // Whole words, then the last eight bytes (overlapping the word before when the length
    // is not a multiple of eight).
    while at + 8 < length {
        if word_at(left, at) != word_at(right, at) {
            return false;
        }
        at += 8;
    }
    word_at(left, length - 8) == word_at(right, length - 8)
}

/// Eight bytes from `at` as one little-endian word; the caller keeps `at + 8` in bounds
/// (anything short reads as zeros).
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0_u8; 8];
    if let Some(chunk) = bytes.get(at..at + 8) {
        word.copy_from_slice(chunk);
    }
    u64::from_le_bytes(word)
}

/// The length of a plain string's contents up to its closing quote; `None` when it holds
/// an escape or a control character (serde decides those) or never closes.
fn plain_string_length(text: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte that is zero; exact for the lowest such byte (a borrow can
    // only mark bytes above a zero one).
    let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut offset = 0;
    // Eight bytes at a time: the first quote, backslash or byte below 0x20 in a word is
    // found from the lowest marked byte.
    while offset + 8 <= text.len() {
        let word = word_at(text, offset);
        let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let marked = quote | backslash | control;
        if marked != 0 {
            let index = offset + (marked.trailing_zeros() / 8) as usize;
            return (text.get(index) == Some(&b'"')).then_some(index);
        }
        offset += 8;
    }
    for (index, byte) in text.iter().enumerate().skip(offset) {
        match byte {
            b'"' => return Some(index),
            b'\\' | 0x00..=0x1f => return None,
            _ => {}
        }
    }
    None
}

/// Parses `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form producers write; any other form goes through
/// chrono's RFC 3339 parser, as serde's path does.
fn parse_occurred_at(text: &str) -> Option<DateTime<Utc>> {
    parse_canonical_millis(text.as_bytes()).or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|parsed| truncate_to_millis(parsed.with_timezone(&Utc)))
    })
}

fn parse_canonical_millis(text: &[u8]) -> Option<DateTime<Utc>> {
    if text.len() != 24 || [4, 7, 10, 13, 16, 19, 23].map(|index| text[index]) != *b"--T::.Z" {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        text[from..to].iter().try_fold(0_u32, |value, byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
    let time = date.and_hms_milli_opt(
        number(11, 13)?,
        number(14, 16)?,
        number(17, 19)?,
        number(20, 23)?,
    )?;
    // A leap second (`:60`) is left to chrono's parser, which has its own rules for it.
    (number(17, 19)? < 60).then(|| DateTime::from_naive_utc_and_offset(time, Utc))
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
            9 => set_once(&mut self.status, reader.small_unsigned()),
            10 => set_once(&mut self.outcome, reader.string().and_then(Outcome::parse)),
            11 => set_once(&mut self.input_tokens, reader.unsigned()),
            12 => set_once(&mut self.output_tokens, reader.unsigned()),
            13 => set_once(&mut self.cache_read_tokens, reader.unsigned()),
            14 => set_once(&mut self.cache_write_tokens, reader.unsigned()),
            15 => set_once(&mut self.latency_ms, reader.unsigned()),
            16 => set_once(&mut self.upstream_latency_ms, reader.optional_unsigned()),
            17 => set_once(&mut self.request_bytes, reader.unsigned()),
            18 => set_once(&mut self.response_bytes, reader.unsigned()),
            19 => set_once(&mut self.proxy_instance, reader.string()),
            20 => set_once(&mut self.instance_seq, reader.unsigned()),
            _ => None,
        }
    }

    /// The event, when every field was read and the version is the current one.
    fn into_event(self) -> Option<UsageEvent> {
        let schema_version = self.schema_version?;
        if schema_version != USAGE_EVENT_SCHEMA_VERSION {
            return None;
        }
        Some(UsageEvent {
            event_id: self.event_id?,
            schema_version,
            occurred_at: self.occurred_at?,
            customer_id: self.customer_id?.to_owned(),
            key_id: self.key_id?.to_owned(),
            request_id: self.request_id?.to_owned(),
            upstream_request_id: self.upstream_request_id?.map(str::to_owned),
            model_id: self.model_id?.to_owned(),
            operation: self.operation?,
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
            proxy_instance: self.proxy_instance?.to_owned(),
            instance_seq: self.instance_seq?,
        })
    }
}

#[cfg(test)]
#[path = "usage_event_json_tests.rs"]
mod tests;
