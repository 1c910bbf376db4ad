//! OpenAI's Chat Completions API over Bedrock's Converse, as pure functions: the request
//! (messages, parameters and tools to Converse's body), the answer (Converse's output to a
//! `chat.completion`), the stream (ConverseStream's events to `chat.completion.chunk`
//! server-sent events ending with `data: [DONE]`) and errors in OpenAI's shape. A parameter
//! Bedrock cannot honour is refused by name, never dropped.

mod answer;
mod stream;

use bytes::Bytes;
use schemas::model_names::{ModelNames, ResolvedModel};
use serde_json::{Map, Value, json};

use crate::error_response::ApiError;

pub use answer::{completion, error_from, error_type, finish_reason};
pub use stream::ChunkTranslator;

/// A Chat Completions request, ready for Converse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: ResolvedModel,
    /// `stream: true`: ConverseStream.
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the usage.
    pub include_usage: bool,
    /// Converse's body.
    pub body: Bytes,
}

/// Parameters OpenAI defines that Converse cannot honour: refused by name.
const UNSUPPORTED: [&str; 12] = [
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "response_format",
    "parallel_tool_calls",
    "audio",
    "modalities",
    "prediction",
    "functions",
];

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    let mut error = ApiError::validation(message);
    error.details = Some(json!({ "param": param }));
    error
}

/// Maps a Chat Completions body to Converse's.
pub fn chat_request(body: &[u8], names: &ModelNames) -> Result<ChatRequest, ApiError> {
    let document: Value = serde_json::from_slice(body).map_err(|error| {
        invalid(
            "body",
            format!(
                "request body is not valid JSON ({error}); send {{\"model\": …, \"messages\": […]}}"
            ),
        )
    })?;
    let Value::Object(mut fields) = document else {
        return Err(invalid(
            "body",
            "request body must be a JSON object with \"model\" and \"messages\"",
        ));
    };
    let model = model_of(&mut fields, names)?;
    let stream = take_bool(&mut fields, "stream")?;
    let include_usage = include_usage(&mut fields)?;
    let mut converse = Map::new();
    let messages = fields
        .remove("messages")
        .ok_or_else(|| invalid("messages", "\"messages\" is required"))?;
    let (system, turns) = messages_of(&messages)?;
    converse.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        converse.insert("system".into(), Value::Array(system));
    }
    let inference = inference_config(&mut fields)?;
    if !inference.is_empty() {
        converse.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tools) = tool_config(&mut fields)? {
        converse.insert("toolConfig".into(), tools);
    }
    if fields.get("store") == Some(&Value::Bool(true)) {
        return Err(invalid(
            "store",
            "\"store\": true is not supported: Tollgate stores no completions",
        ));
    }
    // Labels for OpenAI's own bookkeeping (abuse monitoring, stored completions); Bedrock
    // has nothing to give them to, and they change nothing in the answer.
    for label in ["user", "store", "metadata"] {
        fields.remove(label);
    }
    if let Some(n) = fields.remove("n")
        && n != json!(1)
    {
        return Err(invalid(
            "n",
            "only \"n\": 1 is supported: Bedrock returns one choice",
        ));
    }
    if let Some(param) = fields.keys().next() {
        let reason = if UNSUPPORTED.contains(&param.as_str()) {
            "Bedrock's Converse API cannot honour it"
        } else {
            "it is not a Chat Completions parameter Tollgate knows"
        };
        return Err(invalid(
            param,
            format!("parameter \"{param}\" is not supported: {reason}; remove it"),
        ));
    }
    let body = serde_json::to_vec(&Value::Object(converse))
        .map_err(|error| invalid("body", format!("request could not be encoded: {error}")))?;
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        body: Bytes::from(body),
    })
}

/// `model`, resolved through the operator's names.
fn model_of(
    fields: &mut Map<String, Value>,
    names: &ModelNames,
) -> Result<ResolvedModel, ApiError> {
    let name = match fields.remove("model") {
        Some(Value::String(name)) if !name.trim().is_empty() => name,
        _ => {
            return Err(invalid(
                "model",
                "\"model\" is required: a model name such as \"claude-3-haiku\" or a Bedrock model id",
            ));
        }
    };
    let model = names.resolve(&name);
    schemas::model_id::check_model_id(&model.model_id).map_err(|error| {
        invalid(
            "model",
            format!("{error}; use a Bedrock model id or one of the operator's model names"),
        )
    })?;
    Ok(model)
}

