//! The routes nearly every call takes, served without going through the router: Bedrock's
//! runtime operations (`POST [/prod]/model/{modelId}/{operation}`) and the spec's endpoint
//! (`POST [/prod]/bedrock`). Every other request goes to the router.
//!
//! The router costs a call about two dozen allocations and as many moves of the call's
//! future: route matching, the path parameters and matched route put in the request's
//! extensions, and each `from_fn` layer (the header cap, authentication) cloning the boxed
//! service under it and boxing the future of the rest. Here the same stages run in the same
//! order, through the same functions: the header cap ([`header_cap::refusal`]), then
//! authentication ([`authenticate_request`]), then the call ([`handle_call`]). So a request
//! gets the same answer on either path; `hot_routes_tests` sends the same requests both
//! ways and compares the answers.
//!
//! What this matches is a subset of the router's routes, decided by [`hot_route`]: a path
//! the router would answer otherwise (a model id that is not UTF-8 once decoded, an
//! operation Bedrock does not have, a trailing slash) is left to the router.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::body::HttpBody;
use axum::response::Response;
use futures::future::{BoxFuture, Either, FutureExt};
use http::header::CONTENT_LENGTH;
use http::{Method, Request};
use schemas::Operation;

use crate::call::authenticate::authenticate_request;
use crate::call::response_headers::decimal_values;
use crate::call::{ModelSource, handle_call};
use crate::header_cap;
use crate::state::ProxyState;
use crate::upstream::model_runtime::operation_from_path;

/// A request on a hot route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HotRoute {
    /// `POST [/prod]/bedrock`: the model id is in the body.
    Spec,
    /// `POST [/prod]/model/{modelId}/{operation}` for one of Bedrock's operations; the
    /// model id percent-decoded, as the router's path parameter is.
    Bedrock {
        operation: Operation,
        model_id: String,
    },
}

/// The hot route a request takes; `None` leaves it to the router.
pub fn hot_route(method: &Method, path: &str) -> Option<HotRoute> {
    if method != Method::POST {
        return None;
    }
    // Every hot route is also served under the API Gateway stage `/prod`.
    let path = match path.strip_prefix("/prod") {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    };
    if path == "/bedrock" {
        return Some(HotRoute::Spec);
    }
    let (segment, operation) = path.strip_prefix("/model/")?.split_once('/')?;
    if segment.is_empty() {
        return None;
    }
    let operation = operation_from_path(operation)?;
    let model_id = percent_encoding::percent_decode(segment.as_bytes())
        .decode_utf8()
        .ok()?
        .into_owned();
    Some(HotRoute::Bedrock {
        operation,
        model_id,
    })
}

/// The proxy's service: hot routes served here, everything else by the router.
#[derive(Clone)]
pub struct Routes {
    router: axum::Router,
    /// `None` sends every request to the router (the router alone, for comparisons).
    state: Option<ProxyState>,
}

impl Routes {
    /// Serves the hot routes over `state`, and the rest with `router` (which carries the
    /// header cap of `state`'s configuration itself, see [`header_cap::with_header_cap`]).
    pub fn new(router: axum::Router, state: ProxyState) -> Self {
        Self {
            router,
            state: Some(state),
        }
    }

    /// Every request through `router` (tests compare the two paths with it).
    pub fn router_only(router: axum::Router) -> Self {
        Self {
            router,
            state: None,
        }
    }
}

/// A hot route's answer, with its `content-length` set as the router sets it.
async fn serve_hot(state: ProxyState, route: HotRoute, request: Request<Body>) -> Response {
    let mut response = answer_hot(state, route, request).await;
    if !response.headers().contains_key(CONTENT_LENGTH)
        && let Some(size) = response.body().size_hint().exact()
    {
        let [length] = decimal_values([size]);
        response.headers_mut().insert(CONTENT_LENGTH, length);
    }
    response
}

/// The stages of a call on a hot route, in the router's order.
async fn answer_hot(state: ProxyState, route: HotRoute, request: Request<Body>) -> Response {
    if let Some(refused) = header_cap::refusal(&request, state.config.max_header_bytes) {
        return refused;
    }
    let call = match authenticate_request(&state, request.headers()).await {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    let (operation, source) = match route {
        HotRoute::Spec => (Operation::Invoke, ModelSource::SpecBody),
        HotRoute::Bedrock {
            operation,
            model_id,
        } => (operation, ModelSource::Path(model_id)),
    };
    handle_call(state, call, request, operation, source).await
}

type RouterFuture = <axum::Router as tower::Service<Request<Body>>>::Future;

impl<B> tower::Service<Request<B>> for Routes
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<BoxFuture<'static, Result<Response, Infallible>>, RouterFuture>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The router is always ready, and so is a hot route.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request = request.map(Body::new);
        if let Some(state) = &self.state
            && let Some(route) = hot_route(request.method(), request.uri().path())
        {
            let served = serve_hot(state.clone(), route, request);
            return Either::Left(served.map(Ok).boxed());
        }
        Either::Right(tower::Service::call(&mut self.router, request))
    }
}
