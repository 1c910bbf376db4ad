//! Bedrock's own runtime routes, so the official SDKs work against the proxy:
//! `POST /model/{modelId}/{operation}` for `invoke`, `invoke-with-response-stream`,
//! `converse` and `converse-stream`. The SDKs percent-encode the model id (`:` as `%3A`, an
//! ARN's `/` as `%2F`); the router matches the raw path segment and decodes it.

use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use store::model_runtime::operation_from_path;

use crate::call::{ModelSource, handle_call};
use crate::error_response::ApiError;
use crate::state::ProxyState;

/// `POST /model/{modelId}/{operation}`.
pub async fn bedrock_operation(
    State(state): State<ProxyState>,
    Path((model_id, operation)): Path<(String, String)>,
    request: Request,
) -> Response {
    match operation_from_path(&operation) {
        Some(operation) => {
            handle_call(state, request, operation, ModelSource::Path(model_id)).await
        }
        None => {
            ApiError::unknown_route(Method::POST.as_str(), request.uri().path()).into_response()
        }
    }
}
