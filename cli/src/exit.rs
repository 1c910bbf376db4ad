//! Exit codes, so that scripts can tell a typo from a missing customer from an outage.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | failed for another reason (see the message) |
//! | 2 | unusable arguments: an unknown flag, a bad date, duration, limit or email, nothing to change |
//! | 3 | not found: an unknown customer id or key id |
//! | 4 | conflict: the token is already in use, or the customer is deleted |
//! | 5 | a store or AWS service is unavailable right now; retrying may succeed |
//! | 6 | `reconcile` found drift between the raw events, the counters and Parquet |
//!
//! The control layer's error kinds ([`control::ControlError`]) map here once.

use control::ControlError;
use store::StoreError;

/// What kind of failure the CLI itself raised (the control layer's have their own kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Usage,
    Drift,
}

/// A failure whose kind is known where it is raised.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliFailure {
    pub kind: FailureKind,
    pub message: String,
}

/// Unusable arguments (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    CliFailure {
        kind: FailureKind::Usage,
        message: message.into(),
    }
    .into()
}

/// The projections disagree with the raw events (exit 6).
pub fn drift(message: impl Into<String>) -> anyhow::Error {
    CliFailure {
        kind: FailureKind::Drift,
        message: message.into(),
    }
    .into()
}

/// The exit code of a control-layer failure.
pub fn control_exit_code(error: &ControlError) -> u8 {
    match error {
        ControlError::Invalid { .. } => 2,
        ControlError::NotFound { .. } => 3,
        ControlError::Conflict { .. } => 4,
        ControlError::Unavailable(_) => 5,
        ControlError::Internal(_) => 1,
    }
}

/// The exit code of a failed command.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<CliFailure>() {
            return match failure.kind {
                FailureKind::Usage => 2,
                FailureKind::Drift => 6,
            };
        }
        if let Some(control) = cause.downcast_ref::<ControlError>() {
            return control_exit_code(control);
        }
        if let Some(store) = cause.downcast_ref::<StoreError>() {
            return match store {
                StoreError::NotFound { .. } => 3,
                StoreError::Conflict(_) => 4,
                StoreError::Config(_) => 2,
                other if other.is_retryable() => 5,
                _ => 1,
            };
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_their_documented_codes() {
        assert_eq!(exit_code(&usage("bad")), 2);
        assert_eq!(exit_code(&drift("differs")), 6);
        let control = |error: ControlError| exit_code(&anyhow::Error::new(error));
        assert_eq!(control(ControlError::invalid("field", "bad")), 2);
        assert_eq!(control(ControlError::not_found("who")), 3);
        assert_eq!(control(ControlError::conflict("taken")), 4);
        assert_eq!(
            control(ControlError::from(StoreError::Unavailable("down".into()))),
            5
        );
        assert_eq!(control(ControlError::internal("odd")), 1);
        assert_eq!(
            exit_code(&anyhow::Error::new(StoreError::Unavailable("down".into()))),
            5
        );
        assert_eq!(
            exit_code(
                &anyhow::Error::new(StoreError::Unavailable("down".into())).context("reading")
            ),
            5
        );
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
    }
}
