//! SQLite errors mapped to `StoreError` kinds: busy or locked is `Unavailable` (retryable),
//! a stored value that does not convert is `Corrupt`, anything else is `Rejected`.

use crate::StoreError;

/// Maps a SQLite error to its kind; the message starts with `sqlite:`.
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let message = format!("sqlite: {error}");
        if matches!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ) {
            return Self::Unavailable(message);
        }
        match error {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..) => Self::Corrupt(message),
            _ => Self::Rejected(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_locked_are_retryable_and_other_failures_are_not() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let error = StoreError::from(sqlite_failure(code));
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
            assert!(error.is_retryable());
            assert!(error.to_string().contains("sqlite: "), "{error}");
        }
        let full = StoreError::from(sqlite_failure(rusqlite::ffi::SQLITE_FULL));
        assert!(matches!(full, StoreError::Rejected(_)), "{full:?}");
        assert!(!full.is_retryable());
        assert!(full.to_string().starts_with("sqlite: "), "{full}");
    }

    #[test]
    fn values_that_do_not_convert_are_corrupt() {
        let error = StoreError::from(rusqlite::Error::IntegralValueOutOfRange(0, -1));
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        assert!(!error.is_retryable());
    }
}
