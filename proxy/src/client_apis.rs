//! The client APIs customers already use, on the proxy's call path: Anthropic's Messages
//! API at `POST /v1/messages`, and OpenAI's Chat Completions at `POST /v1/chat/completions`
//! with `GET /v1/models` (all also under `/prod`). Each call is the same call as a native
//! one (authenticated, admitted, forwarded, metered to the token from Bedrock's own
//! counts); only the body on the way in, the stream on the way out and the error shape
//! differ ([`crate::translate`]). Each API's routes are their own router, with its error
//! shape as a layer, so no other route pays for it.

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use schemas::Operation;

use crate::call::authenticate::authenticate_customer;
use crate::call::{Authenticated, ClientModel, ModelSource, handle_call};
use crate::error_response::ApiError;
use crate::state::ProxyState;
use crate::translate::anthropic::StreamTranslator;
use crate::translate::openai::{ChunkTranslator, completion};
use crate::upstream::{ModelInvocation, UpstreamBody};

/// Largest error body read to re-shape it (Tollgate's and Bedrock's are far smaller).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Largest Converse answer read to translate it (Bedrock's answers are far smaller).
const MAX_ANSWER_BODY: usize = 32 * 1024 * 1024;

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            value
                .as_bytes()
                .starts_with(b"application/vnd.amazon.eventstream")
        })
}

/// Headers of a translated stream.
fn as_event_stream(parts: &mut axum::http::response::Parts) {
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    parts.headers.remove(header::CONTENT_LENGTH);
}

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
    if !response.status().is_success() || !is_event_stream(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut translator = StreamTranslator::default();
    translated_stream(parts, body, move |bytes| translator.push(bytes))
}

/// A streamed answer whose event-stream bytes `translate` turns into server-sent events,
/// piece by piece as they arrive. The metering underneath sees Bedrock's own bytes; if the
/// client leaves, dropping this stream drops the metered one (a `client_aborted` call).
fn translated_stream(
    mut parts: axum::http::response::Parts,
    body: Body,
    mut translate: impl FnMut(&[u8]) -> String + Send + 'static,
) -> Response {
    let events = body.into_data_stream().filter_map(move |piece| {
        let text = match piece {
            Ok(bytes) => translate(&bytes),
            Err(error) => {
                tracing::debug!(error = %error, "the model's stream ended early");
                String::new()
            }
        };
        futures::future::ready((!text.is_empty()).then_some(Ok::<_, std::io::Error>(text)))
    });
    as_event_stream(&mut parts);
    Response::from_parts(parts, Body::from_stream(events))
}

/// `POST /v1/messages/count_tokens`: Bedrock's CountTokens for a Messages body, answered
/// as `{"input_tokens": n}`. Authenticated and held to the model allow-list like every call,
/// but neither admitted against limits nor metered: it runs no model and Bedrock does not
/// bill it.
pub async fn anthropic_count_tokens(
    State(state): State<ProxyState>,
    Extension(call): Extension<Authenticated>,
    request: Request,
) -> Response {
    let request_id = call.start.request_id.clone();
    let response = count_tokens(&state, &call, request)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    crate::call::response_headers::with_request_id(response, &request_id)
}

async fn count_tokens(
    state: &ProxyState,
    call: &Authenticated,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = crate::call::body::read_body_limited(
        body,
        &parts.headers,
        state.config.max_body_bytes,
        state.config.body_read_timeout,
    )
    .await?;
    let beta = parts
        .headers
        .get("anthropic-beta")
        .and_then(|value| value.to_str().ok());
    let counted =
        crate::translate::anthropic::count_tokens_request(&body, beta, &state.config.model_names)?;
    crate::call::body::check_model_allowed(
        &call.caller,
        &counted.model.model_id,
        Some(&counted.model.name),
    )?;
    let invocation = ModelInvocation {
        operation: Operation::CountTokens,
        model_id: counted.bedrock_model_id,
        body: counted.body,
        headers: crate::upstream::json_headers(),
    };
    let upstream = state
        .runtime
        .send(invocation)
        .await
        .map_err(|error| ApiError::from_runtime(&error))?;
    let UpstreamBody::Complete(answer) = upstream.body else {
        return Err(ApiError::upstream_unusable(
            "the model provider streamed a token count; retry",
        ));
    };
    if upstream.status != 200 {
        let status = axum::http::StatusCode::from_u16(upstream.status)
            .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
        return Ok((status, [(header::CONTENT_TYPE, "application/json")], answer).into_response());
    }
    let counted = crate::translate::anthropic::count_tokens_answer(&answer).ok_or_else(|| {
        ApiError::upstream_unusable("the model provider's token count could not be read; retry")
    })?;
    Ok(axum::Json(counted).into_response())
}

