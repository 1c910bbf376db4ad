//! Decimal and hex digits written straight into a string, for ids, timestamps and digests
//! built on every call (quota window ids, SigV4's dates and hashes, token hashes), where
//! `format!`, chrono's pattern formatter and `hex`'s character iterator cost more than the
//! rest of the work.

/// Appends `value` as exactly `width` decimal digits: zero-padded, and only its last
/// `width` digits when it has more.
pub fn push_zero_padded(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10_u32.pow(place)) % 10;
        text.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
}

/// Appends `bytes` as lowercase hex, two digits a byte.
pub fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.reserve(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    push_hex(&mut text, bytes);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_the_hex_crates_lowercase_encoding() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex(&bytes), ::hex::encode(&bytes));
        assert_eq!(hex(&[]), "");
        let mut text = String::from("x=");
        push_hex(&mut text, &[0x0f, 0xa0]);
        assert_eq!(text, "x=0fa0");
    }

    #[test]
    fn values_are_zero_padded_to_their_width() {
        let mut text = String::new();
        push_zero_padded(&mut text, 7, 2);
        push_zero_padded(&mut text, 2026, 4);
        push_zero_padded(&mut text, 0, 3);
        push_zero_padded(&mut text, 12_345, 2);
        assert_eq!(text, "07202600045");
    }
}
