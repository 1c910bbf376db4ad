//! The `ModelRuntime` port: the model provider the proxy forwards calls to, byte for byte.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderName, HeaderValue};
use schemas::Operation;

/// One call to forward: the operation, the model, the client's body and the headers that
/// matter to the provider (`content-type`, `accept`, `x-amzn-bedrock-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInvocation {
    pub operation: Operation,
    pub model_id: String,
    pub body: Bytes,
    /// The client's own values, shared with its request (no copy per call); always
    /// visible ASCII, so the signer reads them as text.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The headers of a JSON call: `content-type` and `accept` both `application/json`.
pub fn json_headers() -> Vec<(HeaderName, HeaderValue)> {
    let json = HeaderValue::from_static("application/json");
    vec![
        (http::header::CONTENT_TYPE, json.clone()),
        (http::header::ACCEPT, json),
    ]
}

/// The provider's answer body: whole, or a stream of bytes as they arrive.
pub enum UpstreamBody {
    Complete(Bytes),
    Stream(BoxStream<'static, Result<Bytes, RuntimeError>>),
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Complete(bytes) => write!(formatter, "Complete({} bytes)", bytes.len()),
            Self::Stream(_) => formatter.write_str("Stream"),
        }
    }
}

/// The provider's answer, success or error, to pass back to the client as it is.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: u16,
    /// Response headers, as the provider sent them (names in lowercase).
    pub headers: HeaderMap,
    pub body: UpstreamBody,
    /// Time until the provider's response headers arrived.
    pub upstream_latency: Duration,
}

impl UpstreamResponse {
    /// The first value of a header (name in lowercase), when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Response headers from name and value pairs, for answers made rather than received (the
/// simulated runtime, tests); a pair that is not a valid header is left out.
pub fn header_map<N: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (N, V)>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_ref().as_bytes()),
            HeaderValue::from_str(value.as_ref()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// Why no answer was received at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("model provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("model provider unreachable: {0}")]
    Unreachable(String),
    #[error("the proxy's own AWS credentials are unavailable: {0}")]
    Credentials(String),
    #[error("model provider call failed: {0}")]
    Failed(String),
}

/// A model provider.
///
/// Contract: `send` returns `Ok` for every answer the provider gave, including its 4xx and
/// 5xx error answers, which the proxy passes through. It returns `Err` only when no answer
/// was received. Streamed answers (status 200 of a streaming operation) come as
/// [`UpstreamBody::Stream`], never buffered whole. It does not retry.
#[async_trait]
pub trait ModelRuntime: Send + Sync {
    /// Sends one call.
    async fn send(&self, invocation: ModelInvocation) -> Result<UpstreamResponse, RuntimeError>;
}

/// The path segment of an operation in Bedrock's runtime API.
pub fn operation_path(operation: Operation) -> &'static str {
    match operation {
        Operation::Invoke => "invoke",
        Operation::InvokeStream => "invoke-with-response-stream",
        Operation::Converse => "converse",
        Operation::ConverseStream => "converse-stream",
        Operation::CountTokens => "count-tokens",
    }
}

/// The operation a path segment of Bedrock's runtime API names.
pub fn operation_from_path(segment: &str) -> Option<Operation> {
    [
        Operation::Invoke,
        Operation::InvokeStream,
        Operation::Converse,
        Operation::ConverseStream,
    ]
    .into_iter()
    .find(|operation| operation_path(*operation) == segment)
}

/// Whether an operation's successful answer is an event stream.
pub fn is_streaming(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::InvokeStream | Operation::ConverseStream
    )
}

/// Percent-encodes a model id for a URL path segment, as the AWS SDKs do (`:` → `%3A`,
/// `/` → `%2F`); only unreserved characters stay as they are.
pub fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len() + 8);
    push_percent_encoded(&mut encoded, segment, b"");
    encoded
}

/// Appends `text` percent-encoded (upper-case hex): unreserved characters and the bytes
/// in `keep` as they are, every other byte as `%XX`.
pub fn push_percent_encoded(out: &mut String, text: &str, keep: &[u8]) {
    const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || keep.contains(&byte)
        {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(byte >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_paths_round_trip() {
        for operation in [
            Operation::Invoke,
            Operation::InvokeStream,
            Operation::Converse,
            Operation::ConverseStream,
        ] {
            assert_eq!(
                operation_from_path(operation_path(operation)),
                Some(operation)
            );
        }
        assert_eq!(operation_from_path("invoke-model"), None);
    }

    #[test]
    fn model_ids_are_encoded_like_the_sdks_do() {
        assert_eq!(
            encode_path_segment("anthropic.claude-3-sonnet-20240229-v1:0"),
            "anthropic.claude-3-sonnet-20240229-v1%3A0"
        );
        assert_eq!(
            encode_path_segment(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
            ),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
    }
}
