//! Converse's answers as OpenAI's: a `chat.completion`, finish reasons, usage, and errors
//! in OpenAI's shape.

use serde_json::{Map, Value, json};

/// Converse's stop reason as OpenAI's finish reason.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "content_filtered" | "guardrail_intervened" => "content_filter",
        _ => "stop",
    }
}

pub(super) fn usage_of(usage: Option<&Value>) -> Value {
    let count = |name: &str| {
        usage
            .and_then(|usage| usage.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let (input, output) = (count("inputTokens"), count("outputTokens"));
    json!({
        "prompt_tokens": input,
        "completion_tokens": output,
        "total_tokens": input + output,
        "prompt_tokens_details": {"cached_tokens": count("cacheReadInputTokens")},
    })
}

/// A Converse answer as a `chat.completion`; `None` when it is not Converse's shape.
pub fn completion(answer: &[u8], id: &str, model: &str, created: i64) -> Option<Value> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    let content = answer
        .get("output")?
        .get("message")?
        .get("content")?
        .as_array()?;
    let text: String = content
        .iter()
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    let calls: Vec<Value> = content
        .iter()
        .filter_map(|block| block.get("toolUse"))
        .map(|call| {
            json!({
                "id": call.get("toolUseId").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": call.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": call.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                },
            })
        })
        .collect();
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let stop = answer
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    Some(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(stop)}],
        "usage": usage_of(answer.get("usage")),
    }))
}

/// OpenAI's error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// OpenAI's error body from any error body Tollgate or Bedrock gave.
pub fn error_from(status: u16, body: &[u8]) -> Value {
    let fields = serde_json::from_slice::<Map<String, Value>>(body).unwrap_or_default();
    let message = fields.get("message").and_then(Value::as_str).map_or_else(
        || format!("the request failed with status {status}"),
        str::to_owned,
    );
    let param = fields.get("param").cloned().unwrap_or(Value::Null);
    let code = fields.get("limit").cloned().unwrap_or(Value::Null);
    json!({"error": {"message": message, "type": error_type(status), "param": param, "code": code}})
}
