//! Anthropic's Messages API over Bedrock, as pure functions: the request body (`model`
//! resolved to a Bedrock id, `stream` taken out, `anthropic_version` added), the streamed
//! answer (Bedrock's event-stream `chunk` events back to Anthropic's server-sent events),
//! and errors in Anthropic's shape. Bedrock's Claude models take and give Anthropic's own
//! message bodies, so nothing else changes.

use bytes::Bytes;
use schemas::bedrock_stream::invoke_chunk;
use schemas::model_names::{ModelNames, ResolvedModel};
use serde_json::{Map, Value, json};

use crate::error_response::ApiError;
use crate::translate::{EventReader, StreamItem};

/// The version Bedrock's Anthropic models require in the body.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// A Messages request, ready for Bedrock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesRequest {
    pub model: ResolvedModel,
    /// `stream: true`: InvokeModelWithResponseStream.
    pub stream: bool,
    /// The body Bedrock receives.
    pub body: Bytes,
}

fn field_error(message: impl Into<String>) -> ApiError {
    ApiError::validation(message)
}

/// Maps a Messages body: `model` (required, a name or a Bedrock id) is resolved and taken
/// out, `stream` (a boolean) taken out, `anthropic_version` set when absent, and the
/// `anthropic-beta` header's features given as `anthropic_beta`.
pub fn messages_request(
    body: &[u8],
    beta: Option<&str>,
    names: &ModelNames,
) -> Result<MessagesRequest, ApiError> {
    let document: Value = serde_json::from_slice(body).map_err(|error| {
        field_error(format!(
            "request body is not valid JSON ({error}); send a Messages request: {{\"model\": …, \"max_tokens\": …, \"messages\": […]}}"
        ))
    })?;
    let Value::Object(mut fields) = document else {
        return Err(field_error(
            "request body must be a JSON object with \"model\", \"max_tokens\" and \"messages\"",
        ));
    };
    let name = match fields.remove("model") {
        Some(Value::String(name)) if !name.trim().is_empty() => name,
        Some(_) => {
            return Err(field_error(
                "\"model\" must be a non-empty string, for example \"claude-sonnet-4-5\"",
            ));
        }
        None => {
            return Err(field_error(
                "request body has no \"model\"; name the model, for example \"model\": \"claude-sonnet-4-5\"",
            ));
        }
    };
    let stream = match fields.remove("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => stream,
        Some(_) => return Err(field_error("\"stream\" must be true or false")),
    };
    fields
        .entry("anthropic_version")
        .or_insert_with(|| Value::String(BEDROCK_ANTHROPIC_VERSION.to_owned()));
    if let Some(beta) = beta {
        let features: Vec<Value> = beta
            .split(',')
            .map(str::trim)
            .filter(|feature| !feature.is_empty())
            .map(|feature| Value::String(feature.to_owned()))
            .collect();
        if !features.is_empty() {
            fields
                .entry("anthropic_beta")
                .or_insert(Value::Array(features));
        }
    }
    let model = names.resolve(&name);
    schemas::model_id::check_model_id(&model.model_id).map_err(|error| {
        field_error(format!(
            "{error}; use a Bedrock model id or one of the operator's model names"
        ))
    })?;
    let body = serde_json::to_vec(&Value::Object(fields))
        .map_err(|error| field_error(format!("request body could not be re-encoded: {error}")))?;
    Ok(MessagesRequest {
        model,
        stream,
        body: Bytes::from(body),
    })
}

/// A `count_tokens` request, ready for Bedrock's CountTokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountTokensRequest {
    pub model: ResolvedModel,
    /// The foundation model CountTokens is asked about (it takes no inference profile).
    pub bedrock_model_id: String,
    /// `{"input": {"invokeModel": {"body": <the Messages body, base64>}}}`.
    pub body: Bytes,
}

/// Geography prefixes of Bedrock's cross-region inference profiles.
const PROFILE_PREFIXES: [&str; 8] = [
    "us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.",
];

/// The foundation model behind an inference profile id (`us.anthropic.claude-…` →
/// `anthropic.claude-…`); any other id as it is.
pub fn base_model_id(model_id: &str) -> &str {
    PROFILE_PREFIXES
        .iter()
        .find_map(|prefix| model_id.strip_prefix(prefix))
        .filter(|rest| rest.contains('.'))
        .unwrap_or(model_id)
}

/// Maps a `count_tokens` body (a Messages body without `max_tokens`) to CountTokens'.
pub fn count_tokens_request(
    body: &[u8],
    beta: Option<&str>,
    names: &ModelNames,
) -> Result<CountTokensRequest, ApiError> {
    use base64::Engine;
    let request = messages_request(body, beta, names)?;
    let mut inner: Map<String, Value> = serde_json::from_slice(&request.body)
        .map_err(|error| field_error(format!("request body could not be read: {error}")))?;
    // Bedrock reads the body as an InvokeModel body, which names a ceiling of output
    // tokens; counting input tokens does not depend on it.
    inner.entry("max_tokens").or_insert(json!(1));
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(Value::Object(inner).to_string());
    let body = json!({"input": {"invokeModel": {"body": encoded}}}).to_string();
    Ok(CountTokensRequest {
        bedrock_model_id: base_model_id(&request.model.model_id).to_owned(),
        model: request.model,
        body: Bytes::from(body),
    })
}

/// CountTokens' answer (`{"inputTokens": n}`) as Anthropic's (`{"input_tokens": n}`).
pub fn count_tokens_answer(answer: &[u8]) -> Option<Value> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    Some(json!({ "input_tokens": answer.get("inputTokens")?.as_u64()? }))
}

/// Anthropic's error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// Anthropic's error body around a message.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(status), "message": message}})
}

/// One server-sent event.
fn sse(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Turns Bedrock's InvokeModelWithResponseStream bytes, fed as they arrive, into
/// Anthropic's server-sent events: each `chunk`'s model event as `event: <type>`, without
/// Bedrock's `amazon-bedrock-invocationMetrics`; an exception or undecodable bytes as one
/// `error` event, after which nothing more is sent.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    events: EventReader,
}

impl StreamTranslator {
    /// The events `bytes` complete, as text to send (empty when none is complete).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        for item in self.events.push(bytes) {
            match item {
                StreamItem::Failure { status, message } => {
                    out.push_str(&sse("error", &error_body(status, &message)));
                }
                StreamItem::Event { kind, payload } if kind == "chunk" => {
                    let Some(Value::Object(mut chunk)) = invoke_chunk(&payload) else {
                        continue;
                    };
                    chunk.remove("amazon-bedrock-invocationMetrics");
                    let event = chunk
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("message")
                        .to_owned();
                    out.push_str(&sse(&event, &Value::Object(chunk)));
                }
                StreamItem::Event { .. } => {}
            }
        }
        out
    }
}

/// A Messages answer's error from any error body Tollgate or Bedrock gave (`{"message"}`),
/// or from the status alone.
pub fn error_from(status: u16, body: &[u8]) -> Value {
    let message = serde_json::from_slice::<Map<String, Value>>(body)
        .ok()
        .and_then(|fields| fields.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the request failed with status {status}"));
    error_body(status, &message)
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
