//! `GET /quarantine` and `POST /quarantine/requeue`: what the metering consumer could not
//! meter, and sending it through the event log again (as `tollgate quarantine list` and
//! `tollgate quarantine requeue`).

use axum::extract::State;
use axum::response::Response;

use crate::AdminState;
use crate::error::ApiResult;
use crate::json::ok;

/// `GET /quarantine`.
pub async fn list(State(state): State<AdminState>) -> ApiResult<Response> {
    let items = control::quarantine::list(&state.ports).await?;
    Ok(ok(&serde_json::json!({ "items": items })))
}

/// `POST /quarantine/requeue`.
pub async fn requeue(State(state): State<AdminState>) -> ApiResult<Response> {
    let report = control::quarantine::requeue(&state.ports).await?;
    Ok(ok(&report))
}
