//! The control layer's one error type. Each variant is a kind that every adapter maps once:
//! the CLI to an exit code, the admin API to an HTTP status.

use metering::error::MeteringError;
use store::StoreError;

/// A failed operator use case. Messages are lowercase, say the fix, and never hold secrets.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// An input cannot be used; `field` names it and the message says the fix
    /// (CLI exit 2, HTTP 400).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// An id names nothing stored (CLI exit 3, HTTP 404).
    #[error("{message}")]
    NotFound { message: String },
    /// The change conflicts with what is stored: a token in use, a deleted customer, a
    /// changed plan version (CLI exit 4, HTTP 409).
    #[error("{message}")]
    Conflict { message: String },
    /// A store or service is unavailable right now; retrying may succeed
    /// (CLI exit 5, HTTP 503).
    #[error(transparent)]
    Unavailable(Failure),
    /// Any other failure, such as corrupt stored data (CLI exit 1, HTTP 500).
    #[error(transparent)]
    Internal(Failure),
}

/// The control layer's result alias.
pub type Result<T, E = ControlError> = std::result::Result<T, E>;

impl ControlError {
    /// An unusable input.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// An unknown id.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    /// A conflicting state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }

    /// A failure with no more specific kind.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(Failure {
            doing: Some(message.into()),
            cause: None,
        })
    }

    /// The same failure, said to have happened while doing `doing` (`cannot list customers`).
    pub fn while_doing(self, doing: impl Into<String>) -> Self {
        let doing = doing.into();
        match self {
            Self::Invalid { field, message } => Self::Invalid {
                field,
                message: format!("{doing}: {message}"),
            },
            Self::NotFound { message } => Self::NotFound {
                message: format!("{doing}: {message}"),
            },
            Self::Conflict { message } => Self::Conflict {
                message: format!("{doing}: {message}"),
            },
            Self::Unavailable(failure) => Self::Unavailable(Failure::around(doing, failure)),
            Self::Internal(failure) => Self::Internal(Failure::around(doing, failure)),
        }
    }

    /// Classifies `whole` by the kind of the store error inside it, keeping the whole
    /// failure's message.
    fn of_store_kind(
        kind: StoreFailureKind,
        whole: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        match kind {
            StoreFailureKind::NotFound => Self::not_found(whole.to_string()),
            StoreFailureKind::Conflict => Self::conflict(whole.to_string()),
            StoreFailureKind::Config => Self::invalid("backend", whole.to_string()),
            StoreFailureKind::Retryable => Self::Unavailable(Failure::caused_by(whole)),
            StoreFailureKind::Other => Self::Internal(Failure::caused_by(whole)),
        }
    }
}

/// How a store failure is classified.
#[derive(Debug, Clone, Copy)]
enum StoreFailureKind {
    NotFound,
    Conflict,
    Config,
    Retryable,
    Other,
}

impl StoreFailureKind {
    fn of(error: &StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => Self::NotFound,
            StoreError::Conflict(_) => Self::Conflict,
            StoreError::Config(_) => Self::Config,
            retryable if retryable.is_retryable() => Self::Retryable,
            _ => Self::Other,
        }
    }
}

impl From<StoreError> for ControlError {
    fn from(error: StoreError) -> Self {
        Self::of_store_kind(StoreFailureKind::of(&error), error)
    }
}

impl From<MeteringError> for ControlError {
    /// Store failures keep their kind; the rest are `Internal` (the CLI has always exited 1
    /// for them).
    fn from(error: MeteringError) -> Self {
        match &error {
            MeteringError::Store(store) => Self::of_store_kind(StoreFailureKind::of(store), error),
            _ => Self::Internal(Failure::caused_by(error)),
        }
    }
}

/// What failed, and while doing what. Shown as `doing: cause` (or the cause alone).
#[derive(Debug)]
pub struct Failure {
    doing: Option<String>,
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Failure {
    fn caused_by(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            doing: None,
            cause: Some(Box::new(cause)),
        }
    }

    fn around(doing: String, inner: Failure) -> Self {
        Self {
            doing: Some(doing),
            cause: Some(Box::new(inner)),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.doing, &self.cause) {
            (Some(doing), _) => formatter.write_str(doing),
            (None, Some(cause)) => cause.fmt(formatter),
            (None, None) => formatter.write_str("failed"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match (&self.doing, &self.cause) {
            (Some(_), Some(cause)) => Some(cause.as_ref()),
            (None, Some(cause)) => cause.source(),
            (_, None) => None,
        }
    }
}

/// Adds what was being done to a port's failure.
pub trait WhileDoing<T> {
    /// Converts the error into a [`ControlError`] of its kind, saying what was being done.
    fn while_doing(self, doing: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<ControlError>> WhileDoing<T> for std::result::Result<T, E> {
    fn while_doing(self, doing: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|error| error.into().while_doing(doing()))
    }
}
