//! The operator console at `/admin/`: a page, its script and its stylesheet, compiled into
//! the binary (no external network, no CDN). The page calls the admin API with the
//! credential the operator signs in with, held by the page; it holds no rule of its own.
//!
//! Every answer carries a strict Content-Security-Policy: scripts, styles and connections
//! from this origin only, no inline script or style, no framing, forms posting only here.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLES: &str = include_str!("../console/console.css");
const ICON: &str = include_str!("../console/favicon.svg");

/// The console's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn styles() -> Response {
    asset("text/css; charset=utf-8", STYLES)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

/// The console's routes, for the proxy's router next to [`crate::router`]'s.
pub fn router() -> Router {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("admin/") }))
        .route("/admin/", get(index))
        .route("/admin/console.js", get(script))
        .route("/admin/console.css", get(styles))
        .route("/admin/favicon.svg", get(icon))
}
