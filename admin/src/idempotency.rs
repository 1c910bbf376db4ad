//! `Idempotency-Key` on `POST` routes (a layer inside authentication): the first request
//! with a key runs and its answer is kept, sealed, for a day; a retry with the same method,
//! path and body gets that answer (`Idempotent-Replayed: true`) and changes nothing; the key
//! with another request is 422; a retry while the first still runs is 409. The rules are
//! `control::idempotency`'s.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use control::idempotency::{Begin, begin, finish, request_hash};

use crate::AdminState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::body_bytes;
use crate::plans::MAX_PLAN_BYTES;

/// The header clients send.
pub const HEADER: &str = "idempotency-key";
/// The largest answer kept for replay (every answer of this API is far smaller).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The stored form of an answer: its content type, a newline, its body.
fn stored(content_type: &str, body: &[u8]) -> Vec<u8> {
    [content_type.as_bytes(), b"\n", body].concat()
}

fn replayed(status: u16, answer: &[u8]) -> Response {
    let (content_type, body) = match answer.iter().position(|byte| *byte == b'\n') {
        Some(at) => (&answer[..at], &answer[at + 1..]),
        None => (&b"application/json"[..], answer),
    };
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        body.to_vec(),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_bytes(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The layer.
pub async fn idempotent(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let Ok(key) = value.to_str().map(str::to_owned) else {
        return ApiError::validation(
            "Idempotency-Key",
            "the Idempotency-Key header must be visible ASCII; send a fresh UUID per operation",
        )
        .into_response();
    };
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return ApiError::internal("the caller is not known").into_response();
    };
    let (parts, body) = request.into_parts();
    let bytes = match body_bytes(body, MAX_PLAN_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let keys = state.ports.idempotency.as_ref();
    let hash = request_hash(parts.method.as_str(), parts.uri.path(), &bytes);
    match begin(keys, &caller.name, &key, &hash, chrono::Utc::now()).await {
        Err(error) => ApiError::from(error).into_response(),
        Ok(Begin::Reused) => ApiError::idempotency_key_reused().into_response(),
        Ok(Begin::InProgress { since }) => ApiError::idempotency_key_in_use(since).into_response(),
        Ok(Begin::Replay { status, answer }) => replayed(status, &answer),
        Ok(Begin::Run) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (mut parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
                .await
                .unwrap_or_default();
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            let answer = stored(&content_type, &body);
            if let Err(error) =
                finish(keys, &caller.name, &key, parts.status.as_u16(), &answer).await
            {
                // The change is made; the key stays in progress, so a retry gets 409 rather
                // than running twice.
                tracing::error!(error = %error, "admin API: cannot record an idempotent answer");
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
    }
}
