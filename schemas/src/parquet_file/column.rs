//! One column chunk being written: values land in the open page as they come, a full page is
//! compressed at once, and a dictionary column's dictionary and statistics are settled when
//! the chunk closes.

use super::dictionary::Dictionary;
use super::footer::ClosedChunk;
use super::numbers::{DATA_PAGE, DELTA_BINARY_PACKED, DICTIONARY_PAGE, PLAIN, RLE, RLE_DICTIONARY};
use super::statistics::{Span, Statistics, span};
use super::thrift::CompactWriter;
use super::{ColumnSpec, Encoding, Physical};
use super::{delta, rle};
use crate::name::Name;

/// A page is sealed at this many bytes of plain values even before its row count, so a
/// page stays near the 1 MiB readers expect however long the values are.
const PAGE_BYTES: usize = 1024 * 1024;

/// Values of one column, written a value at a time by the column's Rust type
/// (`ArrowColumn::write_parquet`).
pub struct ColumnChunk {
    spec: ColumnSpec,
    page_rows: usize,
    /// Rows in the open page.
    open_rows: usize,
    /// The open page's definition levels (optional columns): 1 present, 0 null.
    levels: Vec<u32>,
    /// The open page's values, plain-encoded (plain columns).
    values: Vec<u8>,
    /// The open page's values (delta-encoded columns), encoded when the page is sealed.
    integers: Vec<i64>,
    /// The open page's dictionary indices.
    indices: Vec<u32>,
    dictionary: Dictionary,
    statistics: Statistics,
    /// The open page's smallest and largest values, as places in `values`: settled into
    /// `statistics` when the page is sealed, so a new maximum on every row (ids made from
    /// the time) is not copied row by row.
    page_bounds: Option<(Span, Span)>,
    /// The chunk's data pages so far, each a header and its compressed body.
    pages: Vec<u8>,
    /// Data pages written plain (a dictionary column's pages before its first value hold
    /// only nulls, and are plain: there is no dictionary to point into yet).
    plain_pages: u32,
    /// Data pages of dictionary indices.
    dictionary_data_pages: u32,
    /// Data pages of delta-encoded values.
    delta_pages: u32,
    /// The chunk's size with every page uncompressed (headers included), as Parquet counts it.
    uncompressed: u64,
    /// Rows in the chunk, nulls included.
    rows: u64,
    snappy: snap::raw::Encoder,
    scratch: Vec<u8>,
    /// The compressor's output buffer, kept at the largest page's bound.
    compressed: Vec<u8>,
    /// The first page that could not be compressed (reported when the chunk closes).
    failure: Option<String>,
}

impl std::fmt::Debug for ColumnChunk {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ColumnChunk")
            .field("column", &self.spec.name)
            .field("rows", &self.rows)
            .finish()
    }
}

/// The most room a recycled chunk keeps in each of its buffers.
const KEPT_BYTES: usize = 2 * 1024 * 1024;

/// The column as it is written: a string column given [`Encoding::Delta`] is plain.
fn written_as(mut spec: ColumnSpec) -> ColumnSpec {
    if spec.encoding == Encoding::Delta && spec.physical == Physical::ByteArray {
        spec.encoding = Encoding::Plain;
    }
    spec
}

impl ColumnChunk {
    /// A chunk of `spec`'s column.
    pub(crate) fn new(spec: ColumnSpec, page_rows: usize) -> Self {
        Self {
            spec: written_as(spec),
            page_rows: page_rows.max(1),
            open_rows: 0,
            levels: Vec::new(),
            values: Vec::new(),
            integers: Vec::new(),
            indices: Vec::new(),
            dictionary: Dictionary::default(),
            statistics: Statistics::default(),
            page_bounds: None,
            pages: Vec::new(),
            plain_pages: 0,
            dictionary_data_pages: 0,
            delta_pages: 0,
            uncompressed: 0,
            rows: 0,
            snappy: snap::raw::Encoder::new(),
            scratch: Vec::new(),
            compressed: Vec::new(),
            failure: None,
        }
    }

    pub(crate) fn spec(&self) -> &ColumnSpec {
        &self.spec
    }

    /// Whether this chunk can serve as a new file's column of `spec`: the same column,
    /// and nothing in it (every value pushed is in the open page or in a sealed one until
    /// the chunk is closed).
    pub(crate) fn fits(&self, spec: &ColumnSpec, page_rows: usize) -> bool {
        self.spec == written_as(*spec)
            && self.page_rows == page_rows.max(1)
            && self.open_rows == 0
            && self.rows == 0
    }

