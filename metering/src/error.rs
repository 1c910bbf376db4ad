//! The metering crate's error type; every error knows whether a retry may succeed.

/// A metering failure.
#[derive(Debug, thiserror::Error)]
pub enum MeteringError {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    #[error("encoding parquet: {0}")]
    Encode(#[from] schemas::DecodeError),
    #[error("{0}")]
    Invalid(String),
}

impl MeteringError {
    /// Whether retrying the same batch may succeed. Every metering step is idempotent,
    /// so the consumer retries the whole batch.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_retryable(),
            Self::Object(_) => true,
            Self::Encode(_) | Self::Invalid(_) => false,
        }
    }
}

/// The metering result alias.
pub type Result<T, E = MeteringError> = std::result::Result<T, E>;
