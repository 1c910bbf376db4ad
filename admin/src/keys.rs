//! `/admin/api/v1/customers/{id}/keys…`: list, rotate and revoke, as `list-keys`,
//! `update-token` and `revoke-token`.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use control::keys::{Rotation, list_keys, revoke_key, rotate_token};
use schemas::SecretToken;
use serde::{Deserialize, Serialize};

use crate::AdminState;
use crate::auth::Caller;
use crate::customers::{IssuedKeyJson, duration_field};
use crate::error::ApiResult;
use crate::ids;
use crate::json::{answer, ok, optional_json_body};

/// `update-token`'s default grace period, as the CLI's flag.
const DEFAULT_GRACE_PERIOD: &str = "24h";

#[derive(Serialize)]
struct KeysJson<'a> {
    customer_id: &'a str,
    keys: Vec<control::keys::KeyView>,
}

/// `GET /customers/{id}/keys`.
pub async fn list(State(state): State<AdminState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let keys = list_keys(state.ports.registry.as_ref(), id).await?;
    Ok(ok(&KeysJson {
        customer_id: id,
        keys,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace_period: Option<String>,
    expires_in: Option<String>,
    token: Option<String>,
}

/// `POST /customers/{id}/keys`: rotate; the new token is in this answer only.
pub async fn rotate(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let asked: RotateBody = optional_json_body(&headers, body).await?;
    let grace_period = duration_field(
        "grace_period",
        Some(
            asked
                .grace_period
                .as_deref()
                .unwrap_or(DEFAULT_GRACE_PERIOD),
        ),
    )?
    .unwrap_or_default();
    let rotation = Rotation {
        customer_id: id.to_owned(),
        token: asked.token.map(SecretToken::new),
        grace_period,
        expires_in: duration_field("expires_in", asked.expires_in.as_deref())?,
    };
    let issued = rotate_token(state.ports.registry.as_ref(), &caller.actor(), rotation).await?;
    Ok(answer(StatusCode::CREATED, &IssuedKeyJson::from(issued)))
}

/// `DELETE /customers/{id}/keys/{key_id}`: revoke at once.
pub async fn revoke(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((id, key_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = ids::customer_id(&id)?;
    let key_id = ids::key_id(&key_id)?;
    let revoked = revoke_key(state.ports.registry.as_ref(), &caller.actor(), id, key_id).await?;
    Ok(ok(&revoked))
}
