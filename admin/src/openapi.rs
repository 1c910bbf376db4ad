//! The OpenAPI 3.1 document of the admin API (`openapi.json`, written by hand beside this
//! file), served at `GET /admin/api/v1/openapi.json`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document's text.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /admin/api/v1/openapi.json`.
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
