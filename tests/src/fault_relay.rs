//! An HTTP relay in front of the AWS emulator that can take one service down: while down,
//! requests whose `X-Amz-Target` starts with a given prefix (for example
//! `Kinesis_20131202.`) get 503 `ServiceUnavailableException`; everything else passes.
//! Used to make the event log unavailable while the registry and counters stay up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

struct RelayState {
    upstream: String,
    target_prefix: String,
    down: AtomicBool,
    client: reqwest::Client,
}

/// A running relay.
pub struct FaultRelay {
    pub address: SocketAddr,
    state: Arc<RelayState>,
}

impl std::fmt::Debug for FaultRelay {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FaultRelay")
            .field("address", &self.address)
            .finish()
    }
}

async fn relay(State(state): State<Arc<RelayState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if state.down.load(Ordering::SeqCst) && target.starts_with(&state.target_prefix) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/x-amz-json-1.1")],
            r#"{"__type":"ServiceUnavailableException","message":"injected outage"}"#,
        )
            .into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let mut forwarded = state
        .client
        .request(parts.method.clone(), format!("{}{path}", state.upstream));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forwarded = forwarded.header(name, value);
        }
    }
    match forwarded.body(body).send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut headers = HeaderMap::new();
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    headers.insert(name.clone(), value.clone());
                }
            }
            let body: Bytes = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

impl FaultRelay {
    /// Relays to `upstream` (`http://127.0.0.1:PORT`), breaking `target_prefix` on demand.
    pub async fn start(upstream: &str, target_prefix: &str) -> Self {
        let state = Arc::new(RelayState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            target_prefix: target_prefix.to_owned(),
            down: AtomicBool::new(false),
            client: reqwest::Client::new(),
        });
        let router = Router::new().fallback(relay).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let address = listener.local_addr().expect("relay address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { address, state }
    }

    /// The URL to use as the AWS endpoint.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Takes the service down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}
