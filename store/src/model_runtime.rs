//! The `ModelRuntime` port: the model provider the proxy forwards calls to.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use schemas::bedrock_usage::TokenUsage;

/// One InvokeModel call, as the proxy forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInvocation {
    pub model_id: String,
    /// The model's native request body (JSON), without Tollgate's `modelId`.
    pub body: Bytes,
    pub content_type: String,
    pub accept: String,
}

/// The provider's answer, success or error, to pass back to the client as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAnswer {
    pub status: u16,
    pub body: Bytes,
    pub content_type: String,
    /// The provider's request id (`x-amzn-requestid`).
    pub upstream_request_id: Option<String>,
    /// The provider's error type (`x-amzn-errortype`), for error answers.
    pub error_type: Option<String>,
    /// Token counts, from headers or the body; `None` when the answer had none.
    pub usage: Option<TokenUsage>,
    /// Time spent waiting on the provider.
    pub upstream_latency: Duration,
}

/// Why no answer was received at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("model provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("model provider unreachable: {0}")]
    Unreachable(String),
    #[error("model provider call failed: {0}")]
    Failed(String),
}

/// A model provider.
///
/// Contract: `invoke` returns `Ok` for every answer the provider gave, including its
/// 4xx and 5xx error answers, which are passed through to the client unchanged. It returns
/// `Err` only when no answer was received. It does not retry.
#[async_trait]
pub trait ModelRuntime: Send + Sync {
    /// Sends one InvokeModel call.
    async fn invoke(&self, invocation: ModelInvocation) -> Result<ModelAnswer, RuntimeError>;
}
