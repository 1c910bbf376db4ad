//! The authentication stage, as a router layer: every matched route authenticates the
//! bearer token before its handler runs, except the routes on [`OPEN_ROUTES`]. A route
//! added to the proxy's router is therefore authenticated unless it is listed there.
//!
//! The layer is a route layer: a request no route matches (a 404) or a known path with
//! another method never asks for a token. It mints the call's [`CallStart`], notes the
//! key's use, and hands the handler an [`Authenticated`] call in the request extensions.
//! A refusal carries the request id, like every answer of the proxy.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::call::response_headers::with_request_id;
use crate::call::start::CallStart;
use crate::state::ProxyState;

/// Routes answered without a token, by method and route pattern: the health check, and
/// the answer to a Bedrock operation the proxy does not know (a 404, as for any unknown
/// route).
pub const OPEN_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/health"),
    (Method::POST, "/model/{model_id}/{operation}"),
    (Method::POST, "/prod/model/{model_id}/{operation}"),
];

/// An authenticated call, as the layer hands it to the route's handler.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub caller: Arc<Caller>,
    pub start: CallStart,
}

/// Whether a request's matched route is on [`OPEN_ROUTES`].
pub fn is_open_route(method: &Method, matched_path: Option<&str>) -> bool {
    matched_path.is_some_and(|path| {
        OPEN_ROUTES
            .iter()
            .any(|(open_method, open_path)| open_method == method && *open_path == path)
    })
}

/// The layer's function (`axum::middleware::from_fn_with_state`).
pub async fn authenticate_customer(
    State(state): State<ProxyState>,
    mut request: Request,
    next: Next,
) -> Response {
    let matched_path = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    if is_open_route(request.method(), matched_path) {
        return next.run(request).await;
    }
    match authenticate_request(&state, request.headers()).await {
        Ok(call) => {
            request.extensions_mut().insert(call);
            next.run(request).await
        }
        Err(refusal) => refusal,
    }
}

/// Authenticates a request to a route that needs a token: mints the call's
/// [`CallStart`], checks the token and notes the key's use. The refusal carries the
/// request id. The layer above and the hot routes (`crate::hot_routes`) both use it.
pub async fn authenticate_request(
    state: &ProxyState,
    headers: &HeaderMap,
) -> Result<Authenticated, Response> {
    let start = CallStart::now();
    match state
        .auth
        .authenticate(&state.registry, headers, start.accepted_at)
        .await
    {
        Ok(caller) => {
            state.key_uses.note(&caller.key, start.accepted_at);
            Ok(Authenticated { caller, start })
        }
        Err(error) => {
            tracing::info!(status = error.status.as_u16(), reason = %error.message, "request refused before authentication completed");
            Err(with_request_id(error.into_response(), &start.request_id))
        }
    }
}
