//! A deterministic stand-in for Bedrock, for trying Tollgate without AWS. Never used by tests
//! of the real path: those run against the wire-level fake Bedrock under `tests/`.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use schemas::bedrock_usage::TokenUsage;

use crate::model_runtime::{ModelAnswer, ModelInvocation, ModelRuntime, RuntimeError};

/// Answers every call with a fixed Anthropic-style message whose token counts derive from
/// the request: input tokens are the request's whitespace-separated words, output tokens
/// are the words of the answer.
#[derive(Debug, Default, Clone)]
pub struct SimulatedRuntime;

/// Word count of a body, the simulation's token count.
pub fn simulated_token_count(body: &[u8]) -> u64 {
    let words = String::from_utf8_lossy(body).split_whitespace().count();
    u64::try_from(words).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl ModelRuntime for SimulatedRuntime {
    async fn invoke(&self, invocation: ModelInvocation) -> Result<ModelAnswer, RuntimeError> {
        let text = format!(
            "This is a simulated answer from {} via Tollgate.",
            invocation.model_id
        );
        let usage = TokenUsage {
            input_tokens: simulated_token_count(&invocation.body),
            output_tokens: simulated_token_count(text.as_bytes()),
            ..TokenUsage::default()
        };
        let body = serde_json::json!({
            "id": "msg_simulated",
            "type": "message",
            "role": "assistant",
            "model": invocation.model_id,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        });
        Ok(ModelAnswer {
            status: 200,
            body: Bytes::from(body.to_string()),
            content_type: "application/json".into(),
            upstream_request_id: Some(format!("simulated-{}", uuid::Uuid::now_v7())),
            error_type: None,
            usage: Some(usage),
            upstream_latency: Duration::ZERO,
        })
    }
}
