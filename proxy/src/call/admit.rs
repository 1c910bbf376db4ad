//! The admission stage: refuse new calls while metering is backed up, then admit the call
//! against the customer's limits. A refusal for a limit is a metered answer: its event is
//! recorded before the client is answered.

use axum::response::{IntoResponse, Response};
use schemas::quota::RateLimitStatus;
use schemas::{Outcome, RequestId};

use crate::admission::{Admission, Settlement};
use crate::auth::Caller;
use crate::call::meter::{AnswerFacts, EventDraft, UpstreamFacts, call_event};
use crate::call::response_headers::{with_rate_limit, with_request_id};
use crate::error_response::ApiError;
use crate::state::ProxyState;

/// An admitted call: what settles it, and the `RateLimit-*` status to answer with.
#[derive(Debug)]
pub struct Admitted {
    pub settlement: Settlement,
    pub rate: Option<RateLimitStatus>,
}

/// The refusal (503) to give while usage metering is backed up: the spool is over its
/// limit or cannot be written, so a call now could not be metered. `None`: go on.
pub fn refusal_while_metering_is_backed_up(
    state: &ProxyState,
    caller: &Caller,
    request_id: &RequestId,
) -> Option<Response> {
    if !state.emitter.is_backed_up() {
        return None;
    }
    tracing::warn!(customer_id = %caller.customer.customer_id, "request refused: usage metering is backed up (the spool is over its limit or cannot be written)");
    Some(with_request_id(
        ApiError::unavailable(
            "usage metering is backed up, so new calls are paused; retry in a few seconds",
        )
        .into_response(),
        request_id,
    ))
}

/// Admits a call against its customer's limits. `Err` is the answer to give instead: a
/// limit refusal (metered, with its `RateLimit-*` headers) or 503 when strict limits
/// cannot be checked (not metered).
pub async fn admit(
    state: &ProxyState,
    caller: &Caller,
    draft: &EventDraft,
    model_body: &[u8],
) -> Result<Admitted, Response> {
    let request_id = &draft.start.request_id;
    let grant = match state
        .limiter
        .admit(&caller.customer, model_body, draft.start.accepted_at)
        .await
    {
        Admission::Admit(grant) => grant,
        Admission::Reject(hit) => {
            let error = ApiError::limit_reached(&hit);
            let answer = AnswerFacts {
                status: error.status.as_u16(),
                outcome: Outcome::RejectedLimit,
                response_bytes: u64::try_from(error.body().len()).unwrap_or(u64::MAX),
            };
            let event = call_event(draft.clone(), answer, UpstreamFacts::default());
            state.emitter.record(event, None).await;
            tracing::info!(customer_id = %caller.customer.customer_id, limit = hit.kind.as_str(), "request rejected: limit reached");
            let rate = RateLimitStatus {
                kind: hit.kind,
                limit: hit.limit,
                remaining: 0,
                reset_seconds: hit.retry_after_seconds,
            };
            return Err(with_rate_limit(
                with_request_id(error.into_response(), request_id),
                Some(rate),
            ));
        }
        Admission::Unavailable(message) => {
            return Err(with_request_id(
                ApiError::unavailable(message).into_response(),
                request_id,
            ));
        }
    };
    let rate = grant.rate();
    Ok(Admitted {
        settlement: Settlement::new(state.limiter.clone(), grant),
        rate,
    })
}
