//! The forward stage: send an admitted call to the model runtime, answer the client, and
//! meter the answer (settle the admission, record the event).
//!
//! The upstream call and the metering run in place while the client waits, and carry on
//! as a task of their own if the client disconnects mid-call (`DetachOnDrop`), so the
//! event is written either way (it is then `client_aborted`).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::BoxStream;
use schemas::bedrock_stream::StreamKind;
use schemas::bedrock_usage::{
    INPUT_TOKEN_HEADER, OUTPUT_TOKEN_HEADER, TokenUsage, usage_from_body, usage_from_headers,
};
use schemas::{Operation, Outcome, RequestId};
use tokio::sync::oneshot;

use crate::admission::Settlement;
use crate::call::detach::DetachOnDrop;
use crate::call::meter::{
    AnswerFacts, EventDraft, UpstreamFacts, call_event, outcome_for_status, settle_admission,
};
use crate::call::response_headers::{decimal_values, with_request_id};
use crate::call::stream_meter::{MeteredStream, StreamMeter};
use crate::emitter::EmitterHandle;
use crate::error_response::ApiError;
use crate::state::ProxyState;
use crate::upstream::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse,
};

/// Request headers Bedrock needs: content type, accept, and every `x-amzn-bedrock-*`
/// whose value is visible ASCII (what SigV4 signs as text). The values are the request's
/// own, shared, not copied.
pub fn forwarded_headers(
    headers: &HeaderMap,
    operation: Operation,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut forwarded = Vec::with_capacity(4);
    for (name, value) in headers {
        let text = name.as_str();
        if (name == CONTENT_TYPE || name == ACCEPT || text.starts_with("x-amzn-bedrock-"))
            && value.to_str().is_ok()
        {
            forwarded.push((name.clone(), value.clone()));
        }
    }
    if !forwarded.iter().any(|(name, _)| name == CONTENT_TYPE) {
        forwarded.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
    }
    if !forwarded.iter().any(|(name, _)| name == ACCEPT) {
        let accept = match operation {
            Operation::InvokeStream | Operation::ConverseStream => {
                "application/vnd.amazon.eventstream"
            }
            Operation::Invoke | Operation::Converse | Operation::CountTokens => "application/json",
        };
        forwarded.push((ACCEPT, HeaderValue::from_static(accept)));
    }
    forwarded
}