    /// Readies a closed chunk (`close_into` left it empty) for another file: its buffers
    /// keep their room, up to [`KEPT_BYTES`] each, so a file per batch does not grow and
    /// zero them again.
    pub(crate) fn recycle(&mut self) {
        for buffer in [
            &mut self.values,
            &mut self.pages,
            &mut self.scratch,
            &mut self.dictionary.plain,
        ] {
            buffer.shrink_to(KEPT_BYTES);
        }
        self.integers.shrink_to(KEPT_BYTES / size_of::<i64>());
        // The compressor's output keeps its length too: it is only written into, so
        // keeping it spares zeroing it again for the next file's first page.
        if self.compressed.len() > KEPT_BYTES {
            self.compressed.truncate(KEPT_BYTES);
            self.compressed.shrink_to_fit();
        }
    }

    /// A string or bytes value (a `BYTE_ARRAY` column).
    pub fn push_bytes(&mut self, value: &[u8]) {
        if self.spec.optional {
            self.levels.push(1);
        }
        if self.spec.encoding == Encoding::Dictionary {
            self.push_dictionary(value);
        } else {
            self.values
                .extend_from_slice(&(value.len() as u32).to_le_bytes());
            let at = (self.values.len(), value.len());
            self.values.extend_from_slice(value);
            if self.spec.statistics {
                self.page_bounds = Some(match self.page_bounds {
                    None => (at, at),
                    // The maximum first: ids made from the time rise row by row.
                    Some((min, max)) if value > span(&self.values, max) => (min, at),
                    Some((min, max)) if value < span(&self.values, min) => (at, max),
                    Some(bounds) => bounds,
                });
            }
        }
        self.row_done();
    }

    /// Merges the open page's bounds into the chunk's statistics.
    fn settle_page_bounds(&mut self) {
        if let Some(bounds) = self.page_bounds.take() {
            self.statistics.merge_bytes(&self.values, bounds);
        }
    }

    /// A string that lives for the whole program (an enum's name): in a dictionary column
    /// it is found by its address among the few seen, without hashing its bytes.
    pub fn push_static(&mut self, value: &'static str) {
        if self.spec.encoding != Encoding::Dictionary {
            self.push_bytes(value.as_bytes());
            return;
        }
        if self.spec.optional {
            self.levels.push(1);
        }
        self.push_keyed(value.as_ptr() as usize as u64, value.as_bytes());
        self.row_done();
    }

    /// A name (shared text): in a dictionary column it is found by its address among the
    /// names seen lately, without hashing its bytes.
    pub fn push_name(&mut self, value: &Name) {
        if self.spec.encoding != Encoding::Dictionary {
            self.push_bytes(value.as_bytes());
            return;
        }
        if self.spec.optional {
            self.levels.push(1);
        }
        let index = self.dictionary.index_of_name(value, self.spec.physical);
        self.indices.push(index);
        self.row_done();
    }

    /// A 32-bit integer (an `INT32` column).
    pub fn push_i32(&mut self, value: i32) {
        self.push_integer(i64::from(value), value.to_le_bytes());
    }

    /// A 64-bit integer (an `INT64` column, timestamps included).
    pub fn push_i64(&mut self, value: i64) {
        self.push_integer(value, value.to_le_bytes());
    }

    /// 64-bit integers of consecutive rows. A required delta-encoded column takes them a
    /// page's room at a time (its bounds are taken when the page is sealed); any other
    /// column a value at a time, as [`Self::push_i64`].
    pub fn push_i64_run(&mut self, mut values: impl ExactSizeIterator<Item = i64>) {
        if self.spec.optional || self.spec.encoding != Encoding::Delta {
            values.for_each(|value| self.push_i64(value));
            return;
        }
        // A required delta page holds a value per row, and is sealed at its row count or
        // at `PAGE_BYTES` of values (as `row_done` seals it).
        let page_values = self.page_rows.min(PAGE_BYTES / size_of::<i64>());
        while values.len() > 0 {
            let take = page_values
                .saturating_sub(self.integers.len())
                .clamp(1, values.len());
            self.integers.reserve(take);
            self.integers.extend(values.by_ref().take(take));
            self.open_rows += take;
            if self.integers.len() >= page_values {
                self.seal_page();
            }
        }
    }

