//! The body stage: read the request body within its size limit and timeout, find the
//! model (in the spec's body, or in Bedrock's path), check the model id's shape and the
//! customer's model allow-list.

use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use schemas::ApiSurface;

use crate::auth::Caller;
use crate::config::ProxyConfig;
use crate::error_response::ApiError;

/// Where a call names its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The spec's endpoint: `modelId` inside the JSON body, removed before forwarding.
    SpecBody,
    /// Bedrock's own routes: the (already percent-decoded) path segment; the body is
    /// forwarded unchanged.
    Path(String),
    /// Anthropic's Messages API: `model` in the body, a name from the operator's model
    /// names or a Bedrock id (`crate::translate::anthropic`); `stream` picks the operation.
    AnthropicMessages,
    /// OpenAI's Chat Completions: translated to Converse (`crate::translate::openai`);
    /// `stream` picks ConverseStream.
    OpenAiChat,
}

impl ModelSource {
    /// The API surface a call of this shape used, for its usage event.
    pub fn surface(&self) -> ApiSurface {
        match self {
            Self::SpecBody => ApiSurface::Spec,
            Self::Path(_) => ApiSurface::Bedrock,
            Self::AnthropicMessages => ApiSurface::Anthropic,
            Self::OpenAiChat => ApiSurface::OpenAi,
        }
    }
}

/// The model as a client API named it, and what its answer needs: put in the response's
/// extensions by [`crate::call::handle_call`] for the route that translates the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientModel {
    /// The `model` the client sent.
    pub name: String,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
}

/// A call whose body was read and validated.
#[derive(Debug, Clone)]
pub struct ValidatedBody {
    pub model_id: String,
    /// What is sent to the model.
    pub model_body: Bytes,
    /// The size of the body the client sent.
    pub request_bytes: u64,
    /// The operation the body chose, where it chooses (`stream: true`).
    pub operation: Option<schemas::Operation>,
    /// For the client APIs: the model as named, for the answer.
    pub client: Option<ClientModel>,
}

/// Reads the body and checks it: size and time limits, the model id (from `source`) and
/// its shape, and the customer's model allow-list. The error is the client's answer.
pub async fn read_and_validate(
    config: &ProxyConfig,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    source: ModelSource,
) -> Result<ValidatedBody, ApiError> {
    let body = read_body_limited(
        body,
        headers,
        config.max_body_bytes,
        config.body_read_timeout,
    )
    .await?;
    let mut operation = None;
    let mut name: Option<String> = None;
    let mut include_usage = false;
    let (model_id, model_body) = match source {
        ModelSource::SpecBody => split_spec_body(&body)?,
        ModelSource::Path(model_id) => {
            validate_model_id(&model_id)?;
            (model_id, body.clone())
        }
        ModelSource::AnthropicMessages => {
            let beta = headers
                .get("anthropic-beta")
                .and_then(|value| value.to_str().ok());
            let request =
                crate::translate::anthropic::messages_request(&body, beta, &config.model_names)?;
            operation = Some(if request.stream {
                schemas::Operation::InvokeStream
            } else {
                schemas::Operation::Invoke
            });
            name = Some(request.model.name);
            (request.model.model_id, request.body)
        }
        ModelSource::OpenAiChat => {
            let request = crate::translate::openai::chat_request(&body, &config.model_names)?;
            operation = Some(if request.stream {
                schemas::Operation::ConverseStream
            } else {
                schemas::Operation::Converse
            });
            include_usage = request.include_usage;
            name = Some(request.model.name);
            (request.model.model_id, request.body)
        }
    };
    check_model_allowed(caller, &model_id, name.as_deref())?;
    Ok(ValidatedBody {
        model_id,
        model_body,
        request_bytes: u64::try_from(body.len()).unwrap_or(u64::MAX),
        operation,
        client: name.map(|name| ClientModel {
            name,
            include_usage,
        }),
    })
}

