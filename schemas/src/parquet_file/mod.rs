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
mod delta;
mod dictionary;
mod footer;
mod numbers;
mod rle;
mod statistics;
mod thrift;

use std::sync::Mutex;

use arrow_schema::{DataType, Schema, TimeUnit};

pub use column::ColumnChunk;
use footer::{ChunkMeta, RowGroupMeta, write_file_metadata};
use numbers::{BYTE_ARRAY, INT32, INT64};
use thrift::CompactWriter;

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

/// How a column's values are stored in its data pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As they are (PLAIN).
    Plain,
    /// Each distinct value once in a dictionary page, the rows as indices into it
    /// (RLE_DICTIONARY): for columns with few distinct values.
    Dictionary,
    /// Each value as its difference from the one before, bit-packed (DELTA_BINARY_PACKED):
    /// for integers that are neither few nor ids. A string column given it is written plain.
    Delta,
}

/// One column of the file, and how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub physical: Physical,
    pub logical: Logical,
    pub optional: bool,
    pub encoding: Encoding,
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
            encoding: Encoding::Plain,
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

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
