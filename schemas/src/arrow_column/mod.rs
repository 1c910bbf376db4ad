//! How one Rust field type becomes one Arrow column and back.
//!
//! The usage event's field list names a Rust type per field; this trait gives each type
//! its Arrow data type, a column builder and a column reader. Unsigned counters are
//! stored as signed 64-bit integers, because Athena and Glue have no unsigned types.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, TimestampMillisecondArray};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, TimeZone, Utc};

use crate::DecodeError;
use crate::parquet_file::ColumnChunk;

mod text;

/// A Rust type that is stored as exactly one Arrow column.
pub trait ArrowColumn: Sized {
    /// The Arrow type of the column.
    fn data_type() -> DataType;
    /// Whether the column may hold nulls.
    fn nullable() -> bool {
        false
    }
    /// Builds the column from one value per row (the iterator may be walked twice, to size
    /// the column before filling it).
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef
    where
        Self: 'a;
    /// Writes one row's value into the column's Parquet chunk (see [`crate::parquet_file`]),
    /// as the Arrow writer would store the column built by `build_column`.
    fn write_parquet(&self, column: &mut ColumnChunk);
    /// Writes consecutive rows' values into the column's chunk; types whose column can take
    /// a run at once (integers) say so, the others write a value at a time.
    fn write_parquet_run<'a>(
        values: impl ExactSizeIterator<Item = &'a Self>,
        column: &mut ColumnChunk,
    ) where
        Self: 'a,
    {
        values.for_each(|value| value.write_parquet(column));
    }
    /// Reads every row of the column back. Errors name the column and row.
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError>;
    /// The rows of a file written before the column existed: nulls for a nullable column
    /// (a field added later is optional, so older files still read), `None` otherwise (the
    /// caller reports the missing column).
    fn absent(_rows: usize) -> Option<Vec<Self>> {
        None
    }
}

fn downcast<'a, T: 'static>(
    column: &'static str,
    array: &'a dyn Array,
    expected: DataType,
) -> Result<&'a T, DecodeError> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| DecodeError::WrongColumnType {
            column,
            found: array.data_type().to_string(),
            expected: expected.to_string(),
        })
}

fn required<T>(column: &'static str, row: usize, value: Option<T>) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::UnexpectedNull { column, row })
}

fn i64_to_u64(column: &'static str, row: usize, value: i64) -> Result<u64, DecodeError> {
    u64::try_from(value).map_err(|_| DecodeError::InvalidValue {
        column,
        row,
        reason: format!("{value} is negative"),
    })
}

/// Saturates instead of wrapping: a count past i64::MAX is not a real count.
fn u64_to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl ArrowColumn for u16 {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        column.push_i32(i32::from(*self));
    }
    fn data_type() -> DataType {
        DataType::Int32
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        Arc::new(
            values
                .map(|value| Some(i32::from(*value)))
                .collect::<Int32Array>(),
        )
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        let integers = downcast::<Int32Array>(column, array, Self::data_type())?;
        integers
            .iter()
            .enumerate()
            .map(|(row, value)| {
                let value = required(column, row, value)?;
                u16::try_from(value).map_err(|_| DecodeError::InvalidValue {
                    column,
                    row,
                    reason: format!("{value} does not fit in 16 bits"),
                })
            })
            .collect()
    }
}

impl ArrowColumn for u64 {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        column.push_i64(u64_to_i64(*self));
    }
    fn write_parquet_run<'a>(
        values: impl ExactSizeIterator<Item = &'a Self>,
        column: &mut ColumnChunk,
    ) {
        column.push_i64_run(values.map(|value| u64_to_i64(*value)));
    }
    fn data_type() -> DataType {
        DataType::Int64
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        Arc::new(
            values
                .map(|value| Some(u64_to_i64(*value)))
                .collect::<Int64Array>(),
        )
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        let integers = downcast::<Int64Array>(column, array, Self::data_type())?;
        integers
            .iter()
            .enumerate()
            .map(|(row, value)| i64_to_u64(column, row, required(column, row, value)?))
            .collect()
    }
}

impl ArrowColumn for Option<u64> {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        match self {
            Some(value) => column.push_i64(u64_to_i64(*value)),
            None => column.push_null(),
        }
    }
    fn data_type() -> DataType {
        DataType::Int64
    }
    fn nullable() -> bool {
        true
    }
    fn absent(rows: usize) -> Option<Vec<Self>> {
        Some(vec![None; rows])
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        Arc::new(
            values
                .map(|value| value.map(u64_to_i64))
                .collect::<Int64Array>(),
        )
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        let integers = downcast::<Int64Array>(column, array, Self::data_type())?;
        integers
            .iter()
            .enumerate()
            .map(|(row, value)| value.map(|v| i64_to_u64(column, row, v)).transpose())
            .collect()
    }
}

