//! A Parquet file writer for flat tables of strings and integers, written for the usage
//! event files: values go straight from the records into plain or dictionary-encoded pages,
//! with no Arrow arrays in between.
//!
//! What it writes is a subset of Parquet that every reader handles: format version 1, data
//! pages v1, PLAIN values, RLE_DICTIONARY indices after a PLAIN dictionary page, RLE
//! definition levels, SNAPPY pages, and column chunk statistics (`min_value`, `max_value`,
//! `null_count`) with the type-defined column order. It writes no page index and no bloom
//! filter. The tests check its files against parquet-rs's reader and its Arrow writer (the
//! same schema, statistics and rows); the suite's DuckDB test reads them too.

mod column;
mod dictionary;
mod rle;
mod thrift;

use std::sync::Mutex;

use arrow_schema::{DataType, Schema, TimeUnit};

pub use column::ColumnChunk;
use column::{ClosedChunk, DATA_PAGE, DICTIONARY_PAGE, PLAIN, RLE, RLE_DICTIONARY};
use thrift::{CompactWriter, ListOf};

use crate::DecodeError;

const MAGIC: &[u8; 4] = b"PAR1";

/// An unsigned LEB128 varint, as Thrift's compact protocol and the RLE hybrid's run headers
/// write their counts.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
/// Parquet's `Type` and `ConvertedType` numbers used here.
const INT32: i32 = 1;
const INT64: i32 = 2;
const BYTE_ARRAY: i32 = 6;
const CONVERTED_UTF8: i32 = 0;
const CONVERTED_TIMESTAMP_MILLIS: i32 = 9;
const UNCOMPRESSED: i32 = 0;
const SNAPPY: i32 = 1;

/// A column's minimum and maximum, as Parquet stores them (plain bytes, no length).
pub(crate) type Bounds = (Vec<u8>, Vec<u8>);

/// Bytes reserved for a footer (the schema, the Arrow schema and each chunk's metadata).
const FOOTER_ROOM: usize = 16 * 1024;

/// A column's physical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Physical {
    ByteArray,
    Int32,
    Int64,
}

impl Physical {
    /// Parquet's number for the type.
    fn thrift_type(self) -> i32 {
        match self {
            Self::ByteArray => BYTE_ARRAY,
            Self::Int32 => INT32,
            Self::Int64 => INT64,
        }
    }
}

/// A column's logical type, when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logical {
    None,
    String,
    /// Milliseconds since the epoch, UTC.
    TimestampMillisUtc,
}

/// One column of the file, and how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub physical: Physical,
    pub logical: Logical,
    pub optional: bool,
    /// Written with a dictionary (for columns with few distinct values).
    pub dictionary: bool,
    /// Statistics (minimum, maximum, nulls) in the footer.
    pub statistics: bool,
    /// Pages compressed with SNAPPY; else stored as they are (UNCOMPRESSED), for values
    /// SNAPPY cannot shrink enough to pay for its time.
    pub compressed: bool,
}

impl ColumnSpec {
    /// The column an Arrow field maps to, as parquet-rs's Arrow writer maps it; `None` for
    /// types this writer does not write.
    pub fn from_arrow(
        name: &'static str,
        data_type: &DataType,
        optional: bool,
    ) -> Option<ColumnSpec> {
        let (physical, logical) = match data_type {
            DataType::Utf8 => (Physical::ByteArray, Logical::String),
            DataType::Int32 => (Physical::Int32, Logical::None),
            DataType::Int64 => (Physical::Int64, Logical::None),
            DataType::Timestamp(TimeUnit::Millisecond, Some(_)) => {
                (Physical::Int64, Logical::TimestampMillisUtc)
            }
            _ => return None,
        };
        Some(ColumnSpec {
            name,
            physical,
            logical,
            optional,
            dictionary: false,
            statistics: true,
            compressed: true,
        })
    }
}

/// The specs of every field of an Arrow schema (its names must be `'static`: the usage
/// event's column names are).
pub fn specs_from_arrow(
    schema: &Schema,
    names: &[&'static str],
) -> Result<Vec<ColumnSpec>, DecodeError> {
    schema
        .fields()
        .iter()
        .zip(names)
        .map(|(field, &name)| {
            ColumnSpec::from_arrow(name, field.data_type(), field.is_nullable()).ok_or_else(|| {
                DecodeError::Parquet(format!(
                    "column {name}: type {} is not written",
                    field.data_type()
                ))
            })
        })
        .collect()
}

/// A column chunk written, as the footer describes it.
struct ChunkMeta {
    spec: ColumnSpec,
    closed: ClosedChunk,
}

/// Row groups written, with their chunks.
struct RowGroupMeta {
    rows: u64,
    start: u64,
    chunks: Vec<ChunkMeta>,
}

/// A Parquet file being written in memory, row group by row group.
pub struct ParquetFileWriter {
    specs: Vec<ColumnSpec>,
    columns: Vec<ColumnChunk>,
    out: Vec<u8>,
    row_groups: Vec<RowGroupMeta>,
    row_group_rows: usize,
    rows_in_group: usize,
    key_value: Vec<(String, String)>,
    created_by: String,
}

impl std::fmt::Debug for ParquetFileWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ParquetFileWriter")
            .field("row_groups", &self.row_groups.len())
            .field("rows_in_group", &self.rows_in_group)
            .finish()
    }
}

