//! What the console opens with: who is signed in (`GET /session`), the business's key
//! figures (`GET /overview`) and usage over time for the charts (`GET /series`).

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use control::margins::MarginSources;
use control::overview::overview;
use control::series::{SeriesRange, series};
use control::usage::Granularity;
use serde::Deserialize;

use crate::AdminState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::json::{ok, query};
use crate::reports::date_field;

/// `GET /session`: the credential's name and role, so that a console shows a viewer no
/// write controls (the API refuses a viewer's writes whatever the page shows).
pub async fn session(Extension(caller): Extension<Caller>) -> Response {
    ok(&serde_json::json!({
        "name": caller.name,
        "role": caller.role,
        "may_write": caller.role.may_write(),
    }))
}

/// A route that takes no query parameters: any is refused by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// `GET /overview`: today's and the month's figures across customers, and each active
/// customer's month, as of now (UTC). Cost and margin need `--model-prices`; without it
/// they are `null`, never zero.
pub async fn figures(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let _: NoParams = query(raw.as_deref())?;
    let sources = MarginSources {
        registry: state.ports.registry.as_ref(),
        plans: state.ports.plans.as_ref(),
        counters: state.ports.counters.as_ref(),
        watermarks: state.ports.watermarks.as_ref(),
    };
    let figures = overview(&sources, state.model_prices.as_deref(), chrono::Utc::now()).await?;
    Ok(ok(&figures))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesParams {
    granularity: Option<Granularity>,
    hours: Option<u32>,
    start_date: Option<String>,
    end_date: Option<String>,
    customer_id: Option<String>,
}

/// Days a daily series covers when no range is given: the 30 ending today.
const DEFAULT_DAYS: u64 = 30;

/// `GET /series`: per hour (`hours`, default 24, ending with the current hour) or per day
/// (`start_date`..`end_date`, default the 30 days ending today), across customers or for
/// `customer_id`.
pub async fn usage_series(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params: SeriesParams = query(raw.as_deref())?;
    let customer_id = params
        .customer_id
        .as_deref()
        .map(ids::customer_id)
        .transpose()?;
    let now = chrono::Utc::now();
    let range = match params.granularity.unwrap_or_default() {
        Granularity::Hour => {
            if params.start_date.is_some() || params.end_date.is_some() {
                return Err(ApiError::validation(
                    "start_date",
                    "an hourly series covers the hours ending now: give hours=N, not dates",
                ));
            }
            SeriesRange::Hours(params.hours.unwrap_or(24))
        }
        Granularity::Day => {
            if params.hours.is_some() {
                return Err(ApiError::validation(
                    "hours",
                    "hours=N is for granularity=hour; a daily series takes start_date and end_date",
                ));
            }
            let today = now.date_naive();
            let end = date_field("end_date", params.end_date.as_deref())?.unwrap_or(today);
            let start = date_field("start_date", params.start_date.as_deref())?
                .unwrap_or_else(|| end - chrono::Days::new(DEFAULT_DAYS - 1));
            SeriesRange::Days { start, end }
        }
    };
    let series = series(
        state.ports.registry.as_ref(),
        state.ports.counters.as_ref(),
        state.model_prices.as_deref(),
        customer_id,
        &range,
        now,
    )
    .await?;
    Ok(ok(&series))
}