    /// `plain` is an array, so its copy into the page is a store of known width rather
    /// than a call to `memcpy`.
    #[inline]
    fn push_integer<const WIDTH: usize>(&mut self, value: i64, plain: [u8; WIDTH]) {
        if self.spec.optional {
            self.levels.push(1);
        }
        match self.spec.encoding {
            Encoding::Plain => self.values.extend_from_slice(&plain),
            Encoding::Dictionary => self.push_keyed(value as u64, &plain),
            // The page's bounds are taken when it is sealed, in one pass over its values.
            Encoding::Delta => {
                self.integers.push(value);
                self.row_done();
                return;
            }
        }
        self.statistics.merge_integers(value, value);
        self.row_done();
    }

    /// No value (an optional column's null).
    pub fn push_null(&mut self) {
        self.levels.push(0);
        self.statistics.nulls += 1;
        self.row_done();
    }

    /// A dictionary value with a small key of its own (an integer, or a static string's
    /// address): a linear search among the keys seen, then the dictionary's map.
    fn push_keyed(&mut self, key: u64, value: &[u8]) {
        let index = self
            .dictionary
            .index_of_keyed(key, value, self.spec.physical);
        self.indices.push(index);
    }

    fn push_dictionary(&mut self, value: &[u8]) {
        let index = self.dictionary.index_of(value, self.spec.physical);
        self.indices.push(index);
    }

    fn row_done(&mut self) {
        self.open_rows += 1;
        if self.open_rows == self.page_rows
            || self.values.len() + self.integers.len() * size_of::<i64>() >= PAGE_BYTES
        {
            self.seal_page();
        }
    }

    /// About the bytes the chunk would take if closed now (the open page uncompressed).
    pub(crate) fn encoded_bytes(&self) -> usize {
        self.pages.len()
            + self.values.len()
            + self.integers.len() * size_of::<i64>()
            + self.indices.len()
            + self.levels.len() / 8
            + self.dictionary.plain.len()
    }

