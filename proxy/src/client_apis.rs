//! The client APIs customers already use, on the proxy's call path: Anthropic's Messages
//! API at `POST /v1/messages` (and under `/prod`). Each call is the same call as a native
//! one (authenticated, admitted, forwarded, metered to the token from Bedrock's own
//! counts); only the body on the way in, the stream on the way out and the error shape
//! differ ([`crate::translate`]).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use schemas::Operation;

use crate::call::{Authenticated, ModelSource, handle_call};
use crate::state::ProxyState;
use crate::translate::anthropic::{StreamTranslator, error_from};

/// Largest error body read to re-shape it (Tollgate's and Bedrock's are far smaller).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// `POST /v1/messages`: Anthropic's Messages API on InvokeModel, or with `stream: true`
/// on InvokeModelWithResponseStream, answered as Anthropic's server-sent events.
pub async fn anthropic_messages(
    State(state): State<ProxyState>,
    Extension(call): Extension<Authenticated>,
    request: Request,
) -> Response {
    let response = handle_call(
        state,
        call,
        request,
        Operation::Invoke,
        ModelSource::AnthropicMessages,
    )
    .await;
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            value
                .as_bytes()
                .starts_with(b"application/vnd.amazon.eventstream")
        });
    if !response.status().is_success() || !streamed {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut translator = StreamTranslator::default();
    let events = body.into_data_stream().filter_map(move |piece| {
        let text = match piece {
            Ok(bytes) => translator.push(&bytes),
            Err(error) => {
                tracing::debug!(error = %error, "the model's stream ended early");
                String::new()
            }
        };
        futures::future::ready((!text.is_empty()).then_some(Ok::<_, std::io::Error>(text)))
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(events))
}

/// Whether a path belongs to Anthropic's API surface.
fn is_anthropic_path(path: &str) -> bool {
    let path = path.strip_prefix("/prod").unwrap_or(path);
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// A router layer: every error answered on an Anthropic route, by Tollgate (bad token,
/// bad body, limits) or by Bedrock, in Anthropic's error shape, so the SDK raises its own
/// error types. Headers such as `Retry-After` and the request id are kept.
pub async fn client_api_errors(request: Request, next: Next) -> Response {
    let anthropic = is_anthropic_path(request.uri().path());
    let response = next.run(request).await;
    if !anthropic || response.status().is_success() {
        return response;
    }
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let shaped = error_from(status.as_u16(), &bytes).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove("x-amzn-errortype");
    Response::from_parts(parts, Body::from(shaped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_paths_are_recognised_with_and_without_the_stage() {
        for path in [
            "/v1/messages",
            "/prod/v1/messages",
            "/v1/messages/count_tokens",
        ] {
            assert!(is_anthropic_path(path), "{path}");
        }
        for path in [
            "/v1/messagesx",
            "/bedrock",
            "/prod/bedrock",
            "/v1/chat/completions",
        ] {
            assert!(!is_anthropic_path(path), "{path}");
        }
    }
}
