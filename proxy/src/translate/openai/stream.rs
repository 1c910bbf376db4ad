//! ConverseStream's events as OpenAI's `chat.completion.chunk` server-sent events.

use serde_json::{Value, json};

use super::answer::{error_from, finish_reason, usage_of};
use crate::translate::{EventReader, StreamItem};

/// Turns ConverseStream's bytes, fed as they arrive, into `chat.completion.chunk` events
/// and a final `data: [DONE]`; with `include_usage`, a last chunk carries the usage.
#[derive(Debug)]
pub struct ChunkTranslator {
    events: EventReader,
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
            events: EventReader::default(),
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
        let mut out = String::new();
        if self.ended {
            return out;
        }
        for item in self.events.push(bytes) {
            match item {
                StreamItem::Failure { status, message } => {
                    let error =
                        error_from(status, json!({ "message": message }).to_string().as_bytes());
                    out.push_str(&format!("data: {error}\n\n"));
                    self.ended = true;
                }
                StreamItem::Event { kind, payload } => {
                    let Ok(event) = serde_json::from_slice::<Value>(&payload) else {
                        continue;
                    };
                    out.push_str(&self.event(&kind, &event));
                }
            }
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
