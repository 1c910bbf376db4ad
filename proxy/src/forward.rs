//! Forwarding an admitted call to the model runtime, answering, and emitting its event.
//!
//! The upstream call and the event emission run in their own task, so the event is
//! written even when the client disconnects mid-call (it is then `client_aborted`).

use std::time::Instant;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use schemas::bedrock_usage::{INPUT_TOKEN_HEADER, OUTPUT_TOKEN_HEADER, TokenUsage};
use schemas::usage_event::truncate_to_millis;
use schemas::{Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};
use store::{ModelAnswer, ModelInvocation, RuntimeError};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::emitter::EmitterHandle;
use crate::error_response::ApiError;
use crate::state::ProxyState;

/// What is known about a call before it is answered.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub event_id: Uuid,
    pub request_id: String,
    pub accepted_at: DateTime<Utc>,
    pub started: Instant,
    pub customer_id: String,
    pub key_id: String,
    pub model_id: String,
    pub operation: Operation,
    pub request_bytes: u64,
}

/// What the answer adds to the event.
#[derive(Debug, Clone, Default)]
pub struct UpstreamFacts {
    pub upstream_request_id: Option<String>,
    pub upstream_latency_ms: Option<u64>,
    pub usage: TokenUsage,
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl EventDraft {
    /// The event of a call Bedrock was not asked about (a limit rejection).
    pub fn complete(
        self,
        emitter: &EmitterHandle,
        status: u16,
        outcome: Outcome,
        response_bytes: u64,
    ) -> UsageEvent {
        self.complete_with(
            emitter,
            status,
            outcome,
            response_bytes,
            UpstreamFacts::default(),
        )
    }

    /// The event of a finished call.
    pub fn complete_with(
        self,
        emitter: &EmitterHandle,
        status: u16,
        outcome: Outcome,
        response_bytes: u64,
        upstream: UpstreamFacts,
    ) -> UsageEvent {
        UsageEvent {
            event_id: self.event_id,
            schema_version: USAGE_EVENT_SCHEMA_VERSION,
            occurred_at: truncate_to_millis(self.accepted_at),
            customer_id: self.customer_id,
            key_id: self.key_id,
            request_id: self.request_id,
            upstream_request_id: upstream.upstream_request_id,
            model_id: self.model_id,
            operation: self.operation,
            status,
            outcome,
            input_tokens: upstream.usage.input_tokens,
            output_tokens: upstream.usage.output_tokens,
            cache_read_tokens: upstream.usage.cache_read_tokens,
            cache_write_tokens: upstream.usage.cache_write_tokens,
            latency_ms: millis(self.started.elapsed()),
            upstream_latency_ms: upstream.upstream_latency_ms,
            request_bytes: self.request_bytes,
            response_bytes,
            proxy_instance: emitter.instance().to_owned(),
            instance_seq: emitter.next_sequence(),
        }
    }
}

/// How an upstream HTTP status is classified.
pub fn outcome_for_status(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Success,
        429 => Outcome::UpstreamError,
        400..=499 => Outcome::ClientError,
        _ => Outcome::UpstreamError,
    }
}

/// Sets Tollgate's request id on a response.
pub fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

fn answer_response(answer: &ModelAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, answer.body.clone()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        headers.insert("content-type", value);
    }
    if let Some(error_type) = answer
        .error_type
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
    {
        headers.insert("x-amzn-errortype", error_type);
    }
    if let Some(usage) = answer.usage {
        headers.insert(INPUT_TOKEN_HEADER, HeaderValue::from(usage.input_tokens));
        headers.insert(OUTPUT_TOKEN_HEADER, HeaderValue::from(usage.output_tokens));
    }
    response
}

/// Turns the runtime's result into the client's response and the event's facts.
fn respond(
    result: Result<ModelAnswer, RuntimeError>,
    started_upstream: Instant,
) -> (Response, u16, u64, UpstreamFacts) {
    match result {
        Ok(answer) => {
            let response = answer_response(&answer);
            let facts = UpstreamFacts {
                upstream_request_id: answer.upstream_request_id.clone(),
                upstream_latency_ms: Some(millis(answer.upstream_latency)),
                usage: answer.usage.unwrap_or_default(),
            };
            let response_bytes = u64::try_from(answer.body.len()).unwrap_or(u64::MAX);
            (response, answer.status, response_bytes, facts)
        }
        Err(error) => {
            tracing::warn!(error = %error, "model runtime gave no answer");
            let api_error = match error {
                RuntimeError::Timeout(_) => ApiError::upstream_timeout(),
                RuntimeError::Unreachable(_) | RuntimeError::Failed(_) => {
                    ApiError::upstream_unreachable()
                }
            };
            let status = api_error.status.as_u16();
            let response_bytes = u64::try_from(api_error.body().len()).unwrap_or(u64::MAX);
            let facts = UpstreamFacts {
                upstream_latency_ms: Some(millis(started_upstream.elapsed())),
                ..UpstreamFacts::default()
            };
            (api_error.into_response(), status, response_bytes, facts)
        }
    }
}

/// Forwards an admitted call, answers it, and emits its event exactly once.
pub async fn forward_and_emit(
    state: &ProxyState,
    draft: EventDraft,
    invocation: ModelInvocation,
) -> Response {
    let (response_sender, response_receiver) = oneshot::channel();
    let runtime = state.runtime.clone();
    let emitter = state.emitter.clone();
    let durable = state.config.durable_events;
    let request_id = draft.request_id.clone();
    tokio::spawn(async move {
        let started_upstream = Instant::now();
        let result = runtime.invoke(invocation).await;
        let (response, status, response_bytes, facts) = respond(result, started_upstream);
        if durable {
            let event = draft.complete_with(
                &emitter,
                status,
                outcome_for_status(status),
                response_bytes,
                facts,
            );
            emitter.emit_durable(event).await;
            let _ = response_sender.send(response);
            return;
        }
        let delivered = response_sender.send(response).is_ok();
        let outcome = if delivered {
            outcome_for_status(status)
        } else {
            Outcome::ClientAborted
        };
        let event = draft.complete_with(&emitter, status, outcome, response_bytes, facts);
        emitter.emit(event).await;
    });
    match response_receiver.await {
        Ok(response) => with_request_id(response, &request_id),
        Err(_) => with_request_id(
            ApiError::unavailable("the request could not be completed; retry it").into_response(),
            &request_id,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(outcome_for_status(200), Outcome::Success);
        assert_eq!(outcome_for_status(400), Outcome::ClientError);
        assert_eq!(outcome_for_status(404), Outcome::ClientError);
        assert_eq!(outcome_for_status(429), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(500), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(503), Outcome::UpstreamError);
    }
}
