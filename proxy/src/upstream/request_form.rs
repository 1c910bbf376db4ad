//! How a request to Bedrock is addressed on each protocol: HTTP/1.1 carries the path in its
//! request line and the origin in a `host` header; HTTP/2 carries the absolute URI.

use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Uri};

/// The `host` header for an origin: its host, and its port when it is not the scheme's
/// default.
pub(super) fn host_header(scheme: &Scheme, authority: &Authority) -> HeaderValue {
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let text = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_owned(),
    };
    // An authority's host and port are visible ASCII.
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("localhost"))
}

/// `request` with its URI as an HTTP/1.1 request line carries it (the path alone) and a
/// `host` header, unless it has one.
pub(super) fn origin_form<B>(mut request: Request<B>, host: &HeaderValue) -> Request<B> {
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);
    request
        .headers_mut()
        .entry(HOST)
        .or_insert_with(|| host.clone());
    request
}

/// `request` with an absolute URI, as HTTP/2 carries it: a request an HTTP/1.1 connection
/// gave back unsent carries its path alone.
pub(super) fn absolute_form<B>(
    mut request: Request<B>,
    scheme: &Scheme,
    authority: &Authority,
) -> Request<B> {
    if request.uri().scheme().is_none() {
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(scheme.clone());
        parts.authority = Some(authority.clone());
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}
