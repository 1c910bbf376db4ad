//! The cap on a request's header section: answered with 431 before authentication, body
//! reading or anything else. hyper's own bound on HTTP/1 (its read buffer, about 400 KB)
//! and the HTTP/2 header list bound set in `server` only protect memory; this is the
//! limit clients see, with a message that names it.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use crate::error_response::ApiError;

/// The bytes of a request's header section as HTTP/1.1 writes it: the request line
/// (`METHOD URI HTTP/1.1\r\n`) and every header as `name: value\r\n`. HTTP/2 requests are
/// counted the same way, so the cap does not depend on the protocol.
pub fn header_section_bytes(method: &Method, uri: &Uri, headers: &HeaderMap) -> usize {
    let target = uri
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    let request_line = method.as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    headers.iter().fold(request_line, |total, (name, value)| {
        total + name.as_str().len() + 2 + value.len() + 2
    })
}

/// The 431 answer to a request whose header section is over `limit`; `None` when it is
/// within it.
pub fn refusal<B>(request: &http::Request<B>, limit: usize) -> Option<Response> {
    let bytes = header_section_bytes(request.method(), request.uri(), request.headers());
    if bytes <= limit {
        return None;
    }
    tracing::info!(
        header_bytes = bytes,
        limit,
        "request refused: header section over the limit"
    );
    Some(ApiError::headers_too_large(bytes, limit).into_response())
}

async fn cap_headers(State(limit): State<usize>, request: Request, next: Next) -> Response {
    match refusal(&request, limit) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// Wraps every route of `router` (customers', open and operators' alike) in the cap.
pub fn with_header_cap(router: Router, max_header_bytes: usize) -> Router {
    router.layer(from_fn_with_state(max_header_bytes, cap_headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_section_is_counted_as_http_1_1_writes_it() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.insert("x-long", HeaderValue::from_str(&"a".repeat(100)).unwrap());
        let uri: Uri = "/prod/bedrock?x=1".parse().unwrap();
        // "POST /prod/bedrock?x=1 HTTP/1.1\r\n" + "host: example.com\r\n" + "x-long: a…\r\n"
        assert_eq!(
            header_section_bytes(&Method::POST, &uri, &headers),
            33 + 19 + (6 + 2 + 100 + 2)
        );
    }
}
