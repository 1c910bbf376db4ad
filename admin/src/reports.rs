//! Read-only routes over usage: a customer's usage and invoice, the summary across
//! customers, alerts and the audit trail, as `tollgate usage`, `invoice`, `alerts` and
//! `audit`.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use control::alerts::recent_alerts;
use control::audit::audit_page;
use control::inputs::parse_date;
use control::invoices::{InvoiceRequest, InvoiceScope, invoice_period};
use control::margins::{MarginSources, daily_costs, margin_rows};
use control::summary::summary;
use control::usage::{Granularity, UsageQuery, customer_usage};
use serde::Deserialize;

use crate::AdminState;
use crate::customers::duration_field;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::json::{ok, query};

pub(crate) fn date_field(field: &str, text: Option<&str>) -> ApiResult<Option<NaiveDate>> {
    text.map(|text| parse_date(text).map_err(|message| ApiError::validation(field, message)))
        .transpose()
}

/// A range from optional `start_date` and `end_date` fields: the month to date by default,
/// as every usage query of the control layer.
fn month_to_date(start: Option<&str>, end: Option<&str>) -> ApiResult<(NaiveDate, NaiveDate)> {
    Ok(control::dates::month_to_date_unless_given(
        date_field("start_date", start)?,
        date_field("end_date", end)?,
        chrono::Utc::now().date_naive(),
    ))
}

/// Bedrock's prices, or 409 for a route (`what`) that needs them.
fn price_table<'a>(
    state: &'a AdminState,
    what: &str,
) -> ApiResult<&'a schemas::model_prices::ModelPriceTable> {
    state.model_prices.as_deref().ok_or_else(|| {
        ApiError::not_configured(format!(
            "{what} need Bedrock's prices: start the server with --model-prices FILE (see docs/model-prices.toml)"
        ))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    start_date: Option<String>,
    end_date: Option<String>,
    granularity: Option<Granularity>,
}

/// `GET /customers/{id}/usage`.
pub async fn usage(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let params: UsageParams = query(raw.as_deref())?;
    let usage = customer_usage(
        state.ports.registry.as_ref(),
        state.ports.counters.as_ref(),
        state.ports.watermarks.as_ref(),
        &UsageQuery {
            customer_id: id.to_owned(),
            start_date: date_field("start_date", params.start_date.as_deref())?,
            end_date: date_field("end_date", params.end_date.as_deref())?,
            granularity: params.granularity.unwrap_or_default(),
        },
    )
    .await?;
    Ok(ok(&usage))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryParams {
    start_date: Option<String>,
    end_date: Option<String>,
}

/// `GET /summary`.
pub async fn totals(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params: SummaryParams = query(raw.as_deref())?;
    let totals = summary(
        state.ports.registry.as_ref(),
        state.ports.counters.as_ref(),
        state.ports.watermarks.as_ref(),
        date_field("start_date", params.start_date.as_deref())?,
        date_field("end_date", params.end_date.as_deref())?,
    )
    .await?;
    Ok(ok(&totals))
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum InvoiceFormat {
    #[default]
    Json,
    Html,
    Csv,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceParams {
    format: Option<InvoiceFormat>,
}

/// `GET /customers/{id}/invoices/{YYYY-MM}`.
pub async fn invoice(
    State(state): State<AdminState>,
    Path((id, period)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let params: InvoiceParams = query(raw.as_deref())?;
    let period = metering::invoice::parse_period(&period).ok_or_else(|| {
        ApiError::validation(
            "period",
            format!("invalid period {period:?}: use YYYY-MM, for example 2026-11"),
        )
    })?;
    let run = invoice_period(
        state.ports.registry.as_ref(),
        state.ports.plans.as_ref(),
        state.ports.counters.as_ref(),
        state.ports.watermarks.as_ref(),
        &InvoiceRequest {
            scope: InvoiceScope::Customer(id.to_owned()),
            period,
            what_if_plan: None,
            model_prices: state.model_prices.as_deref().cloned(),
            seller: state.seller.as_deref().cloned(),
        },
    )
    .await?;
    let invoice = run
        .invoices
        .first()
        .ok_or_else(|| ApiError::internal("no invoice was priced"))?;
    Ok(match params.format.unwrap_or_default() {
        InvoiceFormat::Json => ok(invoice),
        InvoiceFormat::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            metering::invoice::to_html(invoice),
        )
            .into_response(),
        InvoiceFormat::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            metering::invoice::to_csv(std::slice::from_ref(invoice)),
        )
            .into_response(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertParams {
    since: Option<String>,
}

/// `GET /alerts`: as `tollgate alerts`, `since` a duration (default `7d`).
pub async fn alerts(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params: AlertParams = query(raw.as_deref())?;
    let since =
        duration_field("since", Some(params.since.as_deref().unwrap_or("7d")))?.unwrap_or_default();
    let alerts = recent_alerts(state.ports.alerts.as_ref(), since, chrono::Utc::now()).await?;
    Ok(ok(&serde_json::json!({ "alerts": alerts })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    customer_id: Option<String>,
    limit: Option<usize>,
    next_token: Option<String>,
}

/// `GET /audit`: as `tollgate audit`, a page at a time.
pub async fn audit(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params: AuditParams = query(raw.as_deref())?;
    let customer_id = params
        .customer_id
        .as_deref()
        .map(ids::customer_id)
        .transpose()?;
    let page = audit_page(
        state.ports.registry.as_ref(),
        customer_id,
        params.limit,
        params.next_token.as_deref(),
    )
    .await?;
    Ok(ok(&page))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarginParams {
    start_date: Option<String>,
    end_date: Option<String>,
    customer_id: Option<String>,
}

/// `GET /margins`: revenue under each plan, Bedrock's cost and the gross margin per
/// customer and month (the report's operator view), when `serve` has `--model-prices`.
pub async fn margins(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params: MarginParams = query(raw.as_deref())?;
    let table = price_table(&state, "margins")?;
    let customer_id = params
        .customer_id
        .as_deref()
        .map(ids::customer_id)
        .transpose()?;
    let (start, end) = month_to_date(params.start_date.as_deref(), params.end_date.as_deref())?;
    let sources = MarginSources {
        registry: state.ports.registry.as_ref(),
        plans: state.ports.plans.as_ref(),
        counters: state.ports.counters.as_ref(),
        watermarks: state.ports.watermarks.as_ref(),
    };
    let rows = margin_rows(&sources, table, start, end, customer_id).await?;
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "customer": row.customer,
                "month": row.month,
                "revenue": row.revenue.as_ref().map(|(amount, _)| amount.to_string()),
                "revenue_currency": row.revenue.as_ref().map(|(_, currency)| currency),
                "cost_of_goods": row.cost,
            })
        })
        .collect();
    Ok(ok(
        &serde_json::json!({"start_date": start, "end_date": end, "margins": rows}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CostParams {
    start_date: Option<String>,
    end_date: Option<String>,
}

/// `GET /customers/{id}/costs`: Bedrock's cost of the customer's usage per day and model
/// (default the month to date), when `serve` has `--model-prices`.
pub async fn costs(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let params: CostParams = query(raw.as_deref())?;
    let table = price_table(&state, "costs")?;
    let (start, end) = month_to_date(params.start_date.as_deref(), params.end_date.as_deref())?;
    let days = daily_costs(
        state.ports.registry.as_ref(),
        state.ports.counters.as_ref(),
        table,
        id,
        start,
        end,
    )
    .await?;
    Ok(ok(&serde_json::json!({
        "customer_id": id,
        "start_date": start,
        "end_date": end,
        "days": days,
    })))
}
