//! Parquet's Thrift enum numbers that the writer uses: types, page types, encodings and
//! codecs.

/// `Type`.
pub(super) const INT32: i32 = 1;
pub(super) const INT64: i32 = 2;
pub(super) const BYTE_ARRAY: i32 = 6;

/// `ConvertedType`.
pub(super) const CONVERTED_UTF8: i32 = 0;
pub(super) const CONVERTED_TIMESTAMP_MILLIS: i32 = 9;

/// `PageType`.
pub(super) const DATA_PAGE: i32 = 0;
pub(super) const DICTIONARY_PAGE: i32 = 2;

/// `Encoding`.
pub(super) const PLAIN: i32 = 0;
pub(super) const RLE: i32 = 3;
pub(super) const DELTA_BINARY_PACKED: i32 = 5;
pub(super) const RLE_DICTIONARY: i32 = 8;

/// `CompressionCodec`.
pub(super) const UNCOMPRESSED: i32 = 0;
pub(super) const SNAPPY: i32 = 1;
