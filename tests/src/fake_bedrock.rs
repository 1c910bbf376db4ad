//! A wire-level fake of the Bedrock runtime API, for tests and benchmarks.
//!
//! It serves `POST /model/{modelId}/invoke` the way Bedrock does: the model's JSON body
//! with `usage`, the `x-amzn-bedrock-input-token-count` / `-output-token-count` and
//! `x-amzn-requestid` headers, and Bedrock's error shape (`{"message": …}` with
//! `x-amzn-errortype`). It refuses requests without a SigV4 `Authorization` header, and it
//! can be told to throttle, fail or slow down. It records every call it answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
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
    /// Answer normally after a delay.
    Slow(Duration),
}

/// One call the fake answered with 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredCall {
    pub model_id: String,
    pub request_id: String,
    pub body: serde_json::Value,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug)]
struct FakeState {
    behavior: Mutex<Behavior>,
    answered: Mutex<Vec<AnsweredCall>>,
    refused_unsigned: Mutex<u64>,
}

/// A running fake Bedrock on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct FakeBedrock {
    pub address: SocketAddr,
    state: Arc<FakeState>,
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

async fn invoke(
    State(state): State<Arc<FakeState>>,
    Path(model_id): Path<String>,
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
        Behavior::Slow(delay) => tokio::time::sleep(delay).await,
        Behavior::Normal => {}
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
    state.answered.lock().unwrap().push(AnsweredCall {
        model_id,
        request_id: request_id.clone(),
        body: request,
        input_tokens,
        output_tokens,
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

impl FakeBedrock {
    /// Starts the fake on an ephemeral port of 127.0.0.1; it runs until the runtime stops.
    pub async fn start() -> Self {
        let state = Arc::new(FakeState {
            behavior: Mutex::new(Behavior::Normal),
            answered: Mutex::new(Vec::new()),
            refused_unsigned: Mutex::new(0),
        });
        let router = Router::new()
            .route("/model/{model_id}/invoke", post(invoke))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { address, state }
    }

    /// The endpoint URL to give the SDK.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Changes what the fake does with the next calls.
    pub fn set_behavior(&self, behavior: Behavior) {
        *self.state.behavior.lock().unwrap() = behavior;
    }

    /// Every call answered with 200 so far.
    pub fn answered(&self) -> Vec<AnsweredCall> {
        self.state.answered.lock().unwrap().clone()
    }

    /// How many calls were refused for lacking a SigV4 signature.
    pub fn refused_unsigned(&self) -> u64 {
        *self.state.refused_unsigned.lock().unwrap()
    }
}
