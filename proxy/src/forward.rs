//! Forwarding an admitted call to the model runtime, answering, and emitting its event.
//!
//! The upstream call and the event emission run in their own task, so the event is
//! written even when the client disconnects mid-call (it is then `client_aborted`).

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use schemas::bedrock_stream::StreamKind;
use schemas::bedrock_usage::{
    INPUT_TOKEN_HEADER, OUTPUT_TOKEN_HEADER, TokenUsage, usage_from_body, usage_from_headers,
};
use schemas::usage_event::truncate_to_millis;
use schemas::{Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};
use store::{ModelInvocation, RuntimeError, UpstreamBody, UpstreamResponse};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::admission::Settlement;
use crate::emitter::EmitterHandle;
use crate::error_response::ApiError;
use crate::metered_stream::{MeteredStream, StreamMeter};
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
    /// The admission to settle with the call's tokens; `None` for a refused call.
    pub settlement: Option<Settlement>,
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
        if let Some(settlement) = self.settlement {
            settlement.settle(
                upstream
                    .usage
                    .input_tokens
                    .saturating_add(upstream.usage.output_tokens),
            );
        }
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

/// How the status of an answer from Bedrock is classified: anything but 2xx is an
/// `upstream_error` (Bedrock's throttling, validation, model and service errors alike).
pub fn outcome_for_status(status: u16) -> Outcome {
    if (200..=299).contains(&status) {
        Outcome::Success
    } else {
        Outcome::UpstreamError
    }
}

/// Sets Tollgate's request id on a response.
pub fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Response headers passed back from Bedrock (content type, error type, Bedrock's own).
fn passthrough_headers(upstream: &UpstreamResponse, response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in &upstream.headers {
        let keep = name == "content-type"
            || name == "x-amzn-errortype"
            || name.starts_with("x-amzn-bedrock-");
        if keep
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            )
        {
            headers.insert(name, value);
        }
    }
}

/// Token counts of a complete answer: Bedrock's headers, else `usage` in the body.
pub fn complete_usage(upstream: &UpstreamResponse, body: &[u8]) -> TokenUsage {
    usage_from_headers(
        upstream.header(INPUT_TOKEN_HEADER),
        upstream.header(OUTPUT_TOKEN_HEADER),
    )
    .or_else(|| usage_from_body(body))
    .unwrap_or_default()
}

/// Whether Bedrock refused the proxy's own AWS identity or model access (the operator's
/// problem, never shown raw to the customer).
pub fn is_operator_error(status: u16, error_type: Option<&str>) -> bool {
    let error_type = error_type.map(|value| value.split(':').next().unwrap_or(value));
    status == 401
        || (status == 403
            && matches!(
                error_type,
                Some(
                    "AccessDeniedException"
                        | "UnrecognizedClientException"
                        | "ExpiredTokenException"
                        | "InvalidSignatureException"
                        | "MissingAuthenticationTokenException"
                        | "IncompleteSignatureException"
                ) | None
            ))
}

