//! A column chunk's statistics as it is written: its nulls, and its minimum and maximum as
//! plain bytes (strings) or as integers.

use super::Bounds;

/// A value's place in a page's plain values: its start and length.
pub(super) type Span = (usize, usize);

/// The value at `span` in a page's plain values.
pub(super) fn span(values: &[u8], (start, len): Span) -> &[u8] {
    &values[start..start + len]
}

/// Running minimum and maximum (as the column's plain bytes, or as integers) and nulls.
#[derive(Default)]
pub(super) struct Statistics {
    pub(super) nulls: u64,
    pub(super) bytes: Option<Bounds>,
    pub(super) integers: Option<(i64, i64)>,
}

impl Statistics {
    pub(super) fn merge_integers(&mut self, min: i64, max: i64) {
        let integers = self.integers.get_or_insert((min, max));
        integers.0 = integers.0.min(min);
        integers.1 = integers.1.max(max);
    }

    /// Merges a page's bounds, the values at `min` and `max` in its plain `values`.
    pub(super) fn merge_bytes(&mut self, values: &[u8], (min, max): (Span, Span)) {
        let (min, max) = (span(values, min), span(values, max));
        match &mut self.bytes {
            None => self.bytes = Some((min.to_vec(), max.to_vec())),
            Some((chunk_min, chunk_max)) => {
                if max > chunk_max.as_slice() {
                    chunk_max.clear();
                    chunk_max.extend_from_slice(max);
                }
                if min < chunk_min.as_slice() {
                    chunk_min.clear();
                    chunk_min.extend_from_slice(min);
                }
            }
        }
    }
}