    /// Compresses the open page into the chunk's pages.
    fn seal_page(&mut self) {
        if self.open_rows == 0 {
            return;
        }
        self.settle_page_bounds();
        // A required plain column's page is its values as they are; other pages are
        // assembled (levels, then values or indices) in the scratch buffer.
        let values_only = !self.spec.optional && self.spec.encoding == Encoding::Plain;
        let mut body = if values_only {
            std::mem::take(&mut self.values)
        } else {
            std::mem::take(&mut self.scratch)
        };
        if !values_only {
            body.clear();
        }
        if self.spec.optional {
            let length_at = body.len();
            body.extend_from_slice(&[0; 4]);
            rle::encode(&self.levels, 1, &mut body);
            let length = (body.len() - length_at - 4) as u32;
            body[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
        }
        // A dictionary column's page with no value before it in the chunk holds only nulls:
        // it is written plain (its levels alone), so a chunk of nulls has no empty dictionary.
        let encoding = match self.spec.encoding {
            Encoding::Dictionary if !self.dictionary.is_empty() => {
                let width = rle::bit_width(self.dictionary.len().saturating_sub(1) as u32);
                body.push(width);
                rle::encode(&self.indices, width, &mut body);
                self.dictionary_data_pages += 1;
                RLE_DICTIONARY
            }
            Encoding::Delta => {
                if let Some((min, max)) = delta::bounds(&self.integers) {
                    self.statistics.merge_integers(min, max);
                }
                delta::encode(&self.integers, &mut body);
                self.delta_pages += 1;
                DELTA_BINARY_PACKED
            }
            Encoding::Plain | Encoding::Dictionary => {
                if !values_only {
                    body.extend_from_slice(&self.values);
                }
                self.plain_pages += 1;
                PLAIN
            }
        };
        let rows = self.open_rows as i32;
        let mut pages = std::mem::take(&mut self.pages);
        self.write_page(&mut pages, DATA_PAGE, &body, |header| {
            header.begin_struct(5);
            header.i32(1, rows);
            header.i32(2, encoding);
            header.i32(3, RLE);
            header.i32(4, RLE);
            header.end_struct();
        });
        self.pages = pages;
        self.rows += self.open_rows as u64;
        self.open_rows = 0;
        self.levels.clear();
        self.indices.clear();
        self.integers.clear();
        body.clear();
        if values_only {
            self.values = body;
        } else {
            self.values.clear();
            self.scratch = body;
        }
    }

    /// Appends a page (header, then `body` compressed with SNAPPY, or as it is in an
    /// uncompressed column) to `into`; `page_header` writes the header's fields after the
    /// sizes.
    fn write_page(
        &mut self,
        into: &mut Vec<u8>,
        page_type: i32,
        body: &[u8],
        page_header: impl FnOnce(&mut CompactWriter<'_>),
    ) {
        let mut compressed = std::mem::take(&mut self.compressed);
        let stored = if self.spec.compressed {
            match self.compress(body, &mut compressed) {
                Some(written) => &compressed[..written],
                None => {
                    self.compressed = compressed;
                    return;
                }
            }
        } else {
            body
        };
        let header_at = into.len();
        let mut header = CompactWriter::new(into);
        header.i32(1, page_type);
        header.i32(2, body.len() as i32);
        header.i32(3, stored.len() as i32);
        page_header(&mut header);
        header.end_struct();
        let header_len = into.len() - header_at;
        into.extend_from_slice(stored);
        self.compressed = compressed;
        self.uncompressed += (header_len + body.len()) as u64;
    }

    /// Compresses `body` into `output` (grown to SNAPPY's bound) and says how many bytes
    /// it wrote; `None` records the failure, reported when the chunk closes.
    fn compress(&mut self, body: &[u8], output: &mut Vec<u8>) -> Option<usize> {
        let bound = snap::raw::max_compress_len(body.len());
        if output.len() < bound {
            output.resize(bound, 0);
        }
        match self.snappy.compress(body, output) {
            Ok(written) => Some(written),
            Err(error) => {
                self.failure.get_or_insert_with(|| {
                    format!(
                        "column {}: a page of {} bytes: {error}",
                        self.spec.name,
                        body.len()
                    )
                });
                None
            }
        }
    }

    /// Closes the chunk: seals the open page, appends the chunk to the file's bytes (the
    /// dictionary page, if any, then the data pages) and resets the column for the next row
    /// group.
    pub(crate) fn close_into(&mut self, file: &mut Vec<u8>) -> Result<ClosedChunk, String> {
        self.seal_page();
        let start = file.len() as u64;
        let mut dictionary_page = None;
        let dictionary = std::mem::take(&mut self.dictionary);
        if self.spec.encoding == Encoding::Dictionary && !dictionary.is_empty() {
            let entries = dictionary.len() as i32;
            dictionary_page = Some(start);
            self.write_page(file, DICTIONARY_PAGE, &dictionary.plain, |header| {
                header.begin_struct(7);
                header.i32(1, entries);
                header.i32(2, PLAIN);
                header.bool(3, false);
                header.end_struct();
            });
            if self.spec.statistics {
                self.statistics.bytes = dictionary.bounds(self.spec.physical);
            }
        }
        // Emptied, the dictionary keeps its room for the next row group.
        self.dictionary = dictionary;
        self.dictionary.clear();
        let data_page = file.len() as u64;
        file.extend_from_slice(&self.pages);
        self.pages.clear();
        let statistics = std::mem::take(&mut self.statistics);
        let bounds = match self.spec.physical {
            Physical::ByteArray => statistics.bytes,
            Physical::Int32 => statistics.integers.map(|(min, max)| {
                let (min, max) = (min as i32, max as i32);
                (min.to_le_bytes().to_vec(), max.to_le_bytes().to_vec())
            }),
            Physical::Int64 => statistics
                .integers
                .map(|(min, max)| (min.to_le_bytes().to_vec(), max.to_le_bytes().to_vec())),
        };
        let closed = ClosedChunk {
            dictionary_page,
            data_page,
            compressed: file.len() as u64 - start,
            rows: self.rows,
            uncompressed: self.uncompressed,
            plain_pages: self.plain_pages,
            dictionary_data_pages: self.dictionary_data_pages,
            delta_pages: self.delta_pages,
            statistics: self.spec.statistics.then_some((statistics.nulls, bounds)),
        };
        self.rows = 0;
        self.uncompressed = 0;
        self.plain_pages = 0;
        self.dictionary_data_pages = 0;
        self.delta_pages = 0;
        match self.failure.take() {
            Some(failure) => Err(failure),
            None => Ok(closed),
        }
    }
}
