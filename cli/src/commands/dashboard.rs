//! The operator's live dashboard, `/admin/` on `tollgate serve`: the
//! report's views over the last 30 days (`control::reports::dashboard_report`), refreshed
//! every 10 seconds while traffic flows. It takes the admin credential (Bearer, or Basic
//! with any user name), never a customer token: a customer token gets 403, anything else
//! 401.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use control::admin_tokens::{Presented, identify};
use schemas::TokenHash;
use store::backend::Ports;

/// Seconds between refreshes of the dashboard page.
pub const REFRESH_SECONDS: u32 = 10;

#[derive(Clone)]
struct AdminState {
    ports: Ports,
    configured: Option<TokenHash>,
}

/// The presented credential: a Bearer token, or the password of Basic authentication.
fn presented(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

fn refused(status: StatusCode, message: &str) -> Response {
    let mut response = (status, message.to_owned()).into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(value) = "Basic realm=\"Tollgate operator dashboard\"".parse()
    {
        response.headers_mut().insert("www-authenticate", value);
    }
    response
}

/// Any live admin credential (admin or viewer: the dashboard only reads), or the
/// configured one; a customer token gets 403, anything else 401.
async fn authorize(state: &AdminState, headers: &HeaderMap) -> Result<(), Response> {
    let needs = "the operator dashboard needs an admin credential";
    let Some(token) = presented(headers) else {
        return Err(refused(StatusCode::UNAUTHORIZED, needs));
    };
    let who = identify(
        state.ports.admin_credentials.as_ref(),
        state.ports.registry.as_ref(),
        state.configured.as_ref(),
        &token,
    )
    .await;
    match who {
        Ok(Presented::Admin { .. }) => Ok(()),
        Ok(Presented::CustomerToken) => Err(refused(
            StatusCode::FORBIDDEN,
            "customer tokens cannot open the operator dashboard",
        )),
        Ok(_) => Err(refused(StatusCode::UNAUTHORIZED, needs)),
        Err(error) => {
            tracing::error!(error = %error, "dashboard could not check the credential");
            Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the credential cannot be checked right now; retry",
            ))
        }
    }
}

async fn current_report(state: &AdminState) -> control::Result<metering::report::Report> {
    control::reports::dashboard_report(
        state.ports.registry.as_ref(),
        state.ports.counters.as_ref(),
        chrono::Utc::now().date_naive(),
    )
    .await
}

async fn dashboard(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&state, &headers).await {
        return refusal;
    }
    match current_report(&state).await {
        Ok(report) => {
            let html = metering::report::to_html(&report).replacen(
                "<meta charset=\"utf-8\">",
                &format!(
                    "<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">"
                ),
                1,
            );
            ([("content-type", "text/html; charset=utf-8")], html).into_response()
        }
        Err(error) => {
            tracing::error!(error = %error, "dashboard could not read usage");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "usage cannot be read right now; retry",
            )
                .into_response()
        }
    }
}

async fn report_json(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&state, &headers).await {
        return refusal;
    }
    match current_report(&state).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "dashboard could not read usage");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "usage cannot be read right now; retry",
            )
                .into_response()
        }
    }
}

/// What the operator's routes are configured with: the admin credential given by its hash,
/// and Bedrock's prices.
#[derive(Debug, Clone, Default)]
pub struct OperatorSettings {
    pub configured: Option<TokenHash>,
    pub model_prices: Option<std::sync::Arc<schemas::model_prices::ModelPriceTable>>,
    pub seller: Option<std::sync::Arc<schemas::seller::SellerProfile>>,
}

impl OperatorSettings {
    /// The settings the flags give; the price table is read and checked now.
    pub fn from_args(args: &crate::args::AdminCredentialArgs) -> anyhow::Result<Self> {
        Ok(Self {
            configured: args.configured(),
            model_prices: args
                .model_prices
                .as_deref()
                .map(super::plan::load_model_prices)
                .transpose()?
                .map(std::sync::Arc::new),
            seller: args
                .seller
                .as_deref()
                .map(super::plan::load_seller_profile)
                .transpose()?
                .map(std::sync::Arc::new),
        })
    }
}

/// The dashboard's routes and the admin API's, for [`proxy::server::start_proxy_with`].
pub fn admin_router(ports: Ports, operator: &OperatorSettings) -> Router {
    let configured = operator.configured.clone();
    let api = admin::router(admin::AdminState {
        ports: ports.clone(),
        configured: configured.clone(),
        model_prices: operator.model_prices.clone(),
        seller: operator.seller.clone(),
    });
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/", get(dashboard))
        .route("/admin/report.json", get(report_json))
        .with_state(AdminState { ports, configured })
        .merge(api)
}
