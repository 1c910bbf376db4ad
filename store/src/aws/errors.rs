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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> StoreError {
        let error = GetItemError::generic(ErrorMetadata::builder().code(code).build());
        let response = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        aws_error("GetItem", "table", SdkError::service_error(error, response))
    }

    #[test]
    fn throttling_and_server_errors_are_unavailable() {
        for code in [
            "ThrottlingException",
            "InternalServerError",
            "ServiceUnavailable",
        ] {
            let error = service_error(code, 500);
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
            assert!(error.is_retryable());
        }
        let timeout = aws_error::<GetItemError, Response>(
            "GetItem",
            "table",
            SdkError::timeout_error("too slow"),
        );
        assert!(timeout.is_retryable(), "{timeout:?}");
    }

    #[test]
    fn refusals_are_rejected_and_missing_resources_not_found() {
        let refused = service_error("AccessDeniedException", 400);
        assert!(matches!(refused, StoreError::Rejected(_)), "{refused:?}");
        assert!(!refused.is_retryable());
        assert!(
            refused.to_string().starts_with("aws: GetItem on table"),
            "{refused}"
        );
        let missing = service_error("ResourceNotFoundException", 400);
        assert!(
            matches!(missing, StoreError::NotFound { .. }),
            "{missing:?}"
        );
    }
}
