//! The store's error type: every backend maps its failures to a kind (not found, conflict,
//! corrupt, unavailable, rejected, config), classified as retryable or not. No backend
//! library's error type appears in it.

/// A store failure. Messages are lowercase and never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record or resource does not exist; the message names it.
    #[error("{what}")]
    NotFound { what: String },
    /// The change conflicts with what is stored (a duplicate id, a concurrent change).
    #[error("conflict: {0}")]
    Conflict(String),
    /// What is stored cannot be read as the record it should be.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The backend cannot serve the call now (busy, throttled, timed out, unreachable):
    /// retrying may succeed.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend refused or failed the call for a reason retrying it unchanged will not
    /// fix (a refused or malformed request, a permission, a failed disk). The message names
    /// the backend and the operation.
    #[error("{0}")]
    Rejected(String),
    /// A background task failed (a panic or cancellation); retrying may succeed.
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
            Self::Unavailable(_) | Self::Task(_) => true,
            Self::NotFound { .. }
            | Self::Conflict(_)
            | Self::Corrupt(_)
            | Self::Rejected(_)
            | Self::Config(_) => false,
        }
    }

    /// Shorthand for [`StoreError::NotFound`]: "`<what>` not found".
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound {
            what: format!("{what} not found"),
        }
    }
}

/// The store's result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
