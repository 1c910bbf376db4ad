//! `POST /prod/bedrock` and `POST /bedrock`: the spec's endpoint. The body is the model's
//! native body plus `modelId`, which is taken out before forwarding.

use axum::Extension;
use axum::extract::{Request, State};
use axum::response::Response;
use schemas::Operation;

use crate::call::{Authenticated, ModelSource, handle_call};
use crate::state::ProxyState;

/// The handler of the spec's endpoint: the model id comes from the body.
pub async fn invoke_spec_route(
    State(state): State<ProxyState>,
    Extension(call): Extension<Authenticated>,
    request: Request,
) -> Response {
    handle_call(
        state,
        call,
        request,
        Operation::Invoke,
        ModelSource::SpecBody,
    )
    .await
}
