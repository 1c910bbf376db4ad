//! The single-pass decoder's cursor: plain strings read in place, unsigned integers,
//! the producers' timestamp form, and field names compared a word at a time.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::arrow_column::StringEnum;
use crate::usage_event::truncate_to_millis;

/// A cursor over the record: its text and the same text's bytes.
pub(super) struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) bytes: &'a [u8],
    pub(super) position: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.position) {
            self.position += 1;
        }
    }

    pub(super) fn next_byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.position)?;
        self.position += 1;
        Some(byte)
    }

    pub(super) fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next_byte()? == wanted).then_some(())
    }

    /// Consumes the string `"name"` when it is next; false (nothing consumed) otherwise.
    pub(super) fn skip_name(&mut self, name: &[u8]) -> bool {
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
    pub(super) fn plain_string_range(&mut self) -> Option<(usize, usize)> {
        self.expect(b'"')?;
        let start = self.position;
        let length = plain_string_length(self.bytes.get(start..)?)?;
        self.position = start + length + 1;
        Some((start, start + length))
    }

    /// A string without escapes or control characters, as bytes (field names).
    pub(super) fn plain_string_bytes(&mut self) -> Option<&'a [u8]> {
        let (start, end) = self.plain_string_range()?;
        self.bytes.get(start..end)
    }

    /// A string without escapes or control characters, borrowed from the input.
    pub(super) fn string(&mut self) -> Option<&'a str> {
        let (start, end) = self.plain_string_range()?;
        self.text.get(start..end)
    }

    /// The string next when it is exactly `length` bytes between its quotes, not consumed
    /// (see [`Reader::skip_fixed`]); `None` otherwise. Its contents are not checked: the
    /// caller parses them into a type whose every valid form has no quote, backslash or
    /// control character.
    pub(super) fn peek_fixed(&self, length: usize) -> Option<&'a str> {
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
    pub(super) fn skip_fixed(&mut self, length: usize) {
        self.position += length + 2;
    }

    /// A UUID written the hyphenated way (36 characters) is parsed in place; any other
    /// string is read as one and parsed.
    pub(super) fn uuid(&mut self) -> Option<Uuid> {
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
    pub(super) fn occurred_at(&mut self) -> Option<DateTime<Utc>> {
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
    pub(super) fn null(&mut self) -> bool {
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
    pub(super) fn unsigned(&mut self) -> Option<u64> {
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

    pub(super) fn small_unsigned(&mut self) -> Option<u16> {
        u16::try_from(self.unsigned()?).ok()
    }

    pub(super) fn optional_string(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    pub(super) fn optional_enum<E: StringEnum>(&mut self) -> Option<Option<E>> {
        if self.null() {
            return Some(None);
        }
        self.string().and_then(E::parse).map(Some)
    }

    pub(super) fn optional_unsigned(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.unsigned().map(Some)
    }
}

/// Whether two slices of the same length hold the same bytes, compared eight at a time
/// (a field name is 6 to 19 bytes: two or three words instead of a call to `memcmp`).
pub(super) fn equal_words(left: &[u8], right: &[u8]) -> bool {
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
pub(super) fn plain_string_length(text: &[u8]) -> Option<usize> {
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

pub(super) fn parse_canonical_millis(text: &[u8]) -> Option<DateTime<Utc>> {
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
