//! Bedrock's own runtime routes, so the official SDKs work against the proxy:
//! `POST /model/{modelId}/{operation}` for `invoke`, `invoke-with-response-stream`,
//! `converse` and `converse-stream`. The SDKs percent-encode the model id (`:` as `%3A`, an
//! ARN's `/` as `%2F`); the router matches the raw path segment and decodes it.
//!
//! Each known operation is its own route, so it is authenticated like every route; any
//! other operation is answered 404 by [`unknown_operation`], an open route, as before a
//! token is asked for.

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use schemas::Operation;

use crate::call::{Authenticated, ModelSource, handle_call};
use crate::error_response::ApiError;
use crate::state::ProxyState;

/// Bedrock's operations, as their path segments name them.
pub const BEDROCK_OPERATIONS: [Operation; 4] = [
    Operation::Invoke,
    Operation::InvokeStream,
    Operation::Converse,
    Operation::ConverseStream,
];

/// `POST /model/{modelId}/{operation}` for one known operation.
pub async fn bedrock_operation(
    operation: Operation,
    State(state): State<ProxyState>,
    Extension(call): Extension<Authenticated>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    handle_call(state, call, request, operation, ModelSource::Path(model_id)).await
}

/// `POST /model/{modelId}/{operation}` for an operation Bedrock does not have: 404, naming
/// the path without the `/prod` stage.
pub async fn unknown_operation(request: Request) -> Response {
    let path = request.uri().path();
    let path = path.strip_prefix("/prod").unwrap_or(path);
    ApiError::unknown_route(Method::POST.as_str(), path).into_response()
}