impl ArrowColumn for DateTime<Utc> {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        column.push_i64(self.timestamp_millis());
    }
    fn write_parquet_run<'a>(
        values: impl ExactSizeIterator<Item = &'a Self>,
        column: &mut ColumnChunk,
    ) {
        column.push_i64_run(values.map(DateTime::timestamp_millis));
    }
    fn data_type() -> DataType {
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        let array = values
            .map(|value| Some(value.timestamp_millis()))
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC");
        Arc::new(array)
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        let millis = downcast::<TimestampMillisecondArray>(column, array, Self::data_type())?;
        millis
            .iter()
            .enumerate()
            .map(|(row, value)| {
                let value = required(column, row, value)?;
                Utc.timestamp_millis_opt(value)
                    .single()
                    .ok_or_else(|| DecodeError::InvalidValue {
                        column,
                        row,
                        reason: format!("{value} ms is out of range"),
                    })
            })
            .collect()
    }
}

/// A fieldless enum stored as its lowercase name.
pub trait StringEnum: Sized + 'static {
    /// The stored name.
    fn as_str(&self) -> &'static str;
    /// Parses a stored name; `None` when it is not one of the variants.
    fn parse(text: &str) -> Option<Self>;
}

/// Implements [`ArrowColumn`] for a [`StringEnum`] as a UTF-8 column, and for an optional
/// one as a nullable UTF-8 column.
#[macro_export]
macro_rules! string_enum_column {
    ($enum_type:ty) => {
        impl $crate::arrow_column::ArrowColumn for $enum_type {
            fn write_parquet(&self, column: &mut $crate::parquet_file::ColumnChunk) {
                use $crate::arrow_column::StringEnum;
                column.push_static(self.as_str());
            }
            fn data_type() -> arrow_schema::DataType {
                arrow_schema::DataType::Utf8
            }
            fn build_column<'a>(
                values: impl Iterator<Item = &'a Self> + Clone,
            ) -> arrow_array::ArrayRef {
                use $crate::arrow_column::StringEnum;
                std::sync::Arc::new(
                    values
                        .map(|value| Some(value.as_str()))
                        .collect::<arrow_array::StringArray>(),
                )
            }
            fn read_column(
                column: &'static str,
                array: &dyn arrow_array::Array,
            ) -> Result<Vec<Self>, $crate::DecodeError> {
                let texts =
                    <String as $crate::arrow_column::ArrowColumn>::read_column(column, array)?;
                texts
                    .iter()
                    .enumerate()
                    .map(|(row, text)| $crate::arrow_column::parse_enum(column, row, text))
                    .collect()
            }
        }

        impl $crate::arrow_column::ArrowColumn for Option<$enum_type> {
            fn write_parquet(&self, column: &mut $crate::parquet_file::ColumnChunk) {
                use $crate::arrow_column::StringEnum;
                match self {
                    Some(value) => column.push_static(value.as_str()),
                    None => column.push_null(),
                }
            }
            fn data_type() -> arrow_schema::DataType {
                arrow_schema::DataType::Utf8
            }
            fn nullable() -> bool {
                true
            }
            fn absent(rows: usize) -> Option<Vec<Self>> {
                Some(vec![None; rows])
            }
            fn build_column<'a>(
                values: impl Iterator<Item = &'a Self> + Clone,
            ) -> arrow_array::ArrayRef {
                use $crate::arrow_column::StringEnum;
                std::sync::Arc::new(
                    values
                        .map(|value| value.as_ref().map(StringEnum::as_str))
                        .collect::<arrow_array::StringArray>(),
                )
            }
            fn read_column(
                column: &'static str,
                array: &dyn arrow_array::Array,
            ) -> Result<Vec<Self>, $crate::DecodeError> {
                let texts = <Option<String> as $crate::arrow_column::ArrowColumn>::read_column(
                    column, array,
                )?;
                texts
                    .iter()
                    .enumerate()
                    .map(|(row, text)| {
                        text.as_deref()
                            .map(|text| $crate::arrow_column::parse_enum(column, row, text))
                            .transpose()
                    })
                    .collect()
            }
        }
    };
}

/// Parses a stored enum name; an unknown one is an error naming the column and row.
pub fn parse_enum<E: StringEnum>(
    column: &'static str,
    row: usize,
    text: &str,
) -> Result<E, DecodeError> {
    E::parse(text).ok_or_else(|| DecodeError::InvalidValue {
        column,
        row,
        reason: format!("unknown value {text:?}"),
    })
}
