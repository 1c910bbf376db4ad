//! The pipeline every proxied call goes through: authenticate, read the body, find the
//! model, admit against limits (a refusal is metered), then forward and meter the answer.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use schemas::quota::RateLimitStatus;
use schemas::{Operation, Outcome};
use store::ModelInvocation;
use uuid::Uuid;

use crate::admission::{Admission, Settlement};
use crate::error_response::ApiError;
use crate::forward::{EventDraft, forward_and_emit, with_request_id};
use crate::spec_route::{read_body_limited, split_spec_body, validate_model_id};
use crate::state::ProxyState;

/// Where a call names its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The spec's endpoint: `modelId` inside the JSON body, removed before forwarding.
    SpecBody,
    /// Bedrock's own routes: the (already percent-decoded) path segment; the body is
    /// forwarded unchanged.
    Path(String),
}

/// Request headers Bedrock needs: content type, accept, and every `x-amzn-bedrock-*`.
pub fn forwarded_headers(headers: &HeaderMap, operation: Operation) -> Vec<(String, String)> {
    let mut forwarded = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        if (name == "content-type" || name == "accept" || name.starts_with("x-amzn-bedrock-"))
            && let Ok(value) = value.to_str()
        {
            forwarded.push((name.to_owned(), value.to_owned()));
        }
    }
    if !forwarded.iter().any(|(name, _)| name == "content-type") {
        forwarded.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    if !forwarded.iter().any(|(name, _)| name == "accept") {
        let accept = match operation {
            Operation::InvokeStream | Operation::ConverseStream => {
                "application/vnd.amazon.eventstream"
            }
            Operation::Invoke | Operation::Converse => "application/json",
        };
        forwarded.push(("accept".to_owned(), accept.to_owned()));
    }
    forwarded
}

/// Runs one call through the pipeline.
pub async fn handle_call(
    state: ProxyState,
    request: Request,
    operation: Operation,
    source: ModelSource,
) -> Response {
    let started = Instant::now();
    let accepted_at = Utc::now();
    let event_id = Uuid::now_v7();
    let request_id = event_id.to_string();
    let (parts, body) = request.into_parts();

    let caller = match state
        .auth
        .authenticate(&state.registry, &parts.headers, accepted_at)
        .await
    {
        Ok(caller) => caller,
        Err(error) => {
            tracing::info!(status = error.status.as_u16(), reason = %error.message, "request refused before authentication completed");
            return with_request_id(error.into_response(), &request_id);
        }
    };
    state.key_uses.note(&caller.key, accepted_at);
    if state.emitter.is_backed_up() {
        tracing::warn!(customer_id = %caller.customer.customer_id, "request refused: usage metering is backed up (the spool is over its limit or cannot be written)");
        return with_request_id(
            ApiError::unavailable(
                "usage metering is backed up, so new calls are paused; retry in a few seconds",
            )
            .into_response(),
            &request_id,
        );
    }
    let refuse = |error: ApiError| async {
        let rate = state.limiter.peek(&caller.customer, accepted_at).await;
        with_rate_limit(with_request_id(error.into_response(), &request_id), rate)
    };
    let body = match read_body_limited(
        body,
        &parts.headers,
        state.config.max_body_bytes,
        state.config.body_read_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(error) => return refuse(error).await,
    };
    let split: Result<(String, Bytes), ApiError> = match source {
        ModelSource::SpecBody => split_spec_body(&body),
        ModelSource::Path(model_id) => {
            validate_model_id(&model_id).map(|()| (model_id, body.clone()))
        }
    };
    let (model_id, model_body) = match split {
        Ok(split) => split,
        Err(error) => return refuse(error).await,
    };

    if !caller.customer.limits.allows_model(&model_id) {
        let error = ApiError::forbidden(format!(
            "model {model_id} is not enabled for this account; ask your provider to enable it"
        ));
        tracing::info!(customer_id = %caller.customer.customer_id, model_id, "request refused: model not allowed");
        return refuse(error).await;
    }

    let mut draft = EventDraft {
        event_id,
        request_id: request_id.clone(),
        accepted_at,
        started,
        customer_id: caller.customer.customer_id.clone(),
        key_id: caller.key.key_id.clone(),
        model_id: model_id.clone(),
        operation,
        request_bytes: u64::try_from(body.len()).unwrap_or(u64::MAX),
        settlement: None,
    };

    let grant = match state
        .limiter
        .admit(&caller.customer, &model_body, accepted_at)
        .await
    {
        Admission::Admit(grant) => grant,
        Admission::Reject(hit) => {
            let error = ApiError::limit_reached(&hit);
            let response_bytes = u64::try_from(error.body().len()).unwrap_or(u64::MAX);
            let event = draft.complete(
                &state.emitter,
                error.status.as_u16(),
                Outcome::RejectedLimit,
                response_bytes,
            );
            if state.config.durable_events {
                state.emitter.emit_durable(event).await;
            } else {
                state.emitter.emit(event).await;
            }
            tracing::info!(customer_id = %caller.customer.customer_id, limit = hit.kind.as_str(), "request rejected: limit reached");
            let rate = RateLimitStatus {
                kind: hit.kind,
                limit: hit.limit,
                remaining: 0,
                reset_seconds: hit.retry_after_seconds,
            };
            return with_rate_limit(
                with_request_id(error.into_response(), &request_id),
                Some(rate),
            );
        }
        Admission::Unavailable(message) => {
            return with_request_id(ApiError::unavailable(message).into_response(), &request_id);
        }
    };
    let rate = grant.rate;
    draft.settlement = Some(Settlement::new(state.limiter.clone(), grant));

    let invocation = ModelInvocation {
        operation,
        model_id,
        body: model_body,
        headers: forwarded_headers(&parts.headers, operation),
    };
    with_rate_limit(forward_and_emit(&state, draft, invocation).await, rate)
}

/// Sets `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) for the
/// tightest limit; a customer without limits gets none.
pub fn with_rate_limit(mut response: Response, rate: Option<RateLimitStatus>) -> Response {
    if let Some(rate) = rate {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(rate.reset_seconds));
        if let Ok(policy) = HeaderValue::from_str(rate.kind.as_str()) {
            headers.insert("x-tollgate-ratelimit-name", policy);
        }
    }
    response
}
