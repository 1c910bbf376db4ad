//! AWS SDK errors mapped to `StoreError` kinds: throttling, 5xx, timeouts and dispatch
//! failures are `Unavailable` (retryable), a missing resource is `NotFound`, any other
//! refusal is `Rejected`. Messages of refusals start with `aws:`.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::StoreError;

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSThrottlingException",
    "TransactionConflictException",
];

/// Whether an AWS error code is worth retrying.
pub fn is_retryable_code(code: Option<&str>) -> bool {
    code.is_some_and(|code| RETRYABLE_CODES.contains(&code))
}

/// Maps an SDK error of `operation` on `resource` to a store error.
pub fn aws_error<E, R>(operation: &'static str, resource: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().map(str::to_owned);
    let message = DisplayErrorContext(&error).to_string();
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => is_retryable_code(code.as_deref()),
        _ => false,
    };
    if code.as_deref() == Some("ResourceNotFoundException") {
        return StoreError::NotFound {
            what: format!(
                "{resource} ({operation}); create it or fix the name in the configuration"
            ),
        };
    }
    if retryable {
        StoreError::Unavailable(format!("{operation} on {resource}: {message}"))
    } else {
        rejected(format!("{operation} on {resource}: {message}"))
    }
}

/// A call AWS refused, or that cannot be made, for a reason retrying will not fix.
pub fn rejected(message: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected(format!("aws: {message}"))
}