/// `POST /v1/chat/completions`: OpenAI's Chat Completions on Converse, or with
/// `stream: true` on ConverseStream answered as `chat.completion.chunk` events.
pub async fn openai_chat(
    State(state): State<ProxyState>,
    Extension(call): Extension<Authenticated>,
    request: Request,
) -> Response {
    let id = format!("chatcmpl-{}", call.start.request_id);
    let created = call.start.accepted_at.timestamp();
    let response = handle_call(
        state,
        call,
        request,
        Operation::Converse,
        ModelSource::OpenAiChat,
    )
    .await;
    if !response.status().is_success() {
        return response;
    }
    let client = response
        .extensions()
        .get::<ClientModel>()
        .cloned()
        .unwrap_or(ClientModel {
            name: String::new(),
            include_usage: false,
        });
    let streamed = is_event_stream(&response);
    let (mut parts, body) = response.into_parts();
    if streamed {
        let mut translator = ChunkTranslator::new(&id, &client.name, created, client.include_usage);
        return translated_stream(parts, body, move |bytes| translator.push(bytes));
    }
    let answer = axum::body::to_bytes(body, MAX_ANSWER_BODY)
        .await
        .unwrap_or_default();
    let Some(translated) = completion(&answer, &id, &client.name, created) else {
        let mut failure = ApiError::upstream_unusable(
            "the model's answer was not a Converse answer; retry, or use the native route",
        )
        .into_response();
        if let Some(request_id) = parts.headers.get("x-amzn-requestid") {
            failure
                .headers_mut()
                .insert("x-amzn-requestid", request_id.clone());
        }
        return failure;
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(translated.to_string()))
}

/// `GET /v1/models`: the operator's model names this customer may call (by name or by
/// Bedrock id), as OpenAI's model list. Not metered: nothing reaches Bedrock.
pub async fn openai_models(
    State(state): State<ProxyState>,
    Extension(call): Extension<Authenticated>,
) -> Response {
    let limits = &call.caller.customer.limits;
    let data: Vec<serde_json::Value> = state
        .config
        .model_names
        .entries()
        .iter()
        .filter(|entry| limits.allows_model_or_name(&entry.model_id, &entry.name))
        .map(|entry| {
            serde_json::json!({"id": entry.name, "object": "model", "created": 0, "owned_by": "tollgate"})
        })
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

/// Anthropic's routes, under `prefix` (`""` or `"/prod"`), authenticated, their errors in
/// Anthropic's shape.
pub fn anthropic_routes(state: &ProxyState, prefix: &str) -> Router<ProxyState> {
    Router::new()
        .route(&format!("{prefix}/v1/messages"), post(anthropic_messages))
        .route(
            &format!("{prefix}/v1/messages/count_tokens"),
            post(anthropic_count_tokens),
        )
        .route_layer(from_fn_with_state(state.clone(), authenticate_customer))
        .method_not_allowed_fallback(other_method)
        .layer(map_response(anthropic_errors))
}

/// OpenAI's routes, under `prefix`, authenticated, their errors in OpenAI's shape.
pub fn openai_routes(state: &ProxyState, prefix: &str) -> Router<ProxyState> {
    Router::new()
        .route(&format!("{prefix}/v1/chat/completions"), post(openai_chat))
        .route(&format!("{prefix}/v1/models"), get(openai_models))
        .route_layer(from_fn_with_state(state.clone(), authenticate_customer))
        .method_not_allowed_fallback(other_method)
        .layer(map_response(openai_errors))
}

/// A client API's path with another method: 404, as every unknown route (in the API's
/// error shape, through the router's layer).
async fn other_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::unknown_route(method.as_str(), uri.path()).into_response()
}

async fn anthropic_errors(response: Response) -> Response {
    reshape_error(response, crate::translate::anthropic::error_from).await
}

async fn openai_errors(response: Response) -> Response {
    reshape_error(response, crate::translate::openai::error_from).await
}

/// An error answered on a client API's route, by Tollgate (bad token, bad body, limits) or
/// by Bedrock, in that API's shape (`shape`), so its SDK raises its own error types.
/// Headers such as `Retry-After` and the request id are kept.
async fn reshape_error(response: Response, shape: fn(u16, &[u8]) -> serde_json::Value) -> Response {
    if response.status().is_success() {
        return response;
    }
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let shaped = shape(status.as_u16(), &bytes);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove("x-amzn-errortype");
    Response::from_parts(parts, Body::from(shaped.to_string()))
}
