//! The proxy's routes. Every route authenticates, except `GET /health`.

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error_response::ApiError;
use crate::native_routes;
use crate::spec_route::invoke_spec_route;
use crate::state::ProxyState;

async fn health() -> Response {
    ([("content-type", "application/json")], r#"{"status":"ok"}"#).into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    ApiError::unknown_route(method.as_str(), uri.path()).into_response()
}

/// Bedrock's four runtime routes.
fn bedrock_routes() -> Router<ProxyState> {
    Router::new().route(
        "/model/{model_id}/{operation}",
        post(native_routes::bedrock_operation),
    )
}

/// Builds the router over shared state. Bedrock's routes are also served under `/prod`,
/// the API Gateway stage, so an SDK pointed at `https://…/prod` works as well.
pub fn build_router(state: ProxyState) -> Router {
    Router::new()
        .route("/prod/bedrock", post(invoke_spec_route))
        .route("/bedrock", post(invoke_spec_route))
        .merge(bedrock_routes())
        .nest("/prod", bedrock_routes())
        .route("/health", get(health))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(state)
}
