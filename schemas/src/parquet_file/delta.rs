//! Parquet's DELTA_BINARY_PACKED encoding, for integer columns whose values are neither few
//! (a dictionary's) nor ids: each value is stored as its difference from the one before,
//! less the smallest difference of its block, bit-packed at the width its miniblock needs.
//! Token counts, sizes and latencies take 12 to 16 bits a value instead of 64, times and
//! sequence numbers that rise steadily a few bits.
//!
//! The layout (Parquet's `Encodings.md`): a header (values per block, miniblocks per block,
//! the value count, the first value), then for each block of up to [`BLOCK_VALUES`]
//! differences the smallest difference, one width byte per miniblock, and the miniblocks,
//! each [`MINIBLOCK_VALUES`] values bit-packed least significant bit first. A last
//! miniblock is padded with zeros; the last block's unused miniblocks have width 0 and no
//! bytes. Differences wrap, so any `i64` sequence round-trips.

use super::varint;

/// Differences per block, and miniblocks per block: parquet-rs's and parquet-mr's defaults.
pub(crate) const BLOCK_VALUES: usize = 128;
pub(crate) const MINIBLOCKS: usize = 4;
pub(crate) const MINIBLOCK_VALUES: usize = BLOCK_VALUES / MINIBLOCKS;

/// Appends `values` to `out` in DELTA_BINARY_PACKED (a header alone when there are none:
/// a page of nulls).
pub(crate) fn encode(values: &[i64], out: &mut Vec<u8>) {
    varint(out, BLOCK_VALUES as u64);
    varint(out, MINIBLOCKS as u64);
    varint(out, values.len() as u64);
    varint(out, zigzag(values.first().copied().unwrap_or(0)));
    let mut differences = [0_u64; BLOCK_VALUES];
    let mut start = 0;
    while start + 1 < values.len() {
        let end = (start + BLOCK_VALUES).min(values.len() - 1);
        let count = end - start;
        let mut smallest = i64::MAX;
        for (slot, pair) in differences.iter_mut().zip(values[start..=end].windows(2)) {
            let difference = pair[1].wrapping_sub(pair[0]);
            smallest = smallest.min(difference);
            *slot = difference as u64;
        }
        varint(out, zigzag(smallest));
        // A last miniblock is padded with zeros; the block's unused miniblocks are absent.
        let used = count.div_ceil(MINIBLOCK_VALUES) * MINIBLOCK_VALUES;
        differences[count..used].fill(smallest as u64);
        let widths_at = out.len();
        out.extend_from_slice(&[0; MINIBLOCKS]);
        for (miniblock, values) in differences[..used]
            .chunks_exact_mut(MINIBLOCK_VALUES)
            .enumerate()
        {
            let mut all = 0;
            for value in values.iter_mut() {
                *value = value.wrapping_sub(smallest as u64);
                all |= *value;
            }
            let width = u64::BITS - all.leading_zeros();
            out[widths_at + miniblock] = width as u8;
            bit_pack(values, width, out);
        }
        start = end;
    }
}

/// The smallest and largest of `values`, if any.
pub(crate) fn bounds(values: &[i64]) -> Option<(i64, i64)> {
    let first = *values.first()?;
    Some(values.iter().fold((first, first), |(min, max), &value| {
        (min.min(value), max.max(value))
    }))
}

/// A signed value as an unsigned one, small magnitudes small: 0, -1, 1, -2 … → 0, 1, 2, 3 ….
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// One miniblock: its values at `width` bits each, least significant bit first, in
/// `width * 4` bytes.
fn bit_pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let mut words = [0_u64; MINIBLOCK_VALUES];
    let mut word = 0;
    let mut held = 0_u64;
    let mut bits = 0_u32;
    for &value in values {
        held |= value << bits;
        bits += width;
        if bits >= 64 {
            words[word] = held;
            word += 1;
            bits -= 64;
            // The value's bits that did not fit begin the next word.
            held = if bits == 0 {
                0
            } else {
                value >> (width - bits)
            };
        }
    }
    // 32 values of any width are a whole number of 32-bit words: a half word may be left.
    if bits > 0 {
        words[word] = held;
    }
    let bytes = width as usize * MINIBLOCK_VALUES / 8;
    out.reserve(bytes);
    for word in &words[..bytes / 8] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    if !bytes.is_multiple_of(8) {
        out.extend_from_slice(&(words[bytes / 8] as u32).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_maps_small_magnitudes_to_small_numbers() {
        assert_eq!(
            [0, -1, 1, -2, 2].map(zigzag),
            [0, 1, 2, 3, 4],
            "Parquet's zigzag order"
        );
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn a_header_alone_for_no_values_and_for_one() {
        let mut out = Vec::new();
        encode(&[], &mut out);
        // 128 as a varint is two bytes (0x80 0x01), then 4, the count 0, the first value 0.
        assert_eq!(out, [0x80, 0x01, 4, 0, 0]);
        out.clear();
        encode(&[-3], &mut out);
        assert_eq!(out, [0x80, 0x01, 4, 1, 5]);
    }

    #[test]
    fn a_steady_rise_takes_no_bits() {
        // 1, 2, … 129: every difference is 1, the block's smallest, so each miniblock is
        // 0 bits wide.
        let values: Vec<i64> = (1..=129).collect();
        let mut out = Vec::new();
        encode(&values, &mut out);
        assert_eq!(out, [0x80, 0x01, 4, 0x81, 0x01, 2, 2, 0, 0, 0, 0]);
    }

    #[test]
    fn miniblocks_are_packed_at_their_own_width() {
        // Differences 0 and 1 alternating in the first miniblock (1 bit each), then eight
        // of 3 in the second (2 bits each: the block's smallest difference is 0).
        let mut values = vec![10_i64];
        for index in 0..40 {
            let step = if index < 32 { index % 2 } else { 3 };
            values.push(values.last().unwrap() + step);
        }
        let mut out = Vec::new();
        encode(&values, &mut out);
        let header = [0x80, 0x01, 4, 41, 20];
        assert_eq!(out[..5], header);
        // The smallest difference (0), then the widths: 1 bit, 2 bits, and the unused two.
        assert_eq!(out[5..10], [0, 1, 2, 0, 0]);
        // 32 one-bit values 0, 1, 0, 1 …: 0b10 repeated, least significant first.
        assert_eq!(out[10..14], [0xAA; 4]);
        // 8 values of 3 at two bits, then 24 zeros of padding: 8 bytes in all.
        assert_eq!(out[14..22], [0xFF, 0xFF, 0, 0, 0, 0, 0, 0]);
        assert_eq!(out.len(), 22);
    }

    #[test]
    fn extreme_values_wrap_and_take_64_bits() {
        let mut out = Vec::new();
        encode(&[i64::MIN, i64::MAX, i64::MIN, 0], &mut out);
        // Differences -1, 1 (wrapped), i64::MAX + 1 (wrapped to i64::MIN): the smallest is
        // i64::MIN, so the others are large, and the miniblock is 64 bits wide.
        // The header: 128, 4 and the count 4 in four bytes, then the first value, i64::MIN
        // zigzagged to u64::MAX, in ten; the block's smallest difference is ten more.
        assert_eq!(out[..4], [0x80, 0x01, 4, 4]);
        assert_eq!(
            out[4..14],
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
        let widths_at = 24;
        assert_eq!(out[widths_at..widths_at + MINIBLOCKS], [64, 0, 0, 0]);
        assert_eq!(out.len(), widths_at + MINIBLOCKS + 32 * 8);
    }
}
