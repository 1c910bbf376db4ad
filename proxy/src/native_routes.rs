//! Bedrock's own runtime routes, so the official SDKs work against the proxy:
//! `POST /model/{modelId}/invoke`, `/invoke-with-response-stream`, `/converse` and
//! `/converse-stream`. The SDKs percent-encode the model id (`:` as `%3A`, an ARN's `/` as
//! `%2F`); the router matches the raw path segment and decodes it.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use schemas::Operation;

use crate::call::{ModelSource, handle_call};
use crate::state::ProxyState;

/// `POST /model/{modelId}/invoke`.
pub async fn invoke(
    State(state): State<ProxyState>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    handle_call(
        state,
        request,
        Operation::Invoke,
        ModelSource::Path(model_id),
    )
    .await
}

/// `POST /model/{modelId}/invoke-with-response-stream`.
pub async fn invoke_stream(
    State(state): State<ProxyState>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    handle_call(
        state,
        request,
        Operation::InvokeStream,
        ModelSource::Path(model_id),
    )
    .await
}

/// `POST /model/{modelId}/converse`.
pub async fn converse(
    State(state): State<ProxyState>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    handle_call(
        state,
        request,
        Operation::Converse,
        ModelSource::Path(model_id),
    )
    .await
}

/// `POST /model/{modelId}/converse-stream`.
pub async fn converse_stream(
    State(state): State<ProxyState>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    handle_call(
        state,
        request,
        Operation::ConverseStream,
        ModelSource::Path(model_id),
    )
    .await
}
