//! AWS SDK errors mapped to `StoreError`, classified as retryable or not.

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
        StoreError::Aws(format!("{operation} on {resource}: {message}"))
    }
}
