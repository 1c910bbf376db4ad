//! The outcome of the registry's DynamoDB transactions: which actions' conditions failed,
//! and the size limit checked before sending.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use super::errors::rejected;
use crate::{Result, StoreError};

/// The most actions one `TransactWriteItems` may hold.
const MAX_TRANSACTION_ACTIONS: usize = 100;

/// Refuses a transaction of `actions` actions that DynamoDB would reject, naming `what`.
pub(super) fn check_transaction_size(actions: usize, what: impl FnOnce() -> String) -> Result<()> {
    if actions > MAX_TRANSACTION_ACTIONS {
        return Err(rejected(format!(
            "{} needs {actions} writes in one DynamoDB transaction, more than its limit of {MAX_TRANSACTION_ACTIONS}; nothing was changed",
            what()
        )));
    }
    Ok(())
}

/// Which actions of a cancelled transaction failed their condition; `None` unless the
/// transaction was cancelled because at least one did (a cancellation for another reason,
/// such as a conflicting concurrent transaction, is an ordinary store error).
pub(super) fn failed_conditions(
    error: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Vec<bool>> {
    let SdkError::ServiceError(context) = error else {
        return None;
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = context.err() else {
        return None;
    };
    let failed: Vec<bool> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|reason| reason.code() == Some("ConditionalCheckFailed"))
        .collect();
    failed.contains(&true).then_some(failed)
}

pub(super) enum TransactFailure {
    /// Per action: whether its condition failed (at least one did).
    Conditions(Vec<bool>),
    Store(StoreError),
}

/// Whether the condition of action `index` failed.
pub(super) fn failed_at(failed: &[bool], index: usize) -> bool {
    failed.get(index) == Some(&true)
}

/// Whether the condition of the last action (the audit put) failed.
pub(super) fn failed_last(failed: &[bool]) -> bool {
    failed.last() == Some(&true)
}
