//! Headers Tollgate sets on every answer it gives: its request id and the `RateLimit-*`
//! status of the caller's tightest limit.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use schemas::RequestId;
use schemas::quota::RateLimitStatus;

// Names made once: a name given as text is checked again on every insert.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const RATELIMIT_NAME: HeaderName = HeaderName::from_static("x-tollgate-ratelimit-name");

/// Sets Tollgate's request id on a response.
pub fn with_request_id(mut response: Response, request_id: &RequestId) -> Response {
    if let Ok(value) = HeaderValue::from_bytes(request_id.text().as_bytes()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Sets `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) for the
/// tightest limit; a customer without limits gets none.
pub fn with_rate_limit(mut response: Response, rate: Option<RateLimitStatus>) -> Response {
    if let Some(rate) = rate {
        let headers = response.headers_mut();
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(rate.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(rate.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(rate.reset_seconds));
        headers.insert(RATELIMIT_NAME, HeaderValue::from_static(rate.kind.as_str()));
    }
    response
}

#[cfg(test)]
mod tests {
    use schemas::quota::LimitKind;

    use super::*;

    #[test]
    fn every_limit_sets_its_rate_limit_headers_and_the_request_id_is_set() {
        for kind in LimitKind::ALL {
            let rate = RateLimitStatus {
                kind,
                limit: 10,
                remaining: 4,
                reset_seconds: 30,
            };
            let response = with_request_id(
                with_rate_limit(Response::default(), Some(rate)),
                &RequestId::from("request-1"),
            );
            let header = |name: &str| response.headers().get(name).unwrap().to_str().unwrap();
            assert_eq!(header("ratelimit-limit"), "10");
            assert_eq!(header("ratelimit-remaining"), "4");
            assert_eq!(header("ratelimit-reset"), "30");
            assert_eq!(header("x-tollgate-ratelimit-name"), kind.as_str());
            assert_eq!(header("x-amzn-requestid"), "request-1");
        }
        let unlimited = with_rate_limit(Response::default(), None);
        assert!(unlimited.headers().get("ratelimit-limit").is_none());
    }
}
