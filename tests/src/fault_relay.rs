//! An HTTP relay in front of the AWS emulator that can take one service down: while down,
//! requests whose `X-Amz-Target` starts with a given prefix (for example
//! `Kinesis_20131202.`) get 503 `ServiceUnavailableException`; everything else passes.
//! Used to make the event log unavailable while the registry and counters stay up.
//!
//! It can also answer Kinesis `GetRecords` with empty pages before passing through, as
//! Kinesis may do on a shard behind its tip: no records, `MillisBehindLatest` above 0, and
//! the request's own iterator as the valid `NextShardIterator`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

struct RelayState {
    upstream: String,
    target_prefix: String,
    down: AtomicBool,
    /// Empty `GetRecords` pages still to answer before passing through.
    empty_pages_left: AtomicUsize,
    /// Empty `GetRecords` pages answered so far.
    empty_pages_served: AtomicUsize,
    client: reqwest::Client,
}

/// The target of a Kinesis `GetRecords` request.
const GET_RECORDS_TARGET: &str = "Kinesis_20131202.GetRecords";

/// An empty `GetRecords` page that continues with `request`'s own iterator, or `None` when
/// the request carries none.
fn empty_get_records_page(request: &[u8]) -> Option<Response> {
    let request: serde_json::Value = serde_json::from_slice(request).ok()?;
    let iterator = request["ShardIterator"].as_str()?;
    let page = serde_json::json!({
        "Records": [],
        "NextShardIterator": iterator,
        "MillisBehindLatest": 60_000,
    });
    Some(
        (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            page.to_string(),
        )
            .into_response(),
    )
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
    if target == GET_RECORDS_TARGET
        && state
            .empty_pages_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
        && let Some(page) = empty_get_records_page(&body)
    {
        state.empty_pages_served.fetch_add(1, Ordering::SeqCst);
        return page;
    }
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
            empty_pages_left: AtomicUsize::new(0),
            empty_pages_served: AtomicUsize::new(0),
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

    /// Answers the next `pages` Kinesis `GetRecords` requests with empty pages of a shard
    /// behind its tip, whatever the service prefix, then passes them through again.
    pub fn answer_empty_get_records_pages(&self, pages: usize) {
        self.state.empty_pages_left.store(pages, Ordering::SeqCst);
    }

    /// How many empty `GetRecords` pages the relay has answered.
    pub fn empty_get_records_pages_served(&self) -> usize {
        self.state.empty_pages_served.load(Ordering::SeqCst)
    }
}
