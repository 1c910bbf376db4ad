//! A wire-level fake of the Bedrock runtime API, for tests and benchmarks.
//!
//! It serves the four runtime operations the way Bedrock does:
//! - `POST /model/{modelId}/invoke`: the model's JSON body with `usage`, and the
//!   `x-amzn-bedrock-input-token-count` / `-output-token-count` headers;
//! - `POST /model/{modelId}/invoke-with-response-stream`: AWS event-stream frames of `chunk`
//!   events (base64 model chunks: Anthropic's `message_start`, `content_block_start`,
//!   deltas, `content_block_stop`, `message_delta`, `message_stop`), the last one carrying
//!   `amazon-bedrock-invocationMetrics`;
//! - `POST /model/{modelId}/converse`: `output`, `stopReason`, `usage`, `metrics`; offered
//!   tools (`toolConfig`) it calls the first one, until the conversation holds its result;
//! - `POST /model/{modelId}/converse-stream`: `messageStart`, `contentBlockDelta`,
//!   `messageStop` and `metadata` (with `usage`) events.
//!
//! Errors use Bedrock's shape (`{"message": …}` with `x-amzn-errortype`). Requests without
//! a SigV4 `Authorization` header are refused. Faults can be injected: throttling, 5xx, a
//! slow first byte, a stream cut mid-way and a malformed chunk. Every answered call is
//! recorded with the token counts the fake reported.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use schemas::bedrock_stream::{encode_event, encode_invoke_chunk};
use tokio::net::TcpListener;

/// What the fake does with the next calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Answer like Bedrock.
    Normal,
    /// 429 ThrottlingException.
    Throttle,
    /// 500 InternalServerException.
    ServerError,
    /// Answer normally after a delay before the first byte.
    Slow(Duration),
    /// Streams stop (the connection closes) after this many frames.
    CutStreamAfter(usize),
    /// Streams send a corrupt frame after the first one.
    MalformedChunk,
    /// 403 AccessDeniedException, as when the caller's AWS identity lacks model access.
    AccessDenied,
}

/// One of the four runtime operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeOperation {
    Invoke,
    InvokeStream,
    Converse,
    ConverseStream,
}

/// One call the fake answered (with 200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredCall {
    pub operation: FakeOperation,
    pub model_id: String,
    pub request_id: String,
    pub body: serde_json::Value,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug)]
struct FakeState {
    behavior: Mutex<Behavior>,
    stream_chunks: Mutex<usize>,
    chunk_text_bytes: Mutex<usize>,
    answered: Mutex<Vec<AnsweredCall>>,
    refused_unsigned: Mutex<u64>,
    /// Whether answered calls are kept for `answered()` (off for load benchmarks).
    recording: std::sync::atomic::AtomicBool,
    answered_count: std::sync::atomic::AtomicU64,
    /// Calls that came over HTTP/2.
    http2_calls: std::sync::atomic::AtomicU64,
    /// CountTokens calls answered: (model id, the counted body).
    counted: Mutex<Vec<(String, serde_json::Value)>>,
}

/// A running fake Bedrock on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct FakeBedrock {
    pub address: SocketAddr,
    state: Arc<FakeState>,
    /// `https` when it serves TLS ([`FakeBedrock::start_tls`]).
    scheme: &'static str,
}

/// Deterministic token counts for a request body: input from its length, output from input.
pub fn fake_token_counts(body: &[u8]) -> (u64, u64) {
    let input_tokens = (body.len() as u64 / 4).max(1);
    let output_tokens = 5 + input_tokens % 7;
    (input_tokens, output_tokens)
}

fn bedrock_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/json".to_owned()),
            (
                "x-amzn-errortype",
                format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            ),
            ("x-amzn-requestid", uuid::Uuid::now_v7().to_string()),
        ],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn is_sigv4_signed(headers: &HeaderMap) -> bool {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    authorization.starts_with("AWS4-HMAC-SHA256 Credential=")
        && authorization.contains("Signature=")
        && headers.contains_key("x-amz-date")
}

