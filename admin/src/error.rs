//! The admin API's errors: `{"error": {"code", "message", "field"?}}` with the status of
//! their kind. Control-layer errors map here once ([`From<ControlError>`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use control::ControlError;
use serde::Serialize;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// One refused or failed admin API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable code: `validation`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `idempotency_key_reused`, `payload_too_large`,
    /// `unsupported_media_type`, `method_not_allowed`, `unavailable`, `internal`.
    pub code: &'static str,
    /// What is wrong and how to fix it; never a secret.
    pub message: String,
    /// The request field at fault, for `validation`.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 naming the field at fault.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "validation", message)
        }
    }

    /// A 401: no credential, or one this deployment does not know.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A 403: a credential that may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A 405 on a known path.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{method} is not allowed on {path}; see GET /admin/api/v1/openapi.json for the routes"
            ),
        )
    }

    /// A 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is over {limit} bytes; send a smaller body"),
        )
    }

    /// A 415.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the body with Content-Type: {expected}"),
        )
    }

    /// A 422: an `Idempotency-Key` reused with another request.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request; use a new key for a new request",
        )
    }

    /// A 409: the first request with this `Idempotency-Key` has no answer yet.
    pub fn idempotency_key_in_use(since: chrono::DateTime<chrono::Utc>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            format!(
                "a request with this Idempotency-Key started at {} has no answer yet: retry in a few seconds; if it stays so, the server stopped while making it, so check whether the change was made (GET the resource, or the audit trail) before retrying with a new key",
                since.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        )
    }

    /// A 409: the route needs a setting the server was started without.
    pub fn not_configured(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "not_configured", message)
    }

    /// A 503 with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON body, as sent.
    pub fn body(&self) -> String {
        serde_json::to_string(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        })
        .unwrap_or_else(|_| format!("{{\"error\":{{\"code\":\"{}\"}}}}", self.code))
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match &error {
            ControlError::Invalid { field, message } => Self::validation(*field, message.clone()),
            ControlError::NotFound { message } => Self::not_found(message.clone()),
            ControlError::Conflict { message } => {
                Self::new(StatusCode::CONFLICT, "conflict", message.clone())
            }
            ControlError::Unavailable(_) => {
                tracing::warn!(error = %error, "admin API: the store is unavailable");
                Self::unavailable(format!("{error}; retry shortly"))
            }
            ControlError::Internal(_) => {
                tracing::error!(error = %error, "admin API: a use case failed");
                Self::internal(error.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tollgate-admin\""),
            );
        }
        response
    }
}

/// The admin API's result alias.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[test]
    fn each_control_error_kind_has_its_status_and_code() {
        let cases = [
            (ControlError::invalid("email", "bad"), 400, "validation"),
            (
                ControlError::not_found("no such customer"),
                404,
                "not_found",
            ),
            (ControlError::conflict("in use"), 409, "conflict"),
            (ControlError::internal("broken"), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status.as_u16(), status);
            assert_eq!(api.code, code);
        }
        let unavailable = ApiError::from(ControlError::from(store::StoreError::Unavailable(
            "dynamodb throttled".into(),
        )));
        assert_eq!(unavailable.code, "unavailable");
        let response = unavailable.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::RETRY_AFTER],
            RETRY_AFTER_SECONDS.to_string().as_str()
        );
        let field = ApiError::validation("daily_limit", "not a number");
        let body: serde_json::Value = serde_json::from_str(&field.body()).unwrap();
        assert_eq!(body["error"]["field"], "daily_limit");
        assert_eq!(body["error"]["code"], "validation");
    }
}