/// `stream_options.include_usage`.
fn include_usage(fields: &mut Map<String, Value>) -> Result<bool, ApiError> {
    let include_usage = match fields.remove("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => options
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        Some(_) => {
            return Err(invalid(
                "stream_options",
                "\"stream_options\" must be an object",
            ));
        }
    };
    Ok(include_usage)
}

fn take_bool(fields: &mut Map<String, Value>, name: &str) -> Result<bool, ApiError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(value),
        Some(_) => Err(invalid(name, format!("\"{name}\" must be true or false"))),
    }
}

/// `max_tokens`/`max_completion_tokens`, `temperature`, `top_p` and `stop`.
fn inference_config(fields: &mut Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut config = Map::new();
    let max_tokens = fields
        .remove("max_completion_tokens")
        .or_else(|| fields.remove("max_tokens"));
    fields.remove("max_tokens");
    if let Some(value) = max_tokens.filter(|value| !value.is_null()) {
        let tokens = value
            .as_u64()
            .filter(|tokens| *tokens > 0)
            .ok_or_else(|| invalid("max_tokens", "\"max_tokens\" must be a positive integer"))?;
        config.insert("maxTokens".into(), json!(tokens));
    }
    for (name, converse) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(value) = fields.remove(name).filter(|value| !value.is_null()) {
            let number = value
                .as_f64()
                .ok_or_else(|| invalid(name, format!("\"{name}\" must be a number")))?;
            config.insert(converse.into(), json!(number));
        }
    }
    match fields.remove("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(stop)) => {
            config.insert("stopSequences".into(), json!([stop]));
        }
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            config.insert("stopSequences".into(), Value::Array(stops));
        }
        Some(_) => {
            return Err(invalid(
                "stop",
                "\"stop\" must be a string or a list of strings",
            ));
        }
    }
    Ok(config)
}

/// OpenAI's messages as Converse's `system` blocks and alternating turns.
fn messages_of(messages: &Value) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let Value::Array(messages) = messages else {
        return Err(invalid("messages", "\"messages\" must be a list"));
    };
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let param = format!("messages[{index}]");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&param, format!("{param} has no \"role\"")))?;
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.extend(text_blocks(message.get("content"), &param)?);
                continue;
            }
            "user" => ("user", content_blocks(message.get("content"), &param)?),
            "assistant" => ("assistant", assistant_blocks(message, &param)?),
            "tool" => ("user", vec![tool_result(message, &param)?]),
            other => {
                return Err(invalid(
                    &format!("{param}.role"),
                    format!(
                        "{param}.role {other:?} is not supported; use system, developer, user, assistant or tool"
                    ),
                ));
            }
        };
        match turns.last_mut() {
            // Converse wants turns to alternate: consecutive messages of a role join.
            Some((last, content)) if last == role => content.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

/// Text-only content (system messages): a string or text parts.
fn text_blocks(content: Option<&Value>, param: &str) -> Result<Vec<Value>, ApiError> {
    content_blocks(content, param)?
        .into_iter()
        .map(|block| {
            if block.get("text").is_some() {
                Ok(block)
            } else {
                Err(invalid(
                    param,
                    format!("{param}: system messages take text only"),
                ))
            }
        })
        .collect()
}

/// A user message's content: a string, or text and image parts.
fn content_blocks(content: Option<&Value>, param: &str) -> Result<Vec<Value>, ApiError> {
    match content {
        Some(Value::String(text)) => Ok(vec![json!({ "text": text })]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(index, part)| content_part(part, &format!("{param}.content[{index}]")))
            .collect(),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(invalid(
            param,
            format!("{param}.content must be a string or a list of parts"),
        )),
    }
}

fn content_part(part: &Value, param: &str) -> Result<Value, ApiError> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            let text = part
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(param, format!("{param} has no \"text\"")))?;
            Ok(json!({ "text": text }))
        }
        Some("image_url") => {
            let url = part
                .get("image_url")
                .and_then(|image| image.get("url"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(param, format!("{param} has no \"image_url.url\"")))?;
            image_block(url, param)
        }
        other => Err(invalid(
            param,
            format!("content part type {other:?} is not supported; use text or image_url"),
        )),
    }
}