/// The tool a Converse request offers and has not had answered yet: the fake then calls
/// it (the first tool, with `{"location": "Paris"}`), as a model asked about the weather
/// would. After a `toolResult` it answers in text.
fn tool_to_call(request: &serde_json::Value) -> Option<String> {
    let name = request["toolConfig"]["tools"][0]["toolSpec"]["name"].as_str()?;
    let answered = request["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|last| last["content"].as_array())
        .is_some_and(|content| {
            content
                .iter()
                .any(|block| block.get("toolResult").is_some())
        });
    (!answered).then(|| name.to_owned())
}

/// The fake's tool call: its id and input.
const FAKE_TOOL_USE_ID: &str = "tooluse_fake1";

/// ConverseStream's frames of a tool call.
fn tool_stream_frames(name: &str, input_tokens: u64, output_tokens: u64) -> Vec<Vec<u8>> {
    let start = serde_json::json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": FAKE_TOOL_USE_ID, "name": name}}});
    let delta = serde_json::json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"location\": \"Paris\"}"}}});
    let metadata = serde_json::json!({
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": 321}
    });
    vec![
        encode_event("messageStart", br#"{"role":"assistant"}"#),
        encode_event("contentBlockStart", start.to_string().as_bytes()),
        encode_event("contentBlockDelta", delta.to_string().as_bytes()),
        encode_event("contentBlockStop", br#"{"contentBlockIndex":0}"#),
        encode_event("messageStop", br#"{"stopReason":"tool_use"}"#),
        encode_event("metadata", metadata.to_string().as_bytes()),
    ]
}

/// The frames of a streamed answer with `chunks` text pieces.
fn stream_frames(
    operation: FakeOperation,
    input_tokens: u64,
    output_tokens: u64,
    chunks: usize,
    padding: &str,
) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    match operation {
        FakeOperation::InvokeStream => {
            frames.push(encode_invoke_chunk(&serde_json::json!({
                "type": "message_start",
                "message": {
                    "id": "msg_bdrk_stream", "type": "message", "role": "assistant",
                    "model": "claude-3-sonnet-20240229", "content": [],
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1}
                }
            })));
            frames.push(encode_invoke_chunk(&serde_json::json!({
                "type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}
            })));
            for index in 0..chunks {
                frames.push(encode_invoke_chunk(&serde_json::json!({
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": format!("piece {index} {padding}")}
                })));
            }
            frames.push(encode_invoke_chunk(&serde_json::json!({
                "type": "content_block_stop", "index": 0
            })));
            frames.push(encode_invoke_chunk(&serde_json::json!({
                "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}
            })));
            frames.push(encode_invoke_chunk(&serde_json::json!({
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": input_tokens, "outputTokenCount": output_tokens,
                    "invocationLatency": 321, "firstByteLatency": 45
                }
            })));
        }
        _ => {
            frames.push(encode_event("messageStart", br#"{"role":"assistant"}"#));
            for index in 0..chunks {
                let delta = serde_json::json!({"contentBlockIndex": 0, "delta": {"text": format!("piece {index} {padding}")}});
                frames.push(encode_event(
                    "contentBlockDelta",
                    delta.to_string().as_bytes(),
                ));
            }
            frames.push(encode_event(
                "contentBlockStop",
                br#"{"contentBlockIndex":0}"#,
            ));
            frames.push(encode_event("messageStop", br#"{"stopReason":"end_turn"}"#));
            let metadata = serde_json::json!({
                "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens},
                "metrics": {"latencyMs": 321}
            });
            frames.push(encode_event("metadata", metadata.to_string().as_bytes()));
        }
    }
    frames
}

#[allow(clippy::too_many_lines)] // one match over every route and injected fault the fake serves
async fn answer(
    state: Arc<FakeState>,
    operation: FakeOperation,
    model_id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_sigv4_signed(&headers) {
        *state.refused_unsigned.lock().unwrap() += 1;
        return bedrock_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "Missing Authentication Token",
        );
    }
    let behavior = state.behavior.lock().unwrap().clone();
    match behavior {
        Behavior::Throttle => {
            return bedrock_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        Behavior::ServerError => {
            return bedrock_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "Internal server error",
            );
        }
        Behavior::AccessDenied => {
            return bedrock_error(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            );
        }
        Behavior::Slow(delay) => tokio::time::sleep(delay).await,
        _ => {}
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bedrock_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    let (input_tokens, output_tokens) = fake_token_counts(&body);
    let request_id = uuid::Uuid::now_v7().to_string();
    state
        .answered_count
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if state.recording.load(std::sync::atomic::Ordering::Relaxed) {
        state.answered.lock().unwrap().push(AnsweredCall {
            operation,
            model_id,
            request_id: request_id.clone(),
            body: request.clone(),
            input_tokens,
            output_tokens,
        });
    }
    match operation {
        FakeOperation::Invoke => {
            let answer = serde_json::json!({
                "id": format!("msg_bdrk_{}", &request_id[..8]),
                "type": "message",
                "role": "assistant",
                "model": "claude-3-sonnet-20240229",
                "content": [{"type": "text", "text": "The capital of France is Paris."}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            });
            (
                StatusCode::OK,
                [
                    ("content-type", "application/json".to_owned()),
                    ("x-amzn-requestid", request_id),
                    ("x-amzn-bedrock-input-token-count", input_tokens.to_string()),
                    (
                        "x-amzn-bedrock-output-token-count",
                        output_tokens.to_string(),
                    ),
                    ("x-amzn-bedrock-invocation-latency", "321".to_owned()),
                ],
                answer.to_string(),
            )
                .into_response()
        }
        FakeOperation::Converse => {
            let (content, stop) = match tool_to_call(&request) {
                Some(name) => (
                    serde_json::json!([{"toolUse": {"toolUseId": FAKE_TOOL_USE_ID, "name": name, "input": {"location": "Paris"}}}]),
                    "tool_use",
                ),
                None => (
                    serde_json::json!([{"text": "The capital of France is Paris."}]),
                    "end_turn",
                ),
            };
            let answer = serde_json::json!({
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop,
                "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens},
                "metrics": {"latencyMs": 321}
            });
            (
                StatusCode::OK,
                [
                    ("content-type", "application/json".to_owned()),
                    ("x-amzn-requestid", request_id),
                ],
                answer.to_string(),
            )
                .into_response()
        }
        FakeOperation::InvokeStream | FakeOperation::ConverseStream => {
            let chunks = *state.stream_chunks.lock().unwrap();
            let padding = "x".repeat(*state.chunk_text_bytes.lock().unwrap());
            let tool = (operation == FakeOperation::ConverseStream)
                .then(|| tool_to_call(&request))
                .flatten();
            let mut frames = match tool {
                Some(name) => tool_stream_frames(&name, input_tokens, output_tokens),
                None => stream_frames(operation, input_tokens, output_tokens, chunks, &padding),
            };
            match behavior {
                Behavior::CutStreamAfter(count) => frames.truncate(count),
                Behavior::MalformedChunk => {
                    frames.insert(1, b"\x00\x00\x00\x20garbage that is not a frame".to_vec())
                }
                _ => {}
            }
            let stream = futures::stream::iter(frames).then(|frame| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, std::io::Error>(Bytes::from(frame))
            });
            let mut response = Response::new(Body::from_stream(stream));
            let headers = response.headers_mut();
            headers.insert(
                "content-type",
                "application/vnd.amazon.eventstream".parse().unwrap(),
            );
            headers.insert(
                "x-amzn-bedrock-content-type",
                "application/json".parse().unwrap(),
            );
            headers.insert("x-amzn-requestid", request_id.parse().unwrap());
            response
        }
    }
}

/// CountTokens: `{"input": {"invokeModel": {"body": <base64>}}}` answered with the input
/// tokens the fake would report for that body; like Bedrock, only for foundation model ids
/// (an inference profile is refused).
fn count_tokens(state: &FakeState, headers: &HeaderMap, model_id: &str, body: &[u8]) -> Response {
    use base64::Engine;
    if !is_sigv4_signed(headers) {
        return bedrock_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "Missing Authentication Token",
        );
    }
    if model_id.split('.').count() > 2 && !model_id.starts_with("arn:") {
        return bedrock_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "The provided model doesn't support counting tokens.",
        );
    }
    let inner = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|request| {
            let encoded = request["input"]["invokeModel"]["body"].as_str()?.to_owned();
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        });
    let Some(inner) = inner else {
        return bedrock_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    let counted: serde_json::Value = serde_json::from_slice(&inner).unwrap_or_default();
    state
        .counted
        .lock()
        .unwrap()
        .push((model_id.to_owned(), counted));
    let input_tokens = fake_token_counts(&inner).0;
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        serde_json::json!({ "inputTokens": input_tokens }).to_string(),
    )
        .into_response()
}

