//! Parquet bytes from usage events and back: fixed row groups, an encoding and a codec
//! chosen per column, pure (bytes in memory).
//!
//! The file's columns and types are the Arrow schema of `usage_event`; how each column is
//! encoded is decided here, once, in [`writer_properties`]. Every encoding used is one that
//! Athena (Trino), DuckDB and Spark (3.3 or later) read: dictionary (RLE_DICTIONARY),
//! DELTA_BINARY_PACKED, PLAIN, and SNAPPY.
//! Files are written by [`crate::parquet_file`] straight from the events; parquet-rs's
//! Arrow writer under the same settings is the reference its tests compare against, and
//! parquet-rs's Arrow reader reads every file back.

use std::borrow::Borrow;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ARROW_SCHEMA_META_KEY, ArrowWriter, encode_arrow_schema};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::DecodeError;
use crate::parquet_file::{self, ColumnSpec, ParquetFileWriter, specs_from_arrow};
use crate::usage_event::{
    USAGE_EVENT_COLUMNS, UsageEvent, events_from_record_batch, events_to_record_batch,
    usage_event_arrow_schema, write_parquet_columns,
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

/// Integer columns written DELTA_BINARY_PACKED: each value as its difference from the one
/// before, bit-packed. Token counts, sizes and latencies take 12 to 16 bits a value instead
/// of PLAIN's 64; the time and the sequence numbers, which rise, fewer. They are stored
/// UNCOMPRESSED: bit-packed differences are about as dense as SNAPPY makes them (on the
/// benches' events the ten columns took 17.8 bytes an event with SNAPPY and 19.0 without,
/// against 33.5 for PLAIN with SNAPPY), and SNAPPY cost 120 instructions an event for that
/// byte. Athena (Trino), DuckDB and Spark 3.3 or later read DELTA_BINARY_PACKED.
pub const DELTA_COLUMNS: [&str; 10] = [
    "occurred_at",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "latency_ms",
    "upstream_latency_ms",
    "request_bytes",
    "response_bytes",
    "instance_seq",
];

/// Columns that no query filters on: no min/max statistics (a string comparison per row).
pub const UNFILTERED_COLUMNS: [&str; 2] = ["request_id", "upstream_request_id"];

/// Columns stored UNCOMPRESSED, besides [`DELTA_COLUMNS`]: the ids. Bedrock's request ids
/// are random UUIDs, which SNAPPY shrinks by a tenth; our UUIDv7 ids by a third (their time and fixed characters).
/// They are three quarters of a file's bytes before compression, so SNAPPY spent most of
/// its time on them: without it a file costs 31% fewer instructions to encode and is 18%
/// larger (153 against 130 bytes per event, `cargo bench -p metering --bench pipeline`'s
/// events). Queries rarely read them; Athena bills the columns a query reads.
pub const UNCOMPRESSED_COLUMNS: [&str; 3] = ["event_id", "request_id", "upstream_request_id"];

/// Whether a column is stored UNCOMPRESSED: the ids and the delta-encoded integers.
fn stored_uncompressed(column: &str) -> bool {
    UNCOMPRESSED_COLUMNS.contains(&column) || DELTA_COLUMNS.contains(&column)
}

fn parquet_error(error: impl std::fmt::Display) -> DecodeError {
    DecodeError::Parquet(error.to_string())
}

/// The writer settings of every usage event file: row groups of [`ROW_GROUP_ROWS`];
/// [`DICTIONARY_COLUMNS`] with a dictionary, [`DELTA_COLUMNS`] delta-encoded, every other
/// column plain; SNAPPY for every column but [`UNCOMPRESSED_COLUMNS`] and [`DELTA_COLUMNS`];
/// no statistics for [`UNFILTERED_COLUMNS`].
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
    for column in DELTA_COLUMNS {
        properties =
            properties.set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    for column in UNFILTERED_COLUMNS {
        properties = properties
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    for &column in USAGE_EVENT_COLUMNS
        .iter()
        .filter(|column| stored_uncompressed(column))
    {
        properties =
            properties.set_column_compression(ColumnPath::from(column), Compression::UNCOMPRESSED);
    }
    properties.build()
}

/// Rows per data page: a page of ids is about 160 KB before compression, so a column's
/// open page stays in the cache while it is filled and compressed (pages of 16 K rows
/// encoded 10,000 events 10% slower), and well under the 1 MB readers expect of a page.
pub const PAGE_ROWS: usize = 4 * 1024;

/// The footer's `created_by`, in the form Parquet recommends (`<application> version <v>`).
const CREATED_BY: &str = concat!("tollgate version ", env!("CARGO_PKG_VERSION"));

/// The columns of usage event files as [`writer_properties`] encodes them, for the
/// writer of [`crate::parquet_file`].
pub fn usage_column_specs() -> Result<Vec<ColumnSpec>, DecodeError> {
    let mut specs = specs_from_arrow(&usage_event_arrow_schema(), USAGE_EVENT_COLUMNS)?;
    for spec in &mut specs {
        spec.encoding = if DICTIONARY_COLUMNS.contains(&spec.name) {
            parquet_file::Encoding::Dictionary
        } else if DELTA_COLUMNS.contains(&spec.name) {
            parquet_file::Encoding::Delta
        } else {
            parquet_file::Encoding::Plain
        };
        spec.statistics = !UNFILTERED_COLUMNS.contains(&spec.name);
        spec.compressed = !stored_uncompressed(spec.name);
    }
    Ok(specs)
}

impl Default for UsageParquetEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Encodes usage events as Parquet files; built once and reused for every file, so the
/// columns and the footer's Arrow schema are not rebuilt per batch.
///
/// The files are written by [`crate::parquet_file`] straight from the events, with the
/// schema, encodings, codec and statistics that parquet-rs's Arrow writer gives under
/// [`writer_properties`] (the tests compare the two), at about a third of its cost.
#[derive(Debug, Clone)]
pub struct UsageParquetEncoder {
    /// The columns (an error only if the event gained a type the writer lacks, which the
    /// tests would show first).
    specs: Result<Vec<ColumnSpec>, DecodeError>,
    /// The footer's metadata: the Arrow schema, so Arrow readers get the exact types back.
    key_value: Vec<(String, String)>,
    row_group_rows: usize,
    page_rows: usize,
}

impl UsageParquetEncoder {
    /// The encoder of Tollgate's usage event files.
    pub fn new() -> Self {
        Self::with_sizes(ROW_GROUP_ROWS, PAGE_ROWS)
    }

    /// An encoder with other row group and page sizes (tests cover many of each).
    pub fn with_sizes(row_group_rows: usize, page_rows: usize) -> Self {
        let schema = usage_event_arrow_schema();
        Self {
            specs: usage_column_specs(),
            key_value: vec![(
                ARROW_SCHEMA_META_KEY.to_owned(),
                encode_arrow_schema(&schema),
            )],
            row_group_rows,
            page_rows,
        }
    }

    /// Encodes events (owned or borrowed) as one Parquet file, one row per event in order.
    /// The same events in the same order give the same bytes.
    pub fn encode<E: Borrow<UsageEvent>>(&self, events: &[E]) -> Result<Bytes, DecodeError> {
        let mut file = self.start_file()?;
        file.append(events)?;
        file.finish()
    }

    /// Starts a file written a batch of events at a time and held in memory (its encoded,
    /// compressed pages, not the events) until [`UsageParquetFile::finish`].
    pub fn start_file(&self) -> Result<UsageParquetFile, DecodeError> {
        Ok(UsageParquetFile {
            writer: ParquetFileWriter::new(
                self.specs.clone()?,
                self.row_group_rows,
                self.page_rows,
                self.key_value.clone(),
                CREATED_BY,
            ),
            rows: 0,
        })
    }
}

/// A Parquet file being written across batches (see [`UsageParquetEncoder::start_file`]).
#[derive(Debug)]
pub struct UsageParquetFile {
    writer: ParquetFileWriter,
    rows: usize,
}

impl UsageParquetFile {
    /// Appends events (owned or borrowed), in order.
    pub fn append<E: Borrow<UsageEvent>>(&mut self, events: &[E]) -> Result<(), DecodeError> {
        let mut rest = events;
        while !rest.is_empty() {
            // Up to the end of the open row group.
            let (now, later) = rest.split_at(self.writer.room().min(rest.len()));
            write_parquet_columns(now, self.writer.columns_mut());
            self.writer.rows_pushed(now.len())?;
            self.rows += now.len();
            rest = later;
        }
        Ok(())
    }

    /// Rows appended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// About the size the file would have if finished now: the row groups written plus the
    /// open one's pages (the last page uncompressed).
    pub fn encoded_bytes(&self) -> usize {
        self.writer.encoded_bytes()
    }

    /// Writes the footer and returns the file.
    pub fn finish(self) -> Result<Bytes, DecodeError> {
        Ok(Bytes::from(self.writer.finish()?))
    }
}

/// Encodes events with parquet-rs's Arrow writer under `properties`: the reference the
/// file writer is checked against, and the way to measure other settings
/// (`cargo bench -p metering --bench codec`).
pub fn encode_with_arrow_writer<E: Borrow<UsageEvent>>(
    events: &[E],
    properties: WriterProperties,
) -> Result<Bytes, DecodeError> {
    let batch = events_to_record_batch(events)?;
    let mut buffer = Vec::with_capacity(events.len() * 128 + 8 * 1024);
    let mut writer = ArrowWriter::try_new(
        &mut buffer,
        Arc::new(usage_event_arrow_schema()),
        Some(properties),
    )
    .map_err(parquet_error)?;
    writer.write(&batch).map_err(parquet_error)?;
    writer.close().map_err(parquet_error)?;
    Ok(Bytes::from(buffer))
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
