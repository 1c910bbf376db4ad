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

/// The path an API Gateway stage prefixes, without it: `/live/bedrock` on stage `live` is
/// `/bedrock`. `None` when the path does not start with the stage.
pub fn path_without_stage<'a>(path: &'a str, stage: &str) -> Option<&'a str> {
    if stage.is_empty() || stage == "$default" {
        return None;
    }
    let rest = path.strip_prefix('/')?.strip_prefix(stage)?;
    if rest.is_empty() {
        Some("/")
    } else if rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
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

#[cfg(test)]
mod stage_tests {
    use super::path_without_stage;

    #[test]
    fn a_stage_prefix_is_removed_only_when_it_is_a_whole_segment() {
        assert_eq!(
            path_without_stage("/live/bedrock", "live"),
            Some("/bedrock")
        );
        assert_eq!(
            path_without_stage("/prod/model/m/invoke", "prod"),
            Some("/model/m/invoke")
        );
        assert_eq!(path_without_stage("/live", "live"), Some("/"));
        assert_eq!(path_without_stage("/lively/bedrock", "live"), None);
        assert_eq!(path_without_stage("/bedrock", "live"), None);
        assert_eq!(path_without_stage("/bedrock", "$default"), None);
    }
}
