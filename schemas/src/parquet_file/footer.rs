//! The file's footer: its schema, row groups and column chunks, as Parquet's Thrift
//! `FileMetaData` in the compact protocol.

use super::thrift::{CompactWriter, ListOf};
use super::{Bounds, ColumnSpec, Logical, Physical};

use super::numbers::{
    CONVERTED_TIMESTAMP_MILLIS, CONVERTED_UTF8, DATA_PAGE, DELTA_BINARY_PACKED, DICTIONARY_PAGE,
    PLAIN, RLE, RLE_DICTIONARY, SNAPPY, UNCOMPRESSED,
};

/// What the footer says of a chunk written into the file.
pub(crate) struct ClosedChunk {
    /// Where its dictionary page starts in the file, if it has one.
    pub(crate) dictionary_page: Option<u64>,
    /// Where its first data page starts.
    pub(crate) data_page: u64,
    /// Its bytes in the file, page headers included.
    pub(crate) compressed: u64,
    pub(crate) rows: u64,
    pub(crate) uncompressed: u64,
    pub(crate) plain_pages: u32,
    pub(crate) dictionary_data_pages: u32,
    pub(crate) delta_pages: u32,
    /// Statistics to write: nulls, and the minimum and maximum when any value is present.
    pub(crate) statistics: Option<(u64, Option<Bounds>)>,
}

/// A column chunk written, as the footer describes it.
pub(super) struct ChunkMeta {
    pub(super) spec: ColumnSpec,
    pub(super) closed: ClosedChunk,
}

/// Row groups written, with their chunks.
pub(super) struct RowGroupMeta {
    pub(super) rows: u64,
    pub(super) start: u64,
    pub(super) chunks: Vec<ChunkMeta>,
}

pub(super) fn write_file_metadata(
    out: &mut CompactWriter<'_>,
    specs: &[ColumnSpec],
    row_groups: &[RowGroupMeta],
    key_value: &[(String, String)],
    created_by: &str,
) {
    out.i32(1, 1);
    out.list(2, ListOf::Struct, specs.len() + 1);
    out.begin_list_struct();
    out.binary(4, b"arrow_schema");
    out.i32(5, specs.len() as i32);
    out.end_struct();
    for spec in specs {
        write_schema_element(out, spec);
    }
    out.i64(3, row_groups.iter().map(|group| group.rows as i64).sum());
    out.list(4, ListOf::Struct, row_groups.len());
    for group in row_groups {
        write_row_group(out, group);
    }
    if !key_value.is_empty() {
        out.list(5, ListOf::Struct, key_value.len());
        for (key, value) in key_value {
            out.begin_list_struct();
            out.binary(1, key.as_bytes());
            out.binary(2, value.as_bytes());
            out.end_struct();
        }
    }
    out.binary(6, created_by.as_bytes());
    // Every column's statistics follow its type's order (unsigned bytes for strings).
    out.list(7, ListOf::Struct, specs.len());
    for _ in specs {
        out.begin_list_struct();
        out.begin_struct(1);
        out.end_struct();
        out.end_struct();
    }
    out.end_struct();
}

fn write_schema_element(out: &mut CompactWriter<'_>, spec: &ColumnSpec) {
    out.begin_list_struct();
    out.i32(1, spec.physical.thrift_type());
    out.i32(3, i32::from(spec.optional));
    out.binary(4, spec.name.as_bytes());
    match spec.logical {
        Logical::None => {}
        Logical::String => {
            out.i32(6, CONVERTED_UTF8);
            out.begin_struct(10);
            out.begin_struct(1);
            out.end_struct();
            out.end_struct();
        }
        Logical::TimestampMillisUtc => {
            out.i32(6, CONVERTED_TIMESTAMP_MILLIS);
            out.begin_struct(10);
            out.begin_struct(8);
            out.bool(1, true);
            out.begin_struct(2);
            out.begin_struct(1);
            out.end_struct();
            out.end_struct();
            out.end_struct();
            out.end_struct();
        }
    }
    out.end_struct();
}

