//! A local stand-in for the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), so the real Lambda
//! binaries run their real event loop in tests: `GET …/invocation/next` hands out queued
//! events, and responses (buffered or streamed) and errors are recorded as they arrive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use tokio::sync::mpsc;

/// One invocation's answer, as the function sent it.
#[derive(Debug, Clone, Default)]
pub struct RecordedResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// How many pieces the body arrived in (more than one: it was streamed).
    pub pieces: usize,
    /// The error the function reported instead, if any.
    pub error: Option<String>,
}

impl RecordedResponse {
    /// A streamed HTTP integration response split into its JSON prelude (status code and
    /// headers) and its payload, at the 8 NUL bytes between them.
    pub fn http_parts(&self) -> (serde_json::Value, Vec<u8>) {
        let separator = self
            .body
            .windows(8)
            .position(|window| window == [0u8; 8])
            .unwrap_or_else(|| {
                panic!(
                    "no prelude separator in {:?}",
                    String::from_utf8_lossy(&self.body)
                )
            });
        let prelude = serde_json::from_slice(&self.body[..separator]).unwrap();
        (prelude, self.body[separator + 8..].to_vec())
    }
}

/// Queued invocations: (request id, payload).
type Invocations = mpsc::UnboundedReceiver<(String, String)>;

#[derive(Clone, Default)]
struct Shared {
    queue: Arc<tokio::sync::Mutex<Option<Invocations>>>,
    responses: Arc<Mutex<HashMap<String, RecordedResponse>>>,
    init_error: Arc<Mutex<Option<String>>>,
}

/// The fake Runtime API.
pub struct FakeRuntimeApi {
    pub address: SocketAddr,
    sender: mpsc::UnboundedSender<(String, String)>,
    shared: Shared,
}

async fn next(State(shared): State<Shared>) -> Response {
    let mut queue = shared.queue.lock().await;
    let next = match queue.as_mut() {
        Some(receiver) => receiver.recv().await,
        None => None,
    };
    let Some((request_id, payload)) = next else {
        // No more invocations: the function waits, as it would on Lambda.
        drop(queue);
        std::future::pending::<()>().await;
        return StatusCode::GONE.into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 300_000;
    Response::builder()
        .header("lambda-runtime-aws-request-id", request_id)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:tollgate-proxy",
        )
        .header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000",
        )
        .header("content-type", "application/json")
        .body(Body::from(payload))
        .unwrap()
}

async fn response(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    let mut stream = body.into_data_stream();
    let mut recorded = RecordedResponse {
        headers,
        ..RecordedResponse::default()
    };
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(bytes) if !bytes.is_empty() => {
                recorded.pieces += 1;
                recorded.body.extend_from_slice(&bytes);
            }
            Ok(_) => {}
            Err(error) => {
                recorded.error = Some(format!("the response stream broke: {error}"));
                break;
            }
        }
    }
    shared
        .responses
        .lock()
        .unwrap()
        .insert(request_id, recorded);
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    shared.responses.lock().unwrap().insert(
        request_id,
        RecordedResponse {
            error: Some(String::from_utf8_lossy(&body).into_owned()),
            ..RecordedResponse::default()
        },
    );
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

impl FakeRuntimeApi {
    /// Starts the fake on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Shared {
            queue: Arc::new(tokio::sync::Mutex::new(Some(receiver))),
            ..Shared::default()
        };
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/error",
                post(error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            address,
            sender,
            shared,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.address.to_string()
    }

    /// The environment a Lambda function process gets, pointed at this fake.
    pub fn lambda_environment(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.runtime_api()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// Queues an event and waits (up to 60 s) for the function's answer.
    pub async fn invoke(&self, payload: &serde_json::Value) -> RecordedResponse {
        let request_id = uuid::Uuid::now_v7().to_string();
        self.sender
            .send((request_id.clone(), payload.to_string()))
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(recorded) = self.shared.responses.lock().unwrap().remove(&request_id) {
                return recorded;
            }
            if let Some(init_error) = self.shared.init_error.lock().unwrap().clone() {
                panic!("the function failed to start: {init_error}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer to invocation {request_id} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
