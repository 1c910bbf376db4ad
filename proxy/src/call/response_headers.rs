//! Headers Tollgate sets on every answer it gives: its request id and the `RateLimit-*`
//! status of the caller's tightest limit.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
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
        let [limit, remaining, reset] =
            decimal_values([rate.limit, rate.remaining, rate.reset_seconds]);
        let headers = response.headers_mut();
        headers.insert(RATELIMIT_LIMIT, limit);
        headers.insert(RATELIMIT_REMAINING, remaining);
        headers.insert(RATELIMIT_RESET, reset);
        headers.insert(RATELIMIT_NAME, HeaderValue::from_static(rate.kind.as_str()));
    }
    response
}

/// Header values of numbers in decimal, all written into one buffer (one allocation,
/// where `HeaderValue::from(u64)` makes one per value).
pub fn decimal_values<const N: usize>(numbers: [u64; N]) -> [HeaderValue; N] {
    let mut text = BytesMut::with_capacity(N * 20);
    let mut ends = [0usize; N];
    for (end, number) in ends.iter_mut().zip(numbers) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = number;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        text.put_slice(&digits[at..]);
        *end = text.len();
    }
    let text: Bytes = text.freeze();
    let mut start = 0;
    ends.map(|end| {
        let digits = text.slice(start..end);
        start = end;
        // Digits only: always a valid header value.
        HeaderValue::from_maybe_shared(digits).unwrap_or_else(|_| HeaderValue::from_static("0"))
    })
}

#[cfg(test)]
mod tests {
    use schemas::quota::LimitKind;

    use super::*;

    #[test]
    fn numbers_are_written_as_decimal_header_values() {
        let values = decimal_values([0, 7, 10, 4_294_967_296, u64::MAX]);
        let texts: Vec<&str> = values.iter().map(|value| value.to_str().unwrap()).collect();
        assert_eq!(
            texts,
            ["0", "7", "10", "4294967296", "18446744073709551615"]
        );
    }

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
