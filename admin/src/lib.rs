//! Tollgate's admin API, `/admin/api/v1/…`: the operator's use cases over HTTP for signup
//! and billing systems. A thin adapter: each handler reads its input, calls one function of
//! the control layer (the CLI's own), and renders the result as JSON. Validation, errors
//! and audit entries are therefore the CLI's; the audit actor is `admin-api:<credential>`.
//!
//! Every route but the OpenAPI document needs an admin credential ([`auth`]). The routes
//! are registered through [`Routes`], which keeps the table the OpenAPI document is checked
//! against ([`openapi`]).

pub mod auth;
pub mod console;
pub mod customers;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod json;
pub mod keys;
pub mod limits_body;
pub mod openapi;
pub mod overview;
pub mod plans;
pub mod quarantine;
pub mod reports;

use axum::Router;
use axum::extract::{OriginalUri, Request};
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, any, get, on};
use schemas::TokenHash;
use store::backend::Ports;

use crate::error::ApiError;

/// Where every route of this API lives.
pub const PREFIX: &str = "/admin/api/v1";

/// What the handlers share: the ports and the configured credential
/// (`--admin-token-sha256`), if any.
#[derive(Clone)]
pub struct AdminState {
    pub ports: Ports,
    pub configured: Option<TokenHash>,
    /// Bedrock's prices, when the operator configured them (`--model-prices`).
    pub model_prices: Option<std::sync::Arc<schemas::model_prices::ModelPriceTable>>,
    /// The operator as the seller, on invoices (`--seller`).
    pub seller: Option<std::sync::Arc<schemas::seller::SellerProfile>>,
}

/// The routes as registered: method and path (with `{parameters}`), in order. The
/// OpenAPI document must list exactly these.
#[derive(Default)]
pub struct Routes {
    table: Vec<(Method, String)>,
    paths: Vec<(String, MethodRouter<AdminState>)>,
}

impl Routes {
    fn add(mut self, method: Method, path: &str, handler: MethodRouter<AdminState>) -> Self {
        let full = format!("{PREFIX}{path}");
        self.table.push((method, full.clone()));
        match self.paths.iter_mut().find(|(known, _)| *known == full) {
            Some((_, router)) => *router = std::mem::take(router).merge(handler),
            None => self.paths.push((full, handler)),
        }
        self
    }

    /// The (method, path) pairs registered.
    pub fn table(&self) -> &[(Method, String)] {
        &self.table
    }

    fn into_router(self) -> Router<AdminState> {
        self.paths
            .into_iter()
            .fold(Router::new(), |router, (path, methods)| {
                router.route(&path, methods.fallback(method_not_allowed))
            })
    }
}

fn filter(method: &Method) -> MethodFilter {
    MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET)
}

macro_rules! route {
    ($routes:expr, $method:ident, $path:expr, $handler:expr) => {
        $routes.add(
            Method::$method,
            $path,
            on(filter(&Method::$method), $handler),
        )
    };
}

/// Every authenticated route of the API.
pub fn routes() -> Routes {
    let routes = Routes::default();
    let routes = route!(routes, GET, "/customers", customers::list);
    let routes = route!(routes, POST, "/customers", customers::create);
    let routes = route!(routes, GET, "/customers/{id}", customers::show);
    let routes = route!(routes, PATCH, "/customers/{id}", customers::patch);
    let routes = route!(routes, DELETE, "/customers/{id}", customers::delete);
    let routes = route!(routes, POST, "/customers/{id}/disable", customers::disable);
    let routes = route!(routes, POST, "/customers/{id}/enable", customers::enable);
    let routes = route!(
        routes,
        PATCH,
        "/customers/{id}/limits",
        customers::patch_limits
    );
    let routes = route!(routes, GET, "/customers/{id}/keys", keys::list);
    let routes = route!(routes, POST, "/customers/{id}/keys", keys::rotate);
    let routes = route!(
        routes,
        DELETE,
        "/customers/{id}/keys/{key_id}",
        keys::revoke
    );
    let routes = route!(routes, GET, "/customers/{id}/usage", reports::usage);
    let routes = route!(routes, PUT, "/customers/{id}/plan", plans::assign);
    let routes = route!(
        routes,
        GET,
        "/customers/{id}/invoices/{period}",
        reports::invoice
    );
    let routes = route!(routes, GET, "/plans", plans::list);
    let routes = route!(routes, POST, "/plans", plans::add);
    let routes = route!(routes, GET, "/alerts", reports::alerts);
    let routes = route!(routes, GET, "/audit", reports::audit);
    let routes = route!(routes, GET, "/margins", reports::margins);
    let routes = route!(routes, GET, "/customers/{id}/costs", reports::costs);
    let routes = route!(routes, GET, "/summary", reports::totals);
    let routes = route!(routes, GET, "/session", overview::session);
    let routes = route!(routes, GET, "/overview", overview::figures);
    let routes = route!(routes, GET, "/quarantine", quarantine::list);
    let routes = route!(routes, POST, "/quarantine/requeue", quarantine::requeue);
    route!(routes, GET, "/series", overview::usage_series)
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::method_not_allowed(method.as_str(), uri.path()).into_response()
}

async fn unknown_route(request: Request) -> Response {
    ApiError::not_found(format!(
        "{} {} is not a route of the admin API; GET {PREFIX}/openapi.json lists them",
        request.method(),
        request.uri().path()
    ))
    .into_response()
}

/// The admin API's router, with its state: merge it into the proxy's router.
pub fn router(state: AdminState) -> Router {
    // Layers run outside in: authentication, then idempotency, then the handler.
    let authenticated = routes()
        .into_router()
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotent))
        .route_layer(from_fn_with_state(state.clone(), auth::authorize));
    Router::new()
        .route(&format!("{PREFIX}/openapi.json"), get(openapi::document))
        .merge(authenticated)
        .route(&format!("{PREFIX}/{{*rest}}"), any(unknown_route))
        .route(PREFIX, any(unknown_route))
        .with_state(state)
}
