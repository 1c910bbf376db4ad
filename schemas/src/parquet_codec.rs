//! Parquet bytes from usage events and back: fixed row groups, an encoding and a codec
//! chosen per column, pure (bytes in memory).
//!
//! The file's columns and types are the Arrow schema of `usage_event`; how each column is
//! encoded is decided here, once, in [`writer_properties`]. Every encoding used is one that
//! Athena (Trino), DuckDB and Spark read: dictionary (RLE_DICTIONARY), PLAIN, and SNAPPY.

use std::borrow::Borrow;
use std::sync::{Arc, LazyLock};

use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::DecodeError;
use crate::usage_event::{
    UsageEvent, events_from_record_batch, events_to_record_batch, usage_event_arrow_schema,
};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Columns with few distinct values, written with a dictionary: each value once per
/// column chunk, then small indices. Every other column (ids unique per row, timestamps,
/// counts and sizes that rarely repeat) is written plain: a dictionary there would hold
/// nearly every value once more, cost a hash per row, and fall back to plain pages anyway.
pub const DICTIONARY_COLUMNS: [&str; 9] = [
    "schema_version",
    "customer_id",
    "key_id",
    "model_id",
    "operation",
    "api",
    "status",
    "outcome",
    "proxy_instance",
];

/// Columns that no query filters on: no min/max statistics (a string comparison per row).
pub const UNFILTERED_COLUMNS: [&str; 2] = ["request_id", "upstream_request_id"];

fn parquet_error(error: impl std::fmt::Display) -> DecodeError {
    DecodeError::Parquet(error.to_string())
}

/// The writer settings of every usage event file: row groups of [`ROW_GROUP_ROWS`];
/// [`DICTIONARY_COLUMNS`] with a dictionary, every other column plain; SNAPPY for every
/// column; no statistics for [`UNFILTERED_COLUMNS`].
///
/// SNAPPY rather than ZSTD: on the consumer's files (about 1000 events each) ZSTD made
/// files 45% smaller (47 against 85 bytes per event) but cost 2.2 times the encode time,
/// two thirds of it in creating a compression and a decompression context per column per
/// file (`cargo bench -p metering --bench codec -- codec/parquet`). Athena, DuckDB and
/// Spark read SNAPPY, Parquet's most common codec.
pub fn writer_properties() -> WriterProperties {
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false)
        .set_created_by("tollgate".to_owned());
    for column in DICTIONARY_COLUMNS {
        properties = properties.set_column_dictionary_enabled(ColumnPath::from(column), true);
    }
    for column in UNFILTERED_COLUMNS {
        properties = properties
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    properties.build()
}

/// Encodes usage events as Parquet files; built once and reused for every file, so the
/// schema and the writer settings are not rebuilt per batch.
#[derive(Debug, Clone)]
pub struct UsageParquetEncoder {
    schema: SchemaRef,
    properties: WriterProperties,
}

impl Default for UsageParquetEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageParquetEncoder {
    /// An encoder with the settings of [`writer_properties`].
    pub fn new() -> Self {
        Self {
            schema: Arc::new(usage_event_arrow_schema()),
            properties: writer_properties(),
        }
    }

    /// An encoder with other writer settings (to compare encodings; files for Tollgate's
    /// tables use [`UsageParquetEncoder::new`]).
    pub fn with_properties(properties: WriterProperties) -> Self {
        Self {
            schema: Arc::new(usage_event_arrow_schema()),
            properties,
        }
    }

    /// Encodes events (owned or borrowed) as one Parquet file, one row per event in order.
    /// The same events in the same order give the same bytes.
    pub fn encode<E: Borrow<UsageEvent>>(&self, events: &[E]) -> Result<Bytes, DecodeError> {
        let batch = events_to_record_batch(events)?;
        let mut buffer = Vec::with_capacity(events.len() * 128 + 8 * 1024);
        let mut writer = ArrowWriter::try_new(
            &mut buffer,
            Arc::clone(&self.schema),
            Some(self.properties.clone()),
        )
        .map_err(parquet_error)?;
        writer.write(&batch).map_err(parquet_error)?;
        writer.close().map_err(parquet_error)?;
        Ok(Bytes::from(buffer))
    }
}

impl UsageParquetEncoder {
    /// Starts a file written a batch of events at a time and held in memory (its encoded,
    /// compressed pages, not the events) until [`UsageParquetFile::finish`].
    pub fn start_file(&self) -> Result<UsageParquetFile, DecodeError> {
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(64 * 1024),
            Arc::clone(&self.schema),
            Some(self.properties.clone()),
        )
        .map_err(parquet_error)?;
        Ok(UsageParquetFile { writer, rows: 0 })
    }
}

/// A Parquet file being written across batches (see [`UsageParquetEncoder::start_file`]).
pub struct UsageParquetFile {
    writer: ArrowWriter<Vec<u8>>,
    rows: usize,
}

impl std::fmt::Debug for UsageParquetFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UsageParquetFile")
            .field("rows", &self.rows)
            .field("bytes", &self.encoded_bytes())
            .finish()
    }
}

impl UsageParquetFile {
    /// Appends events (owned or borrowed), in order.
    pub fn append<E: Borrow<UsageEvent>>(&mut self, events: &[E]) -> Result<(), DecodeError> {
        if events.is_empty() {
            return Ok(());
        }
        let batch = events_to_record_batch(events)?;
        self.writer.write(&batch).map_err(parquet_error)?;
        self.rows += events.len();
        Ok(())
    }

    /// Rows appended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// About the size the file would have if finished now: the row groups written plus the
    /// estimated size of the one in progress.
    pub fn encoded_bytes(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Writes the footer and returns the file.
    pub fn finish(self) -> Result<Bytes, DecodeError> {
        let buffer = self.writer.into_inner().map_err(parquet_error)?;
        Ok(Bytes::from(buffer))
    }
}

/// Encodes events (owned or borrowed) as one Parquet file. The same events in the same
/// order give the same bytes. The settings are built once per process.
pub fn encode_events_parquet<E: Borrow<UsageEvent>>(events: &[E]) -> Result<Bytes, DecodeError> {
    static ENCODER: LazyLock<UsageParquetEncoder> = LazyLock::new(UsageParquetEncoder::new);
    ENCODER.encode(events)
}

/// Decodes every row of a Parquet file written by [`encode_events_parquet`].
pub fn decode_events_parquet(bytes: Bytes) -> Result<Vec<UsageEvent>, DecodeError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(parquet_error)?
        .build()
        .map_err(parquet_error)?;
    let mut events = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|error| DecodeError::Arrow(error.to_string()))?;
        events.extend(events_from_record_batch(&batch)?);
    }
    Ok(events)
}