fn millis_of(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The client's response and the event's facts for a complete answer or a failure.
fn respond_complete(
    result: Result<(UpstreamResponse, Bytes), RuntimeError>,
    started_upstream: Instant,
) -> (Response, u16, u64, UpstreamFacts) {
    match result {
        Ok((upstream, body)) => {
            let facts = UpstreamFacts {
                upstream_request_id: upstream.header("x-amzn-requestid").map(str::to_owned),
                upstream_latency_ms: Some(millis_of(upstream.upstream_latency)),
                usage: complete_usage(&upstream, &body),
            };
            if is_operator_error(upstream.status, upstream.header("x-amzn-errortype")) {
                tracing::error!(
                    status = upstream.status,
                    error_type = upstream.header("x-amzn-errortype").unwrap_or_default(),
                    body = %String::from_utf8_lossy(&body),
                    "bedrock refused the proxy's AWS identity or model access; fix the service's credentials or model access"
                );
                let api_error = ApiError::upstream_credentials();
                let status = api_error.status.as_u16();
                let bytes = u64::try_from(api_error.body().len()).unwrap_or(u64::MAX);
                return (api_error.into_response(), status, bytes, facts);
            }
            let status = StatusCode::from_u16(upstream.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let response_bytes = u64::try_from(body.len()).unwrap_or(u64::MAX);
            let mut response = (status, body).into_response();
            passthrough_headers(&upstream, &mut response);
            if let Some(usage) = (facts.usage != TokenUsage::default()).then_some(facts.usage) {
                response
                    .headers_mut()
                    .insert(INPUT_TOKEN_HEADER, HeaderValue::from(usage.input_tokens));
                response
                    .headers_mut()
                    .insert(OUTPUT_TOKEN_HEADER, HeaderValue::from(usage.output_tokens));
            }
            (response, upstream.status, response_bytes, facts)
        }
        Err(error) => {
            tracing::warn!(error = %error, "model runtime gave no answer");
            let api_error = match error {
                RuntimeError::Timeout(_) => ApiError::upstream_timeout(),
                RuntimeError::Credentials(_) => ApiError::upstream_credentials(),
                RuntimeError::Unreachable(_) | RuntimeError::Failed(_) => {
                    ApiError::upstream_unreachable()
                }
            };
            let status = api_error.status.as_u16();
            let response_bytes = u64::try_from(api_error.body().len()).unwrap_or(u64::MAX);
            let facts = UpstreamFacts {
                upstream_latency_ms: Some(millis_of(started_upstream.elapsed())),
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
    let operation = invocation.operation;
    tokio::spawn(async move {
        let started_upstream = Instant::now();
        let result = match runtime.send(invocation).await {
            Ok(UpstreamResponse {
                status,
                headers,
                body: UpstreamBody::Stream(stream),
                upstream_latency,
            }) => {
                let upstream = UpstreamResponse {
                    status,
                    headers,
                    body: UpstreamBody::Complete(Bytes::new()),
                    upstream_latency,
                };
                let kind = if operation == Operation::ConverseStream {
                    StreamKind::ConverseStream
                } else {
                    StreamKind::InvokeWithResponseStream
                };
                let meter = StreamMeter {
                    upstream_request_id: upstream.header("x-amzn-requestid").map(str::to_owned),
                    upstream_latency_ms: millis_of(upstream_latency),
                    status,
                    draft,
                    emitter,
                    durable,
                };
                let mut response =
                    Response::new(Body::from_stream(MeteredStream::new(stream, kind, meter)));
                passthrough_headers(&upstream, &mut response);
                let _ = response_sender.send(response);
                return;
            }
            Ok(UpstreamResponse {
                status,
                headers,
                body: UpstreamBody::Complete(body),
                upstream_latency,
            }) => Ok((
                UpstreamResponse {
                    status,
                    headers,
                    body: UpstreamBody::Complete(Bytes::new()),
                    upstream_latency,
                },
                body,
            )),
            Err(error) => Err(error),
        };
        let (response, status, response_bytes, facts) = respond_complete(result, started_upstream);
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
        assert_eq!(outcome_for_status(400), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(404), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(429), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(500), Outcome::UpstreamError);
        assert_eq!(outcome_for_status(503), Outcome::UpstreamError);
    }
}

#[cfg(test)]
mod error_mapping_tests {
    use super::*;

    #[test]
    fn bedrock_errors_map_to_what_the_client_sees() {
        // (status from Bedrock, x-amzn-errortype) -> (operator problem?, outcome)
        let table = [
            (
                429,
                Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                false,
                Outcome::UpstreamError,
            ),
            (
                400,
                Some("ValidationException"),
                false,
                Outcome::UpstreamError,
            ),
            (
                404,
                Some("ResourceNotFoundException"),
                false,
                Outcome::UpstreamError,
            ),
            (
                424,
                Some("ModelErrorException"),
                false,
                Outcome::UpstreamError,
            ),
            (
                408,
                Some("ModelTimeoutException"),
                false,
                Outcome::UpstreamError,
            ),
            (
                429,
                Some("ModelNotReadyException"),
                false,
                Outcome::UpstreamError,
            ),
            (
                500,
                Some("InternalServerException"),
                false,
                Outcome::UpstreamError,
            ),
            (
                503,
                Some("ServiceUnavailableException"),
                false,
                Outcome::UpstreamError,
            ),
            (
                403,
                Some("AccessDeniedException"),
                true,
                Outcome::UpstreamError,
            ),
            (
                403,
                Some("UnrecognizedClientException:http://internal.amazon.com/"),
                true,
                Outcome::UpstreamError,
            ),
            (
                403,
                Some("ExpiredTokenException"),
                true,
                Outcome::UpstreamError,
            ),
            (401, None, true, Outcome::UpstreamError),
        ];
        for (status, error_type, operator, outcome) in table {
            assert_eq!(
                is_operator_error(status, error_type),
                operator,
                "{status} {error_type:?}"
            );
            assert_eq!(
                outcome_for_status(status),
                outcome,
                "{status} {error_type:?}"
            );
        }
        // An operator error is answered 502 and metered from that status.
        assert_eq!(
            outcome_for_status(ApiError::upstream_credentials().status.as_u16()),
            Outcome::UpstreamError
        );
    }
}