/// The customer's model allow-list: 403 unless it allows `model_id`, or the client API's
/// model `name` that resolved to it.
pub fn check_model_allowed(
    caller: &Caller,
    model_id: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    let limits = &caller.customer.limits;
    let allowed = match name {
        Some(name) => limits.allows_model_or_name(model_id, name),
        None => limits.allows_model(model_id),
    };
    if allowed {
        return Ok(());
    }
    tracing::info!(customer_id = %caller.customer.customer_id, model_id, "request refused: model not allowed");
    Err(ApiError::forbidden(format!(
        "model {model_id} is not enabled for this account; ask your provider to enable it"
    )))
}

/// Splits the spec's body into the model id and the model's own body.
pub fn split_spec_body(body: &[u8]) -> Result<(String, Bytes), ApiError> {
    let document: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::validation(format!(
            "request body is not valid JSON ({error}); send the model's JSON body with a \"modelId\" field"
        ))
    })?;
    let serde_json::Value::Object(mut fields) = document else {
        return Err(ApiError::validation(
            "request body must be a JSON object with a \"modelId\" field and the model's parameters",
        ));
    };
    let model_id = match fields.remove("modelId") {
        Some(serde_json::Value::String(model_id)) => model_id,
        Some(_) => {
            return Err(ApiError::validation(
                "\"modelId\" must be a string, for example \"anthropic.claude-3-sonnet-20240229-v1:0\"",
            ));
        }
        None => {
            return Err(ApiError::validation(
                "request body has no \"modelId\"; add the Bedrock model id, for example \"modelId\": \"anthropic.claude-3-sonnet-20240229-v1:0\"",
            ));
        }
    };
    validate_model_id(&model_id)?;
    let model_body = serde_json::to_vec(&serde_json::Value::Object(fields)).map_err(|error| {
        ApiError::validation(format!("request body could not be re-encoded: {error}"))
    })?;
    Ok((model_id, Bytes::from(model_body)))
}

/// Checks a model id's shape against Bedrock's documented ids and ARNs (not whether the
/// model exists: Bedrock answers that), so that no malformed id costs an upstream call.
pub fn validate_model_id(model_id: &str) -> Result<(), ApiError> {
    schemas::model_id::check_model_id(model_id)
        .map_err(|error| ApiError::validation(error.to_string()))
}

/// Reads the whole body within the size limit and the body timeout.
pub async fn read_body_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(ApiError::payload_too_large(limit));
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| ApiError::body_timeout())?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(error) => Err(ApiError::validation(format!(
            "request body could not be read: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_id_is_taken_out_of_the_spec_body() {
        let body = br#"{"modelId":"anthropic.claude-3-sonnet-20240229-v1:0","anthropic_version":"bedrock-2023-05-31","max_tokens":1000,"messages":[]}"#;
        let (model_id, model_body) = split_spec_body(body).unwrap();
        assert_eq!(model_id, "anthropic.claude-3-sonnet-20240229-v1:0");
        let forwarded: serde_json::Value = serde_json::from_slice(&model_body).unwrap();
        assert!(forwarded.get("modelId").is_none());
        assert_eq!(forwarded["max_tokens"], 1000);
        assert_eq!(forwarded["anthropic_version"], "bedrock-2023-05-31");
    }

    #[test]
    fn malformed_spec_bodies_get_validation_errors_that_say_what_to_fix() {
        for (body, expected) in [
            (&b"not json"[..], "not valid JSON"),
            (b"[1,2]", "must be a JSON object"),
            (b"{}", "has no \"modelId\""),
            (br#"{"modelId":5}"#, "must be a string"),
            (br#"{"modelId":""}"#, "is empty"),
            (br#"{"modelId":"a b"}"#, "whitespace"),
            (
                br#"{"modelId":"../../admin"}"#,
                "modelId \"../../admin\" is not a Bedrock model id",
            ),
        ] {
            let error = split_spec_body(body).unwrap_err();
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(
                error.message.contains(expected),
                "{body:?}: {}",
                error.message
            );
        }
    }
}