impl ParquetFileWriter {
    /// A file of `specs`' columns, in row groups of `row_group_rows` and pages of at most
    /// `page_rows`, with `key_value` metadata in its footer.
    pub fn new(
        specs: Vec<ColumnSpec>,
        row_group_rows: usize,
        page_rows: usize,
        key_value: Vec<(String, String)>,
        created_by: &str,
    ) -> Self {
        let columns = spare_columns(&specs, page_rows).unwrap_or_else(|| {
            specs
                .iter()
                .map(|spec| ColumnChunk::new(*spec, page_rows))
                .collect()
        });
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(MAGIC);
        Self {
            specs,
            columns,
            out,
            row_groups: Vec::new(),
            row_group_rows: row_group_rows.max(1),
            rows_in_group: 0,
            key_value,
            created_by: created_by.to_owned(),
        }
    }

    /// Rows the open row group can still take.
    pub fn room(&self) -> usize {
        self.row_group_rows - self.rows_in_group
    }

    /// The columns, to push one value per row into each (at most [`Self::room`] rows),
    /// then [`Self::rows_pushed`].
    pub fn columns_mut(&mut self) -> &mut [ColumnChunk] {
        &mut self.columns
    }

    /// Records that `rows` rows were pushed into every column; closes the row group when
    /// it is full.
    pub fn rows_pushed(&mut self, rows: usize) -> Result<(), DecodeError> {
        self.rows_in_group += rows;
        if self.rows_in_group >= self.row_group_rows {
            self.close_row_group()?;
        }
        Ok(())
    }

    /// About the size the file would have if finished now.
    pub fn encoded_bytes(&self) -> usize {
        self.out.len()
            + self
                .columns
                .iter()
                .map(ColumnChunk::encoded_bytes)
                .sum::<usize>()
    }

    fn close_row_group(&mut self) -> Result<(), DecodeError> {
        if self.rows_in_group == 0 {
            return Ok(());
        }
        let start = self.out.len() as u64;
        // Room for every chunk at its uncompressed size, so the file grows once rather than
        // by doubling (each doubling copies what is written so far).
        let bound: usize = self.columns.iter().map(ColumnChunk::encoded_bytes).sum();
        self.out.reserve(bound + FOOTER_ROOM);
        let mut chunks = Vec::with_capacity(self.columns.len());
        for column in &mut self.columns {
            let closed = column
                .close_into(&mut self.out)
                .map_err(DecodeError::Parquet)?;
            chunks.push(ChunkMeta {
                spec: *column.spec(),
                closed,
            });
        }
        self.row_groups.push(RowGroupMeta {
            rows: self.rows_in_group as u64,
            start,
            chunks,
        });
        self.rows_in_group = 0;
        Ok(())
    }

    /// Closes the last row group, writes the footer and returns the file.
    pub fn finish(mut self) -> Result<Vec<u8>, DecodeError> {
        self.close_row_group()?;
        let footer_at = self.out.len();
        let mut footer = CompactWriter::new(&mut self.out);
        write_file_metadata(
            &mut footer,
            &self.specs,
            &self.row_groups,
            &self.key_value,
            &self.created_by,
        );
        let footer_len = (self.out.len() - footer_at) as u32;
        self.out.extend_from_slice(&footer_len.to_le_bytes());
        self.out.extend_from_slice(MAGIC);
        keep_spare_columns(std::mem::take(&mut self.columns));
        Ok(std::mem::take(&mut self.out))
    }
}

/// The columns of the last finished file, emptied, for the next file: their buffers keep
/// their room (see `ColumnChunk::recycle`). One file's worth, whoever writes it.
static SPARE_COLUMNS: Mutex<Option<Vec<ColumnChunk>>> = Mutex::new(None);

/// Spare columns that fit `specs` and `page_rows`, if any.
fn spare_columns(specs: &[ColumnSpec], page_rows: usize) -> Option<Vec<ColumnChunk>> {
    let mut spare = SPARE_COLUMNS.lock().ok()?;
    let fits = spare.as_ref().is_some_and(|columns| {
        columns.len() == specs.len()
            && columns
                .iter()
                .zip(specs)
                .all(|(column, spec)| column.fits(spec, page_rows))
    });
    if fits { spare.take() } else { None }
}

fn keep_spare_columns(mut columns: Vec<ColumnChunk>) {
    columns.iter_mut().for_each(ColumnChunk::recycle);
    if let Ok(mut spare) = SPARE_COLUMNS.lock() {
        *spare = Some(columns);
    }
}

fn write_file_metadata(
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
    let encodings: &[i32] = if closed.dictionary_data_pages > 0 {
        &[PLAIN, RLE, RLE_DICTIONARY]
    } else {
        &[PLAIN, RLE]
    };
    out.list(2, ListOf::I32, encodings.len());
    for &encoding in encodings {
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

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
