//! Errors the proxy answers itself, in Bedrock's error shape: a JSON `{"message": …}` body
//! and the `x-amzn-errortype` header. Messages name the problem and the fix, and never
//! contain a token.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use schemas::quota::LimitHit;

/// An error answer from the proxy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
    pub retry_after_seconds: Option<u64>,
    /// Fields added to the JSON body next to `message`.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            message: message.into(),
            retry_after_seconds: None,
            details: None,
        }
    }

    /// 400: the request cannot be forwarded as sent.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    /// 401: no usable bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UnauthorizedException", message)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    }

    /// 404: no such route.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!(
                "no route for {method} {path}; send POST /prod/bedrock (or POST /bedrock) with the model body and modelId"
            ),
        )
    }

    /// 413: the body is over the limit.
    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ValidationException",
            format!(
                "request body is larger than the {limit_bytes}-byte limit; send a smaller prompt"
            ),
        )
    }

    /// 431: the request's header section is over the limit.
    pub fn headers_too_large(header_bytes: usize, limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "ValidationException",
            format!(
                "request headers are {header_bytes} bytes, more than the {limit_bytes}-byte limit; send fewer or shorter headers (the prompt belongs in the body)"
            ),
        )
    }

    /// 408: the body did not arrive in time.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "ValidationException",
            "request body did not arrive in time; retry the request",
        )
    }

    /// 429: a limit was reached. The body names the limit, its value, what was used and
    /// when it resets, besides the message.
    pub fn limit_reached(hit: &LimitHit) -> Self {
        Self {
            retry_after_seconds: Some(hit.retry_after_seconds),
            details: Some(serde_json::json!({
                "limit": hit.kind.as_str(),
                "limit_value": hit.limit,
                "used": hit.used,
                "resets_at": hit.resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "retry_after_seconds": hit.retry_after_seconds,
            })),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                hit.message(),
            )
        }
    }

    /// 502: the model runtime could not be reached.
    pub fn upstream_unreachable() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "ServiceUnavailableException",
            "the model provider could not be reached; retry later",
        )
    }

    /// 504: the model runtime did not answer in time.
    pub fn upstream_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "ModelTimeoutException",
            "the model provider did not answer in time; retry later or with a smaller request",
        )
    }

    /// 502: Bedrock refused the proxy's own AWS identity; the operator must act.
    pub fn upstream_credentials() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "ServiceUnavailableException",
            "the model provider refused this service's credentials or model access; the operator has to fix the service's AWS configuration",
        )
    }

    /// 502: the model runtime answered something the route cannot translate.
    pub fn upstream_unusable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "ServiceUnavailableException",
            message,
        )
    }

    /// The answer when the model runtime gave none: 504 on a timeout, 502 otherwise.
    pub fn from_runtime(error: &crate::upstream::RuntimeError) -> Self {
        use crate::upstream::RuntimeError;
        match error {
            RuntimeError::Timeout(_) => Self::upstream_timeout(),
            RuntimeError::Credentials(_) => Self::upstream_credentials(),
            RuntimeError::Unreachable(_) | RuntimeError::Failed(_) => Self::upstream_unreachable(),
        }
    }

    /// 503: the proxy itself cannot serve right now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            message,
        )
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let mut body = serde_json::json!({ "message": self.message });
        if let (Some(body), Some(serde_json::Value::Object(details))) =
            (body.as_object_mut(), &self.details)
        {
            body.extend(details.clone());
        }
        body.to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.error_type),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}
