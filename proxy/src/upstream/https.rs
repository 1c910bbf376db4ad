//! The HTTP client the proxy calls Bedrock with: hyper's pooled client over rustls (HTTP/2
//! when the endpoint offers it, HTTP/1.1 otherwise), with the timeouts the proxy needs and
//! nothing else per call (no URL re-parsing, no redirect or proxy logic, no header copies).
//!
//! Server certificates are checked against the Mozilla roots (`webpki-roots`), as before
//! with `reqwest`. Plain `http://` endpoints are accepted for tests and local fakes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::model_runtime::RuntimeError;

/// A pooled client (one per thread and [`PerThreadClient`]).
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for Bedrock: {0}")]
pub struct ClientSetupError(String);

/// Upstream clients with a pool of connections per thread, built alike. On the server's
/// I/O threads (each a single-threaded runtime) a call then uses connections whose tasks
/// run on its own thread: no hand-off to another thread to write the request or to read
/// the answer. A shared pool's connection, made by one thread's call, is driven by that
/// thread for every call that borrows it.
#[derive(Clone)]
pub struct PerThreadClient {
    /// Tells this instance's clients apart from another instance's on the same thread.
    id: u64,
    connector: HttpsConnector<HttpConnector>,
    idle_timeout: Duration,
}

impl std::fmt::Debug for PerThreadClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PerThreadClient")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// This thread's clients, by [`PerThreadClient::id`] (a process builds one or two).
    static THREAD_CLIENTS: std::cell::RefCell<Vec<(u64, HttpsClient)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl PerThreadClient {
    /// Clients that connect within `connect_timeout` and keep idle connections for
    /// `idle_timeout` (under the 60 s after which AWS endpoints close them).
    pub fn new(
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, ClientSetupError> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| ClientSetupError(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        Ok(Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            connector,
            idle_timeout,
        })
    }

    /// A client with a pool of its own.
    fn build(&self) -> HttpsClient {
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(self.connector.clone())
    }

    /// Sends `request` through this thread's client (built on the thread's first call).
    pub fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        THREAD_CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, client)) = clients.iter().find(|(id, _)| *id == self.id) {
                return client.request(request);
            }
            let client = self.build();
            let future = client.request(request);
            clients.push((self.id, client));
            future
        })
    }
}

/// A transport failure as the runtime reports it: connection failures as unreachable.
pub fn transport_error(error: &hyper_util::client::legacy::Error) -> RuntimeError {
    if error.is_connect() {
        RuntimeError::Unreachable(error_chain(error))
    } else {
        RuntimeError::Failed(error_chain(error))
    }
}

/// An error and its causes, `: `-separated (hyper's own message alone is terse).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A whole answer body, read within `timeout`.
pub async fn read_body(body: Incoming, timeout: Duration) -> Result<Bytes, RuntimeError> {
    match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => Err(RuntimeError::Timeout(timeout)),
        Ok(Err(error)) => Err(RuntimeError::Failed(error_chain(&error))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// An answer body as a stream of its data, each read within `read_timeout` of the last;
/// the stream ends after the first error.
pub fn body_stream(
    body: Incoming,
    read_timeout: Duration,
) -> BoxStream<'static, Result<Bytes, RuntimeError>> {
    Box::pin(futures::stream::unfold(
        Some(body),
        move |body| async move {
            let mut body = body?;
            loop {
                let frame = match tokio::time::timeout(read_timeout, body.frame()).await {
                    Err(_) => return Some((Err(RuntimeError::Timeout(read_timeout)), None)),
                    Ok(None) => return None,
                    Ok(Some(Err(error))) => {
                        return Some((Err(RuntimeError::Failed(error_chain(&error))), None));
                    }
                    Ok(Some(Ok(frame))) => frame,
                };
                // Trailers and empty frames carry no answer bytes.
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    return Some((Ok(data), Some(body)));
                }
            }
        },
    ))
}
