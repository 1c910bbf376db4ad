//! A deterministic stand-in for Bedrock, for trying Tollgate without AWS. Never used by tests
//! of the real path: those run against the wire-level fake Bedrock under `tests/`.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use schemas::Operation;
use schemas::bedrock_stream::{encode_event, encode_invoke_chunk};

use super::model_runtime::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse, header_map,
};

/// Answers every call with a fixed message whose token counts derive from the request: input
/// tokens are the request's whitespace-separated words, output tokens the answer's words.
#[derive(Debug, Default, Clone)]
pub struct SimulatedRuntime;

/// Word count of a body, the simulation's token count.
pub fn simulated_token_count(body: &[u8]) -> u64 {
    let words = String::from_utf8_lossy(body).split_whitespace().count();
    u64::try_from(words).unwrap_or(u64::MAX).max(1)
}

fn json_response(
    body: serde_json::Value,
    extra_headers: Vec<(String, String)>,
) -> UpstreamResponse {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "x-amzn-requestid".to_owned(),
            format!("simulated-{}", uuid::Uuid::now_v7()),
        ),
    ];
    headers.extend(extra_headers);
    UpstreamResponse {
        status: 200,
        headers: header_map(headers),
        body: UpstreamBody::Complete(Bytes::from(body.to_string())),
        upstream_latency: Duration::ZERO,
    }
}

fn stream_response(frames: Vec<Vec<u8>>) -> UpstreamResponse {
    let stream = futures::stream::iter(
        frames
            .into_iter()
            .map(|frame| Ok::<_, RuntimeError>(Bytes::from(frame))),
    );
    UpstreamResponse {
        status: 200,
        headers: header_map([
            (
                "content-type",
                "application/vnd.amazon.eventstream".to_owned(),
            ),
            (
                "x-amzn-requestid",
                format!("simulated-{}", uuid::Uuid::now_v7()),
            ),
        ]),
        body: UpstreamBody::Stream(stream.boxed()),
        upstream_latency: Duration::ZERO,
    }
}

#[async_trait]
impl ModelRuntime for SimulatedRuntime {
    async fn send(&self, invocation: ModelInvocation) -> Result<UpstreamResponse, RuntimeError> {
        let text = format!(
            "This is a simulated answer from {} via Tollgate.",
            invocation.model_id
        );
        let input_tokens = simulated_token_count(&invocation.body);
        let output_tokens = simulated_token_count(text.as_bytes());
        Ok(match invocation.operation {
            Operation::Invoke => json_response(
                serde_json::json!({
                    "id": "msg_simulated",
                    "type": "message",
                    "role": "assistant",
                    "model": invocation.model_id,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                }),
                vec![
                    ("x-amzn-bedrock-input-token-count".to_owned(), input_tokens.to_string()),
                    ("x-amzn-bedrock-output-token-count".to_owned(), output_tokens.to_string()),
                ],
            ),
            Operation::Converse => json_response(
                serde_json::json!({
                    "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                    "stopReason": "end_turn",
                    "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens},
                    "metrics": {"latencyMs": 0}
                }),
                Vec::new(),
            ),
            Operation::CountTokens => json_response(
                serde_json::json!({ "inputTokens": input_tokens }),
                Vec::new(),
            ),
            Operation::InvokeStream => stream_response(vec![
                encode_invoke_chunk(&serde_json::json!({"type": "message_start", "message": {
                    "id": "msg_simulated", "type": "message", "role": "assistant", "model": invocation.model_id,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1}}})),
                encode_invoke_chunk(&serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                encode_invoke_chunk(&serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})),
                encode_invoke_chunk(&serde_json::json!({"type": "content_block_stop", "index": 0})),
                encode_invoke_chunk(&serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}})),
                encode_invoke_chunk(&serde_json::json!({
                    "type": "message_stop",
                    "amazon-bedrock-invocationMetrics": {"inputTokenCount": input_tokens, "outputTokenCount": output_tokens}
                })),
            ]),
            Operation::ConverseStream => stream_response(vec![
                encode_event("messageStart", br#"{"role":"assistant"}"#),
                encode_event(
                    "contentBlockDelta",
                    serde_json::json!({"contentBlockIndex": 0, "delta": {"text": text}}).to_string().as_bytes(),
                ),
                encode_event("messageStop", br#"{"stopReason":"end_turn"}"#),
                encode_event(
                    "metadata",
                    serde_json::json!({"usage": {"inputTokens": input_tokens, "outputTokens": output_tokens}}).to_string().as_bytes(),
                ),
            ]),
        })
    }
}