/// Response headers passed back from Bedrock (content type, error type, Bedrock's own).
fn passthrough_headers(upstream: &UpstreamResponse, response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in &upstream.headers {
        let text = name.as_str();
        if text == "content-type"
            || text == "x-amzn-errortype"
            || text.starts_with("x-amzn-bedrock-")
        {
            headers.insert(name.clone(), value.clone());
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
                upstream_request_id: upstream.header("x-amzn-requestid").map(RequestId::from),
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
                let [input, output] = decimal_values([usage.input_tokens, usage.output_tokens]);
                let headers = response.headers_mut();
                headers.insert(INPUT_TOKEN_HEADER, input);
                headers.insert(OUTPUT_TOKEN_HEADER, output);
            }
            (response, upstream.status, response_bytes, facts)
        }
        Err(error) => {
            tracing::warn!(error = %error, "model runtime gave no answer");
            let api_error = ApiError::from_runtime(&error);
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

/// Forwards an admitted call, answers it, and meters it exactly once.
pub async fn forward_and_meter(
    state: &ProxyState,
    draft: EventDraft,
    settlement: Settlement,
    invocation: ModelInvocation,
) -> Response {
    let (response_sender, mut response_receiver) = oneshot::channel();
    let request_id = draft.start.request_id.clone();
    // Runs here while the client waits; if the client leaves (this future is dropped), the
    // rest runs as a task of its own, so the call is still metered.
    let mut forwarding = DetachOnDrop::new(forward_in_background(
        state.runtime.clone(),
        state.emitter.clone(),
        draft,
        settlement,
        invocation,
        response_sender,
    ));
    let answer = tokio::select! {
        biased;
        answer = &mut response_receiver => answer,
        () = &mut forwarding => response_receiver.await,
    };
    // What is left after the answer (usually nothing) finishes here if it can; otherwise
    // dropping `forwarding` hands it to a task.
    if !forwarding.is_finished() {
        let _ = futures::FutureExt::now_or_never(&mut forwarding);
    }
    match answer {
        Ok(response) => with_request_id(response, &request_id),
        Err(_) => with_request_id(
            ApiError::unavailable("the request could not be completed; retry it").into_response(),
            &request_id,
        ),
    }
}

/// The forwarding task: calls the runtime and hands the answer to `response_sender`. A
/// stream is metered as it ends; a complete answer (or a failure) is answered and metered
/// here, in the order the emitter's durability requires.
async fn forward_in_background(
    runtime: Arc<dyn ModelRuntime>,
    emitter: EmitterHandle,
    draft: EventDraft,
    settlement: Settlement,
    invocation: ModelInvocation,
    response_sender: oneshot::Sender<Response>,
) {
    let started_upstream = Instant::now();
    let operation = invocation.operation;
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
            let meter = StreamMeter {
                upstream_request_id: upstream.header("x-amzn-requestid").map(RequestId::from),
                upstream_latency_ms: millis_of(upstream_latency),
                status,
                draft,
                settlement,
                emitter,
            };
            let _ = response_sender.send(stream_answer(&upstream, stream, operation, meter));
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
    let client_waiting = !response_sender.is_closed();
    emitter
        .answer_and_record(
            move || client_waiting,
            move || response_sender.send(response).is_ok(),
            move |delivered| {
                let closing_write = settle_admission(settlement, &facts.usage);
                let outcome = if delivered {
                    outcome_for_status(status)
                } else {
                    Outcome::ClientAborted
                };
                let answer = AnswerFacts {
                    status,
                    outcome,
                    response_bytes,
                };
                (call_event(draft, answer, facts), closing_write)
            },
        )
        .await;
}

/// The client's response to a streamed answer: Bedrock's headers, and its stream metered
/// on the way.
fn stream_answer(
    upstream: &UpstreamResponse,
    stream: BoxStream<'static, Result<Bytes, RuntimeError>>,
    operation: Operation,
    meter: StreamMeter,
) -> Response {
    let kind = if operation == Operation::ConverseStream {
        StreamKind::ConverseStream
    } else {
        StreamKind::InvokeWithResponseStream
    };
    let mut response = Response::new(Body::from_stream(MeteredStream::new(stream, kind, meter)));
    passthrough_headers(upstream, &mut response);
    response
}

#[cfg(test)]
mod forwarded_header_tests {
    use super::*;

    fn texts(forwarded: &[(HeaderName, HeaderValue)]) -> Vec<(String, String)> {
        forwarded
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn bedrock_headers_pass_and_defaults_fill_in() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.insert("x-amzn-bedrock-trace", HeaderValue::from_static("ENABLED"));
        headers.insert(
            "x-amzn-bedrock-guardrailidentifier",
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        headers.insert("x-other", HeaderValue::from_static("kept out"));
        let owned = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(
            texts(&forwarded_headers(&headers, Operation::ConverseStream)),
            [
                owned("x-amzn-bedrock-trace", "ENABLED"),
                owned("content-type", "application/json"),
                owned("accept", "application/vnd.amazon.eventstream"),
            ],
            "no credentials, no value that is not visible ASCII, defaults last"
        );
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let forwarded = texts(&forwarded_headers(&headers, Operation::Invoke));
        assert!(forwarded.contains(&owned("content-type", "text/plain")));
        assert!(forwarded.contains(&owned("accept", "*/*")));
        assert_eq!(forwarded.len(), 3);
    }
}

#[cfg(test)]
mod error_mapping_tests {
    use super::*;
    use crate::call::meter::outcome_for_status;

    #[test]
    #[allow(clippy::too_many_lines)] // one table of every Bedrock error
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
