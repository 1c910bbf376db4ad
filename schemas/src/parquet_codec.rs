//! Parquet bytes from usage events and back: ZSTD, fixed row groups, pure (bytes in memory).

use std::borrow::Borrow;

use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::DecodeError;
use crate::usage_event::{UsageEvent, events_from_record_batch, events_to_record_batch};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Columns whose values are unique per row (or nearly): a dictionary would hold every
/// value once more and then fall back to plain pages, so they are written plain.
pub const UNIQUE_COLUMNS: [&str; 3] = ["event_id", "request_id", "upstream_request_id"];

fn parquet_error(error: impl std::fmt::Display) -> DecodeError {
    DecodeError::Parquet(error.to_string())
}

/// Encodes events (owned or borrowed) as one Parquet file. The same events in the same
/// order give the same bytes.
pub fn encode_events_parquet<E: Borrow<UsageEvent>>(events: &[E]) -> Result<Bytes, DecodeError> {
    let batch = events_to_record_batch(events)?;
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by("tollgate".to_owned());
    for column in UNIQUE_COLUMNS {
        properties = properties.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    let properties = properties.build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))
        .map_err(parquet_error)?;
    writer.write(&batch).map_err(parquet_error)?;
    writer.close().map_err(parquet_error)?;
    Ok(Bytes::from(buffer))
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