async fn operation(
    State(state): State<Arc<FakeState>>,
    Path((model_id, operation)): Path<(String, String)>,
    version: axum::http::Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if version == axum::http::Version::HTTP_2 {
        state
            .http2_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if operation == "count-tokens" {
        return count_tokens(&state, &headers, &model_id, &body);
    }
    let operation = match operation.as_str() {
        "invoke" => FakeOperation::Invoke,
        "invoke-with-response-stream" => FakeOperation::InvokeStream,
        "converse" => FakeOperation::Converse,
        "converse-stream" => FakeOperation::ConverseStream,
        _ => {
            return bedrock_error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "unknown operation",
            );
        }
    };
    answer(state, operation, model_id, headers, body).await
}

use futures::StreamExt;

impl FakeBedrock {
    /// Starts the fake on an ephemeral port of 127.0.0.1; it runs until the runtime stops.
    pub async fn start() -> Self {
        let (state, router) = Self::router();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            address,
            state,
            scheme: "http",
        }
    }

    /// Starts the fake serving TLS with `config` (its ALPN list decides between HTTP/2
    /// and HTTP/1.1), as Bedrock's endpoint does; it runs until the runtime stops.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> Self {
        let (state, router) = Self::router();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Self {
            address,
            state,
            scheme: "https",
        }
    }

    fn router() -> (Arc<FakeState>, Router) {
        let state = Arc::new(FakeState {
            behavior: Mutex::new(Behavior::Normal),
            stream_chunks: Mutex::new(3),
            chunk_text_bytes: Mutex::new(0),
            answered: Mutex::new(Vec::new()),
            refused_unsigned: Mutex::new(0),
            recording: std::sync::atomic::AtomicBool::new(true),
            answered_count: std::sync::atomic::AtomicU64::new(0),
            http2_calls: std::sync::atomic::AtomicU64::new(0),
            counted: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/model/{model_id}/{operation}", post(operation))
            .with_state(Arc::clone(&state));
        (state, router)
    }

    /// The endpoint URL to give the SDK.
    pub fn endpoint_url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// Whether answered calls are kept for [`FakeBedrock::answered`]; a load benchmark turns
    /// it off so memory stays flat. [`FakeBedrock::answered_count`] always counts.
    pub fn set_recording(&self, recording: bool) {
        self.state
            .recording
            .store(recording, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many calls were answered with 200 so far.
    pub fn answered_count(&self) -> u64 {
        self.state
            .answered_count
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many calls came over HTTP/2 so far.
    pub fn http2_calls(&self) -> u64 {
        self.state
            .http2_calls
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes what the fake does with the next calls.
    pub fn set_behavior(&self, behavior: Behavior) {
        *self.state.behavior.lock().unwrap() = behavior;
    }

    /// How many text pieces each streamed answer has (default 3).
    pub fn set_stream_chunks(&self, chunks: usize) {
        *self.state.stream_chunks.lock().unwrap() = chunks;
    }

    /// How many padding bytes each streamed text piece carries (default 0).
    pub fn set_chunk_text_bytes(&self, bytes: usize) {
        *self.state.chunk_text_bytes.lock().unwrap() = bytes;
    }

    /// Every call answered with 200 so far.
    pub fn answered(&self) -> Vec<AnsweredCall> {
        self.state.answered.lock().unwrap().clone()
    }

    /// The CountTokens calls answered: the model id and the counted body (decoded).
    pub fn counted(&self) -> Vec<(String, serde_json::Value)> {
        self.state.counted.lock().unwrap().clone()
    }

    /// How many calls were refused for lacking a SigV4 signature.
    pub fn refused_unsigned(&self) -> u64 {
        *self.state.refused_unsigned.lock().unwrap()
    }
}
