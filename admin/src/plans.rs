//! `/admin/api/v1/plans` and a customer's plan: as `tollgate plan list`, `plan add` and
//! `assign-plan`.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use control::plans::{
    PlanChoice, assign_plan, list_plans, parse_plan, parse_plan_json, store_plan,
};
use serde::Deserialize;

use crate::AdminState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::json::{answer, body_bytes, json_body, media_type, ok};

fn required_date(field: &str, text: &str) -> ApiResult<chrono::NaiveDate> {
    control::inputs::parse_date(text).map_err(|message| ApiError::validation(field, message))
}

/// The largest plan body.
pub const MAX_PLAN_BYTES: usize = 256 * 1024;

/// `GET /plans`.
pub async fn list(State(state): State<AdminState>) -> ApiResult<Response> {
    let plans = list_plans(state.ports.plans.as_ref()).await?;
    Ok(ok(&serde_json::json!({ "plans": plans })))
}

/// `POST /plans`: a plan as TOML (`application/toml`, the file `plan add` reads) or JSON.
pub async fn add(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let kind = media_type(&headers);
    let bytes = body_bytes(body, MAX_PLAN_BYTES).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::validation("body", "the plan is not UTF-8 text"))?;
    let plan = match kind.as_deref() {
        Some("application/toml" | "text/toml") => parse_plan(text, "the plan")?,
        Some("application/json") => parse_plan_json(text, "the plan")?,
        _ => {
            return Err(ApiError::unsupported_media_type(
                "application/toml (the plan file) or application/json",
            ));
        }
    };
    store_plan(state.ports.plans.as_ref(), &caller.actor(), &plan).await?;
    Ok(answer(StatusCode::CREATED, &plan))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    plan_id: String,
    plan_version: Option<u32>,
    effective_from: String,
}

/// `PUT /customers/{id}/plan`: as `assign-plan`.
pub async fn assign(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let asked: AssignBody = json_body(&headers, body).await?;
    let assignment = assign_plan(
        state.ports.registry.as_ref(),
        state.ports.plans.as_ref(),
        &caller.actor(),
        &PlanChoice {
            customer_id: id.to_owned(),
            plan_id: asked.plan_id,
            plan_version: asked.plan_version,
            effective_from: required_date("effective_from", &asked.effective_from)?,
        },
    )
    .await?;
    Ok(ok(&assignment))
}
