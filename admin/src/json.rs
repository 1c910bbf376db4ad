//! Request bodies and query strings, read strictly: JSON only (`Content-Type`
//! `application/json`), a size bound, unknown fields refused, and errors that name the
//! field; and JSON answers.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// The largest JSON body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The media type of the request body, lowercased, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The body's bytes, at most `limit` (413 over it).
pub async fn body_bytes(body: Body, limit: usize) -> ApiResult<axum::body::Bytes> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

/// Decodes JSON bytes into `T`; a failure names the field (its path) and what was wrong.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let decoded: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let field = if path == "." {
            unknown_field(&inner.to_string()).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::validation(field, format!("the request body is not usable: {message}"))
    })?;
    deserializer.end().map_err(|_| {
        ApiError::validation(
            "body",
            "the request body has data after its JSON value; send one JSON object",
        )
    })?;
    Ok(decoded)
}

/// The field named by serde's "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// A JSON request body into `T`: `Content-Type: application/json`, at most
/// [`MAX_BODY_BYTES`], unknown fields refused (each body type denies them).
pub async fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> ApiResult<T> {
    if media_type(headers).as_deref() != Some("application/json") {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    let bytes = body_bytes(body, MAX_BODY_BYTES).await?;
    decode(&bytes)
}

/// An optional JSON body: absent or empty is `T::default()`; otherwise as [`json_body`].
pub async fn optional_json_body<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<T> {
    let bytes = body_bytes(body, MAX_BODY_BYTES).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if media_type(headers).as_deref() != Some("application/json") {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    decode(&bytes)
}

/// A query string into `T` (each query type denies unknown parameters).
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> ApiResult<T> {
    let raw = raw.unwrap_or_default();
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let field = if path == "." {
            unknown_field(&message).unwrap_or_else(|| "query".to_owned())
        } else {
            path
        };
        ApiError::validation(field, format!("the query is not usable: {message}"))
    })
}

/// A JSON answer with `status`.
pub fn answer<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(error) => {
            ApiError::internal(format!("cannot encode the answer: {error}")).into_response()
        }
    }
}

/// A 200 JSON answer.
pub fn ok<T: Serialize>(value: &T) -> Response {
    answer(StatusCode::OK, value)
}
