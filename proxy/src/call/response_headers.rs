//! Headers Tollgate sets on every answer it gives: its request id and the `RateLimit-*`
//! status of the caller's tightest limit.

use axum::http::HeaderValue;
use axum::response::Response;
use schemas::quota::RateLimitStatus;

/// Sets Tollgate's request id on a response.
pub fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Sets `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) for the
/// tightest limit; a customer without limits gets none.
pub fn with_rate_limit(mut response: Response, rate: Option<RateLimitStatus>) -> Response {
    if let Some(rate) = rate {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(rate.reset_seconds));
        if let Ok(policy) = HeaderValue::from_str(rate.kind.as_str()) {
            headers.insert("x-tollgate-ratelimit-name", policy);
        }
    }
    response
}
