//! Decimal digits written straight into a string, for ids and timestamps built on every
//! call (quota window ids, SigV4's dates), where `format!` and chrono's pattern formatter
//! cost more than the rest of the work.

/// Appends `value` as exactly `width` decimal digits: zero-padded, and only its last
/// `width` digits when it has more.
pub fn push_zero_padded(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10_u32.pow(place)) % 10;
        text.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
