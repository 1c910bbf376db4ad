//! Parquet's RLE / bit-packing hybrid encoding, for definition levels and dictionary
//! indices: runs of eight or more equal values as one repeated value, everything else
//! bit-packed in groups of eight.

use super::varint;

/// Bits needed to hold every value up to `max` (0 for 0).
pub(crate) fn bit_width(max: u32) -> u8 {
    (u32::BITS - max.leading_zeros()) as u8
}

/// Bit-packed groups written under one header at most (readers take any number; this keeps
/// each header to one byte).
const MAX_GROUPS_PER_RUN: usize = 63;

/// Appends `values` (each below `1 << width`) to `out` in the hybrid encoding. A final group
/// of fewer than eight values is padded with zeros; readers stop at the page's value count.
pub(crate) fn encode(values: &[u32], width: u8, out: &mut Vec<u8>) {
    let value_bytes = usize::from(width).div_ceil(8);
    let mut packed_from = 0;
    let mut index = 0;
    while index < values.len() {
        let value = values[index];
        let run = values[index..]
            .iter()
            .take_while(|&&other| other == value)
            .count();
        let tail = index + run == values.len();
        if run >= 8 || (tail && index == packed_from) {
            bit_pack(&values[packed_from..index], width, out);
            varint(out, (run as u64) << 1);
            out.extend_from_slice(&value.to_le_bytes()[..value_bytes]);
            index += run;
            packed_from = index;
        } else {
            // A group of eight to bit-pack: `index - packed_from` stays a multiple of
            // eight, so the groups before a run are whole.
            index = (index + 8).min(values.len());
        }
    }
    bit_pack(&values[packed_from..], width, out);
}

/// Bit-packs `values` in groups of eight (the last one padded), least significant bit
/// first, under headers of at most [`MAX_GROUPS_PER_RUN`] groups.
fn bit_pack(values: &[u32], width: u8, out: &mut Vec<u8>) {
    for run in values.chunks(MAX_GROUPS_PER_RUN * 8) {
        let groups = run.len().div_ceil(8);
        varint(out, ((groups as u64) << 1) | 1);
        let mut bits: u64 = 0;
        let mut held = 0_u32;
        for slot in 0..groups * 8 {
            let value = run.get(slot).copied().unwrap_or(0);
            bits |= u64::from(value) << held;
            held += u32::from(width);
            while held >= 8 {
                out.push(bits as u8);
                bits >>= 8;
                held -= 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the hybrid encoding: the reference the encoder is checked against.
    fn decode(mut bytes: &[u8], width: u8, count: usize) -> Vec<u32> {
        let value_bytes = usize::from(width).div_ceil(8);
        let mut values = Vec::new();
        while values.len() < count {
            let mut header = 0_u64;
            let mut shift = 0;
            loop {
                let byte = bytes[0];
                bytes = &bytes[1..];
                header |= u64::from(byte & 0x7F) << shift;
                shift += 7;
                if byte < 0x80 {
                    break;
                }
            }
            if header & 1 == 0 {
                let mut value_le = [0_u8; 4];
                value_le[..value_bytes].copy_from_slice(&bytes[..value_bytes]);
                bytes = &bytes[value_bytes..];
                let value = u32::from_le_bytes(value_le);
                values.extend(std::iter::repeat_n(value, (header >> 1) as usize));
            } else {
                let groups = (header >> 1) as usize;
                let packed = &bytes[..groups * usize::from(width)];
                bytes = &bytes[groups * usize::from(width)..];
                for slot in 0..groups * 8 {
                    let mut value = 0_u32;
                    for bit in 0..usize::from(width) {
                        let at = slot * usize::from(width) + bit;
                        value |= u32::from((packed[at / 8] >> (at % 8)) & 1) << bit;
                    }
                    values.push(value);
                }
            }
        }
        values.truncate(count);
        values
    }

    fn round_trip(values: &[u32]) {
        let width = bit_width(values.iter().copied().max().unwrap_or(0));
        let mut out = Vec::new();
        encode(values, width, &mut out);
        assert_eq!(decode(&out, width, values.len()), values, "width {width}");
    }

    #[test]
    fn widths_cover_the_largest_value() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 2);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
    }

    #[test]
    fn runs_and_mixed_values_decode_back() {
        round_trip(&[]);
        round_trip(&[0; 3]);
        round_trip(&[1; 1000]);
        round_trip(&[0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        let mixed: Vec<u32> = (0..5000_u32)
            .map(|index| if index % 700 < 300 { 7 } else { index % 13 })
            .collect();
        round_trip(&mixed);
        let wide: Vec<u32> = (0..777_u32).map(|index| index * 97 % 70_000).collect();
        round_trip(&wide);
    }

    #[test]
    fn a_long_run_is_one_header_and_one_value() {
        let mut out = Vec::new();
        encode(&[5; 1000], 3, &mut out);
        assert_eq!(out, [0xD0, 0x0F, 5]);
    }
}
