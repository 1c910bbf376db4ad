//! `/admin/api/v1/customers…`: list, create, show, status changes and limits. Each handler
//! reads its input, calls one control-layer function and renders its result.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use control::customer_pages::{CustomerQuery, customer_profile, list_customers_page};
use control::customers::{
    NewCustomer, ProfileChanges, create_customer, set_customer_status, update_profile,
};
use control::inputs::parse_duration;
use control::limits::update_limits;
use schemas::{CustomerStatus, SecretToken};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::AdminState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::json::{answer, decode, json_body, ok, query};
use crate::limits_body::{LIMIT_FIELD_NAMES, LimitFields};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    next_token: Option<String>,
    status: Option<CustomerStatus>,
    q: Option<String>,
    include: Option<Include>,
}

/// What a list may carry besides the customers.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Include {
    /// Each customer's daily and monthly caps with what the counters hold against them.
    LimitUsage,
}

/// `GET /customers`.
pub async fn list(State(state): State<AdminState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let asked: ListQuery = query(raw.as_deref())?;
    let page = list_customers_page(
        state.ports.registry.as_ref(),
        &CustomerQuery {
            limit: asked.limit,
            next_token: asked.next_token,
            status: asked.status,
            text: asked.q,
        },
    )
    .await?;
    match asked.include {
        None => Ok(ok(&page)),
        Some(Include::LimitUsage) => {
            let usage = control::limit_usage::limit_usage_of(
                state.ports.counters.as_ref(),
                &page.customers,
                chrono::Utc::now(),
            )
            .await?;
            Ok(ok(&serde_json::json!({
                "customers": page.customers,
                "next_token": page.next_token,
                "limit_usage": usage,
            })))
        }
    }
}

/// The create body's fields that are not limits.
const CREATE_FIELD_NAMES: [&str; 4] = ["name", "email", "token", "expires_in"];

/// The fields of a create body that are not limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFields {
    name: String,
    email: String,
    token: Option<String>,
    expires_in: Option<String>,
}

/// A new key as `tollgate create --json` and `update-token --json` print it.
#[derive(Debug, Serialize)]
pub struct IssuedKeyJson {
    pub customer_id: String,
    pub key_id: String,
    /// The generated token, in this answer only; absent when the caller supplied it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<control::keys::IssuedKey> for IssuedKeyJson {
    fn from(issued: control::keys::IssuedKey) -> Self {
        Self {
            customer_id: issued.customer_id,
            key_id: issued.key_id,
            token: issued
                .generated_token
                .map(|token| token.expose().to_owned()),
            expires_at: issued.expires_at,
        }
    }
}

/// An optional duration field (`"24h"`), parsed as the CLI parses its flag.
pub fn duration_field(field: &str, text: Option<&str>) -> ApiResult<Option<std::time::Duration>> {
    text.map(|text| parse_duration(text).map_err(|message| ApiError::validation(field, message)))
        .transpose()
}

/// `POST /customers`: the body holds `tollgate create`'s flags.
pub async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let mut object: Map<String, Value> = json_body(&headers, body).await?;
    if let Some(unknown) = object.keys().find(|key| {
        !CREATE_FIELD_NAMES.contains(&key.as_str()) && !LIMIT_FIELD_NAMES.contains(&key.as_str())
    }) {
        return Err(ApiError::validation(
            unknown.clone(),
            format!(
                "the request body is not usable: unknown field `{unknown}`; the fields are {}",
                CREATE_FIELD_NAMES
                    .iter()
                    .chain(LIMIT_FIELD_NAMES.iter())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut limit_fields = Map::new();
    for name in LIMIT_FIELD_NAMES {
        if let Some(value) = object.remove(name) {
            limit_fields.insert(name.to_owned(), value);
        }
    }
    let fields: CreateFields = decode(&serde_json::to_vec(&object).unwrap_or_default())?;
    let limits: LimitFields = decode(&serde_json::to_vec(&limit_fields).unwrap_or_default())?;
    let new = NewCustomer {
        name: fields.name,
        email: fields.email,
        token: fields.token.map(SecretToken::new),
        limits: limits.changes()?,
        key_expires_in: duration_field("expires_in", fields.expires_in.as_deref())?,
    };
    let issued = create_customer(state.ports.registry.as_ref(), &caller.actor(), new).await?;
    Ok(answer(StatusCode::CREATED, &IssuedKeyJson::from(issued)))
}

/// `GET /customers/{id}`.
pub async fn show(State(state): State<AdminState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let profile = customer_profile(
        state.ports.registry.as_ref(),
        state.ports.plans.as_ref(),
        id,
    )
    .await?;
    Ok(ok(&profile))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    name: Option<String>,
    email: Option<String>,
}

/// `PATCH /customers/{id}`: name, email; as `tollgate update-customer`.
pub async fn patch(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let asked: ProfileBody = json_body(&headers, body).await?;
    let changes = ProfileChanges {
        name: asked.name,
        email: asked.email,
    };
    let customer =
        update_profile(state.ports.registry.as_ref(), &caller.actor(), id, &changes).await?;
    Ok(ok(&customer))
}

#[derive(Serialize)]
struct StatusChanged<'a> {
    customer_id: &'a str,
    status: &'static str,
}

async fn change_status(
    state: &AdminState,
    caller: &Caller,
    id: &str,
    status: CustomerStatus,
) -> ApiResult<Response> {
    let id = ids::customer_id(id)?;
    let status =
        set_customer_status(state.ports.registry.as_ref(), &caller.actor(), id, status).await?;
    Ok(ok(&StatusChanged {
        customer_id: id,
        status: status.as_str(),
    }))
}

/// `DELETE /customers/{id}`: as `tollgate delete`.
pub async fn delete(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    change_status(&state, &caller, &id, CustomerStatus::Deleted).await
}

/// `POST /customers/{id}/disable`.
pub async fn disable(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    change_status(&state, &caller, &id, CustomerStatus::Disabled).await
}

/// `POST /customers/{id}/enable`.
pub async fn enable(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    change_status(&state, &caller, &id, CustomerStatus::Active).await
}

#[derive(Serialize)]
struct LimitsJson<'a> {
    customer_id: &'a str,
    daily_limit: Option<u64>,
    allowed_models: Option<&'a [String]>,
    limits: &'a schemas::Limits,
}

/// `PATCH /customers/{id}/limits`: as `update-limits`; `null` clears a limit.
pub async fn patch_limits(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let fields: LimitFields = json_body(&headers, body).await?;
    let changed = update_limits(
        state.ports.registry.as_ref(),
        &caller.actor(),
        id,
        &fields.changes()?,
        &[],
    )
    .await?;
    Ok(ok(&LimitsJson {
        customer_id: &changed.customer_id,
        daily_limit: changed.limits.daily_request_limit,
        allowed_models: changed.limits.allowed_models.as_deref(),
        limits: &changed.limits,
    }))
}
