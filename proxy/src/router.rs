//! The proxy's routes. Every route authenticates (a route layer), except those on
//! [`OPEN_ROUTES`]: `GET /health` and the 404 of an unknown Bedrock operation. A request
//! no route matches answers 404, and a known path with another method too, without
//! asking for a token.

use crate::client_apis::{anthropic_routes, openai_routes};
use crate::upstream::model_runtime::operation_path;
use axum::Router;
use axum::http::{Method, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, extract::Path, extract::Request, extract::State};

use crate::call::Authenticated;
pub use crate::call::authenticate::OPEN_ROUTES;
use crate::call::authenticate::authenticate_customer;
use crate::error_response::ApiError;
use crate::native_routes::{BEDROCK_OPERATIONS, bedrock_operation, unknown_operation};
use crate::self_service::own_usage;
use crate::spec_route::invoke_spec_route;
use crate::state::ProxyState;

async fn health() -> Response {
    ([("content-type", "application/json")], r#"{"status":"ok"}"#).into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    ApiError::unknown_route(method.as_str(), uri.path()).into_response()
}

/// Bedrock's four runtime routes under `prefix` (`""` or `"/prod"`), and the open
/// answer to any other operation.
fn bedrock_routes(prefix: &str) -> Router<ProxyState> {
    let mut router = Router::new().route(
        &format!("{prefix}/model/{{model_id}}/{{operation}}"),
        post(unknown_operation),
    );
    for operation in BEDROCK_OPERATIONS {
        router = router.route(
            &format!("{prefix}/model/{{model_id}}/{}", operation_path(operation)),
            post(
                move |state: State<ProxyState>,
                      call: Extension<Authenticated>,
                      model_id: Path<String>,
                      request: Request| {
                    bedrock_operation(operation, state, call, model_id, request)
                },
            ),
        );
    }
    router
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
///
/// Every route declared here is authenticated unless it is on [`OPEN_ROUTES`]: declare a
/// new route before the layer. Routes merged into the returned router later (the admin
/// API and console, see [`crate::server::start_proxy_with`]) are outside the customers' layer
/// and authenticate on their own.
pub fn build_router(state: ProxyState) -> Router {
    Router::new()
        .route("/prod/bedrock", post(invoke_spec_route))
        .route("/bedrock", post(invoke_spec_route))
        .merge(bedrock_routes(""))
        .merge(bedrock_routes("/prod"))
        .route("/prod/usage", get(own_usage))
        .route("/usage", get(own_usage))
        .route("/health", get(health))
        .route_layer(from_fn_with_state(state.clone(), authenticate_customer))
        .merge(anthropic_routes(&state, ""))
        .merge(anthropic_routes(&state, "/prod"))
        .merge(openai_routes(&state, ""))
        .merge(openai_routes(&state, "/prod"))
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
