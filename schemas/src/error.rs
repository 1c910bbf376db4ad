//! The typed error for every decode in this crate: corrupt input never panics.

/// Why a persisted record could not be decoded. Each variant names the problem.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record is not valid json: {0}")]
    Json(String),
    #[error("record has no schema_version field; it was not written by tollgate")]
    MissingVersion,
    #[error(
        "record has schema_version {found}, this build reads only {supported}; upgrade tollgate"
    )]
    UnknownVersion { found: u64, supported: u64 },
    #[error("column {column} is missing from the batch")]
    MissingColumn { column: &'static str },
    #[error("column {column} has arrow type {found}, expected {expected}")]
    WrongColumnType {
        column: &'static str,
        found: String,
        expected: String,
    },
    #[error("column {column} has a null in row {row}, but the field is required")]
    UnexpectedNull { column: &'static str, row: usize },
    #[error("column {column} row {row} holds an invalid value: {reason}")]
    InvalidValue {
        column: &'static str,
        row: usize,
        reason: String,
    },
    #[error("arrow error: {0}")]
    Arrow(String),
    #[error("parquet error: {0}")]
    Parquet(String),
    #[error("log record is a damaged frame: {0}")]
    Frame(String),
    #[error("binary usage event is damaged: {0}")]
    Binary(String),
}
