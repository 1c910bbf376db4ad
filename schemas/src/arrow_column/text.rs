//! The text columns: strings, names, request ids and UUIDs, each a UTF-8 column.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::DataType;
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::{ArrowColumn, downcast, required};
use crate::DecodeError;
use crate::name::{Name, Names};
use crate::parquet_file::ColumnChunk;
use crate::request_id::RequestId;

impl ArrowColumn for String {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        column.push_bytes(self.as_bytes());
    }
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        string_column(values.map(|value| Some(value.as_str())))
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        read_required(column, array, str::to_owned)
    }
}

/// A UTF-8 column of `values` (`None` a null), sized before it is filled.
fn string_column<S: AsRef<str>>(values: impl Iterator<Item = Option<S>> + Clone) -> ArrayRef {
    let (rows, bytes) = values.clone().fold((0, 0), |(rows, bytes), value| {
        let len = value.as_ref().map_or(0, |text| text.as_ref().len());
        (rows + 1, bytes + len)
    });
    let mut builder = StringBuilder::with_capacity(rows, bytes);
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}

/// Every row of a UTF-8 column without nulls, each made a value by `value`.
fn read_required<T>(
    column: &'static str,
    array: &dyn Array,
    mut value: impl FnMut(&str) -> T,
) -> Result<Vec<T>, DecodeError> {
    let strings = downcast::<StringArray>(column, array, DataType::Utf8)?;
    strings
        .iter()
        .enumerate()
        .map(|(row, text)| required(column, row, text).map(&mut value))
        .collect()
}

/// Every row of a nullable UTF-8 column, each present one made a value by `value`.
fn read_optional<T>(
    column: &'static str,
    array: &dyn Array,
    mut value: impl FnMut(&str) -> T,
) -> Result<Vec<Option<T>>, DecodeError> {
    let strings = downcast::<StringArray>(column, array, DataType::Utf8)?;
    Ok(strings.iter().map(|text| text.map(&mut value)).collect())
}

impl ArrowColumn for Option<String> {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        match self {
            Some(value) => column.push_bytes(value.as_bytes()),
            None => column.push_null(),
        }
    }
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn nullable() -> bool {
        true
    }
    fn absent(rows: usize) -> Option<Vec<Self>> {
        Some(vec![None; rows])
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        string_column(values.map(Option::as_deref))
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        read_optional(column, array, str::to_owned)
    }
}

impl ArrowColumn for Uuid {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        column.push_bytes(&crate::digits::uuid_lower(self.as_bytes()));
    }
    fn data_type() -> DataType {
        DataType::Utf8
    }
    /// Each id is written in its hyphenated lowercase form straight into the column.
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        let rows = values.size_hint().0;
        let mut builder = StringBuilder::with_capacity(rows, rows * Hyphenated::LENGTH);
        let mut text = [0_u8; Hyphenated::LENGTH];
        for value in values {
            builder.append_value(value.hyphenated().encode_lower(&mut text));
        }
        Arc::new(builder.finish())
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        let strings = downcast::<StringArray>(column, array, Self::data_type())?;
        strings
            .iter()
            .enumerate()
            .map(|(row, value)| {
                let text = required(column, row, value)?;
                Uuid::parse_str(text).map_err(|error| DecodeError::InvalidValue {
                    column,
                    row,
                    reason: error.to_string(),
                })
            })
            .collect()
    }
}

impl ArrowColumn for Name {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        column.push_name(self);
    }
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        string_column(values.map(|value| Some(value.as_str())))
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        // Rows of one file name few customers, keys and models: one copy of each.
        let mut names = Names::default();
        read_required(column, array, |text| names.name(text))
    }
}

impl ArrowColumn for RequestId {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        column.push_bytes(self.text().as_bytes());
    }
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        string_column(values.map(|value| Some(value.text())))
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        read_required(column, array, |text| RequestId::from(text))
    }
}

impl ArrowColumn for Option<RequestId> {
    fn write_parquet(&self, column: &mut ColumnChunk) {
        match self {
            Some(value) => column.push_bytes(value.text().as_bytes()),
            None => column.push_null(),
        }
    }
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn nullable() -> bool {
        true
    }
    fn absent(rows: usize) -> Option<Vec<Self>> {
        Some(vec![None; rows])
    }
    fn build_column<'a>(values: impl Iterator<Item = &'a Self> + Clone) -> ArrayRef {
        string_column(values.map(|value| value.as_ref().map(RequestId::text)))
    }
    fn read_column(column: &'static str, array: &dyn Array) -> Result<Vec<Self>, DecodeError> {
        read_optional(column, array, |text| RequestId::from(text))
    }
}