fn write_row_group(out: &mut CompactWriter<'_>, group: &RowGroupMeta) {
    out.begin_list_struct();
    out.list(1, ListOf::Struct, group.chunks.len());
    for chunk in &group.chunks {
        write_column_chunk(out, chunk);
    }
    let uncompressed: u64 = group
        .chunks
        .iter()
        .map(|chunk| chunk.closed.uncompressed)
        .sum();
    let compressed: u64 = group
        .chunks
        .iter()
        .map(|chunk| chunk.closed.compressed)
        .sum();
    out.i64(2, uncompressed as i64);
    out.i64(3, group.rows as i64);
    out.i64(5, group.start as i64);
    out.i64(6, compressed as i64);
    out.end_struct();
}

fn write_column_chunk(out: &mut CompactWriter<'_>, chunk: &ChunkMeta) {
    let spec = &chunk.spec;
    out.begin_list_struct();
    // Deprecated: 0 when a chunk's metadata is only in the footer, as here.
    out.i64(2, 0);
    out.begin_struct(3);
    out.i32(1, spec.physical.thrift_type());
    let closed = &chunk.closed;
    // The encodings of its values and levels, as parquet-rs lists them: PLAIN for a
    // dictionary page or plain data pages, RLE for levels (listed even for a required
    // column, which has none), and each other data page encoding used.
    let encodings: Vec<i32> = [
        (
            PLAIN,
            closed.dictionary_page.is_some() || closed.plain_pages > 0,
        ),
        (RLE, true),
        (RLE_DICTIONARY, closed.dictionary_data_pages > 0),
        (DELTA_BINARY_PACKED, closed.delta_pages > 0),
    ]
    .into_iter()
    .filter_map(|(encoding, used)| used.then_some(encoding))
    .collect();
    out.list(2, ListOf::I32, encodings.len());
    for &encoding in &encodings {
        out.element_i32(encoding);
    }
    out.list(3, ListOf::Binary, 1);
    out.element_binary(spec.name.as_bytes());
    out.i32(
        4,
        if spec.compressed {
            SNAPPY
        } else {
            UNCOMPRESSED
        },
    );
    out.i64(5, closed.rows as i64);
    out.i64(6, closed.uncompressed as i64);
    out.i64(7, closed.compressed as i64);
    out.i64(9, closed.data_page as i64);
    if let Some(offset) = closed.dictionary_page {
        out.i64(11, offset as i64);
    }
    if let Some((nulls, bounds)) = &closed.statistics {
        out.begin_struct(12);
        // Integers' bounds also go in the deprecated fields, for readers older than
        // `min_value`/`max_value` (signed order is these columns' order); never a string's,
        // which those readers compared as signed bytes.
        if let Some((min, max)) = bounds
            && spec.physical != Physical::ByteArray
        {
            out.binary(1, max);
            out.binary(2, min);
        }
        out.i64(3, *nulls as i64);
        if let Some((min, max)) = bounds {
            out.binary(5, max);
            out.binary(6, min);
            out.bool(7, true);
            out.bool(8, true);
        }
        out.end_struct();
    }
    let page_kinds: Vec<(i32, i32, u32)> = [
        (
            DICTIONARY_PAGE,
            PLAIN,
            u32::from(closed.dictionary_page.is_some()),
        ),
        (DATA_PAGE, PLAIN, closed.plain_pages),
        (DATA_PAGE, RLE_DICTIONARY, closed.dictionary_data_pages),
        (DATA_PAGE, DELTA_BINARY_PACKED, closed.delta_pages),
    ]
    .into_iter()
    .filter(|&(_, _, count)| count > 0)
    .collect();
    out.list(13, ListOf::Struct, page_kinds.len());
    for (page_type, encoding, count) in page_kinds {
        out.begin_list_struct();
        out.i32(1, page_type);
        out.i32(2, encoding);
        out.i32(3, count as i32);
        out.end_struct();
    }
    out.end_struct();
    out.end_struct();
}
