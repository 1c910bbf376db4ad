//! The store's error type: every backend maps its failures here, classified as retryable or not.

/// A store failure. Messages are lowercase and never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what}")]
    NotFound { what: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    #[error("aws: {0}")]
    Aws(String),
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("background task failed: {0}")]
    Task(String),
    /// The configuration cannot work; the message names the setting and the fix.
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::Task(_) | Self::Object(_) => true,
            Self::Sqlite(error) => matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::NotFound { .. }
            | Self::Conflict(_)
            | Self::Corrupt(_)
            | Self::Aws(_)
            | Self::Config(_) => false,
        }
    }

    /// Shorthand for [`StoreError::NotFound`]: "<what> not found".
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound {
            what: format!("{what} not found"),
        }
    }
}

/// The store's result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
