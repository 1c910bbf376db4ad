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
    text.reserve(bytes.len() * 2);
    for byte in bytes {
        let [high, low] = HEX_PAIRS[usize::from(*byte)];
        text.push(char::from(high));
        text.push(char::from(low));
    }
}

/// Each byte's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
        byte += 1;
    }
    pairs
};

/// Where each of a UUID's 16 bytes goes in its hyphenated form (8-4-4-4-12 digits).
const UUID_DIGITS_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// A UUID's lowercase hyphenated form, as bytes (`uuid`'s `hyphenated().encode_lower`
/// takes a table lookup and a branch per digit; here one lookup per byte). Where a `String`
/// is wanted, `encode_lower` is cheaper: a `&str` from these bytes is checked for UTF-8.
pub fn uuid_lower(bytes: &[u8; 16]) -> [u8; 36] {
    let mut text = [b'-'; 36];
    for (byte, at) in bytes.iter().zip(UUID_DIGITS_AT) {
        text[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    text
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

    proptest::proptest! {
        #[test]
        fn a_uuid_is_the_uuid_crates_lowercase_hyphenated_form(value: u128) {
            let id = uuid::Uuid::from_u128(value);
            let expected = id.hyphenated().to_string();
            proptest::prop_assert_eq!(&uuid_lower(id.as_bytes())[..], expected.as_bytes());
        }
    }

    #[test]
    fn uuids_at_the_edges_of_each_digit() {
        for value in [0, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            let id = uuid::Uuid::from_u128(value);
            assert_eq!(
                &uuid_lower(id.as_bytes())[..],
                id.hyphenated().to_string().as_bytes()
            );
        }
        assert_eq!(
            &uuid_lower(&[0xa9; 16]),
            b"a9a9a9a9-a9a9-a9a9-a9a9-a9a9a9a9a9a9"
        );
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