/// A `data:image/…;base64,…` URL as Converse's image block; remote URLs are refused.
fn image_block(url: &str, param: &str) -> Result<Value, ApiError> {
    let refuse = || {
        invalid(
            param,
            format!(
                "{param}: give images inline as data:image/png;base64,… (png, jpeg, gif or webp); Bedrock does not fetch URLs"
            ),
        )
    };
    let rest = url.strip_prefix("data:image/").ok_or_else(refuse)?;
    let (format, data) = rest.split_once(";base64,").ok_or_else(refuse)?;
    let format = match format {
        "jpg" | "jpeg" => "jpeg",
        "png" | "gif" | "webp" => format,
        _ => return Err(refuse()),
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// An assistant message: its text, and its tool calls as `toolUse` blocks.
fn assistant_blocks(message: &Value, param: &str) -> Result<Vec<Value>, ApiError> {
    let mut blocks = content_blocks(message.get("content"), param)?;
    if let Some(calls) = message.get("tool_calls").filter(|calls| !calls.is_null()) {
        let calls = calls
            .as_array()
            .ok_or_else(|| invalid(param, format!("{param}.tool_calls must be a list")))?;
        for (index, call) in calls.iter().enumerate() {
            let at = format!("{param}.tool_calls[{index}]");
            let id = call.get("id").and_then(Value::as_str);
            let function = call.get("function");
            let name = function
                .and_then(|function| function.get("name"))
                .and_then(Value::as_str);
            let arguments = function
                .and_then(|function| function.get("arguments"))
                .and_then(Value::as_str)
                .unwrap_or("{}");
            let (Some(id), Some(name)) = (id, name) else {
                return Err(invalid(
                    &at,
                    format!("{at} needs \"id\" and \"function.name\""),
                ));
            };
            let input: Value = serde_json::from_str(arguments).map_err(|_| {
                invalid(
                    &at,
                    format!("{at}.function.arguments must be a JSON object as text"),
                )
            })?;
            blocks.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
        }
    }
    Ok(blocks)
}

/// A `tool` message as a `toolResult` block.
fn tool_result(message: &Value, param: &str) -> Result<Value, ApiError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(param, format!("{param} (role tool) needs \"tool_call_id\"")))?;
    let content = text_blocks(message.get("content"), param)?;
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}

/// `tools` and `tool_choice` as Converse's `toolConfig`.
fn tool_config(fields: &mut Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let tools = fields.remove("tools");
    let choice = fields.remove("tool_choice");
    let Some(Value::Array(tools)) = tools.filter(|tools| !tools.is_null()) else {
        return match choice {
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(invalid("tool_choice", "\"tool_choice\" needs \"tools\"")),
        };
    };
    let mut specs = Vec::new();
    for (index, tool) in tools.iter().enumerate() {
        let at = format!("tools[{index}]");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(invalid(
                &at,
                format!("{at}: only tools of type \"function\" are supported"),
            ));
        }
        let function = tool
            .get("function")
            .ok_or_else(|| invalid(&at, format!("{at} has no \"function\"")))?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&at, format!("{at}.function has no \"name\"")))?;
        let mut spec = json!({
            "name": name,
            "inputSchema": {"json": function.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}}))},
        });
        if let Some(description) = function.get("description").and_then(Value::as_str) {
            spec["description"] = json!(description);
        }
        specs.push(json!({ "toolSpec": spec }));
    }
    let mut config = json!({ "tools": specs });
    match choice {
        None | Some(Value::Null) => {}
        Some(Value::String(choice)) => match choice.as_str() {
            "auto" => config["toolChoice"] = json!({"auto": {}}),
            "required" => config["toolChoice"] = json!({"any": {}}),
            "none" => return Ok(None),
            other => {
                return Err(invalid(
                    "tool_choice",
                    format!(
                        "tool_choice {other:?} is not supported; use auto, required, none or a function"
                    ),
                ));
            }
        },
        Some(Value::Object(choice)) => {
            let name = choice
                .get("function")
                .and_then(|function| function.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice", "tool_choice needs function.name"))?;
            config["toolChoice"] = json!({"tool": {"name": name}});
        }
        Some(_) => {
            return Err(invalid(
                "tool_choice",
                "tool_choice must be a string or an object",
            ));
        }
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests;
