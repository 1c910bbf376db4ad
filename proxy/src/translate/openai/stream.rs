//! ConverseStream's events as OpenAI's `chat.completion.chunk` server-sent events.

use schemas::bedrock_stream::{FrameReader, header_string};
use serde_json::{Value, json};

use super::answer::{error_from, finish_reason, usage_of};

/// Turns ConverseStream's bytes, fed as they arrive, into `chat.completion.chunk` events
/// and a final `data: [DONE]`; with `include_usage`, a last chunk carries the usage.
#[derive(Debug)]
pub struct ChunkTranslator {
    reader: FrameReader,
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    /// Tool calls started so far, by content block index: their position in `tool_calls`.
    tools: Vec<u64>,
    ended: bool,
}

impl ChunkTranslator {
    pub fn new(id: &str, model: &str, created: i64, include_usage: bool) -> Self {
        Self {
            reader: FrameReader::new(),
            id: id.to_owned(),
            model: model.to_owned(),
            created,
            include_usage,
            tools: Vec::new(),
            ended: false,
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> String {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    }

    fn delta(&self, delta: Value, finish: Option<&str>) -> String {
        self.chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": finish}]),
            None,
        )
    }

    /// The events `bytes` complete, as text to send.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        if self.ended {
            return String::new();
        }
        let messages = match self.reader.push(bytes) {
            Ok(messages) => messages,
            Err(reason) => {
                self.ended = true;
                let error = error_from(
                    502,
                    json!({"message": format!("the model's stream could not be read: {reason}")})
                        .to_string()
                        .as_bytes(),
                );
                return format!("data: {error}\n\n");
            }
        };
        let mut out = String::new();
        for message in &messages {
            if header_string(message, ":message-type") == Some("exception") {
                let payload = message.payload();
                let status = if header_string(message, ":exception-type")
                    .is_some_and(|kind| kind.to_lowercase().contains("throttling"))
                {
                    429
                } else {
                    500
                };
                out.push_str(&format!("data: {}\n\n", error_from(status, payload)));
                self.ended = true;
                break;
            }
            let Ok(event) = serde_json::from_slice::<Value>(message.payload()) else {
                continue;
            };
            out.push_str(&self.event(header_string(message, ":event-type").unwrap_or(""), &event));
            if self.ended {
                break;
            }
        }
        out
    }

    fn event(&mut self, kind: &str, event: &Value) -> String {
        match kind {
            "messageStart" => self.delta(json!({"role": "assistant", "content": ""}), None),
            "contentBlockStart" => {
                let Some(tool) = event.get("start").and_then(|start| start.get("toolUse")) else {
                    return String::new();
                };
                let index = event
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                self.tools.push(index);
                let position = self.tools.len() - 1;
                self.delta(json!({"tool_calls": [{"index": position, "id": tool.get("toolUseId"), "type": "function",
                    "function": {"name": tool.get("name"), "arguments": ""}}]}), None)
            }
            "contentBlockDelta" => {
                let delta = event.get("delta");
                if let Some(text) = delta
                    .and_then(|delta| delta.get("text"))
                    .and_then(Value::as_str)
                {
                    return self.delta(json!({ "content": text }), None);
                }
                let Some(input) = delta
                    .and_then(|delta| delta.get("toolUse"))
                    .and_then(|tool| tool.get("input"))
                    .and_then(Value::as_str)
                else {
                    return String::new();
                };
                let index = event
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let position = self
                    .tools
                    .iter()
                    .position(|known| *known == index)
                    .unwrap_or(0);
                self.delta(
                    json!({"tool_calls": [{"index": position, "function": {"arguments": input}}]}),
                    None,
                )
            }
            "messageStop" => {
                let stop = event
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                self.delta(json!({}), Some(finish_reason(stop)))
            }
            "metadata" => {
                self.ended = true;
                let mut out = String::new();
                if self.include_usage {
                    out.push_str(&self.chunk(json!([]), Some(usage_of(event.get("usage")))));
                }
                out.push_str("data: [DONE]\n\n");
                out
            }
            _ => String::new(),
        }
    }
}
