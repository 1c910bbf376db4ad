//! The HTTP client the proxy calls Bedrock with: connections over rustls, HTTP/2 when the
//! endpoint offers it, as Bedrock does (the `h2` crate, [`super::http2`]), HTTP/1.1
//! otherwise (hyper's connections), pooled per thread,
//! with the timeouts the proxy needs and nothing else per call (no URL re-parsing, no
//! redirect or proxy logic, no header copies).
//!
//! Server certificates are checked against the Mozilla roots (`webpki-roots`), or the
//! operator's CA bundle (`--bedrock-ca-bundle`) instead. Plain `http://` endpoints are
//! accepted for tests and local fakes.
//!
//! The pool is this module's own ([`ThreadPool`]), not hyper-util's: on the server's I/O
//! threads (each a single-threaded runtime) a call takes a ready connection of its own
//! thread with no lock, no checkout future and no task to hand the connection back. A
//! connection whose request could not be sent (the server closed it while it sat idle) is
//! dropped and the request is sent again on a new one; one that has sent nothing is never
//! counted as a failure.
//!
//! Calls that find no connection to take while another call of the thread sets one up to
//! an origin that may speak HTTP/2 wait for it rather than make their own
//! ([`super::connecting`]): a burst on a thread with no connection yet makes one TLS
//! handshake, not one per call.
//!
//! An HTTP/2 connection carries up to [`MAX_STREAMS_PER_HTTP2`] calls at once. A server
//! caps the streams it takes on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`, at
//! least 100 by RFC 9113's advice), and a call past that cap would wait in the
//! connection's queue behind calls that may stream for minutes; so a call that finds
//! every HTTP/2 connection of its thread that busy opens another. A call holds its place
//! on the connection until its answer has been read or dropped (`answer::AnswerBody`).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::sync::futures::OwnedNotified;
use tower::Service;

use super::answer::error_chain;
pub use super::answer::{Answer, AnswerBody, body_stream, read_body};
use super::connecting::{Connecting, SettingUp};
use super::http2::{Http2Connection, Room, Sent};
use super::model_runtime::RuntimeError;
use super::request_form::{absolute_form, host_header, origin_form};

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for Bedrock: {0}")]
pub struct ClientSetupError(String);

/// Most HTTP/1.1 connections one thread keeps to one origin, ready or busy; a call that
/// finds them all busy uses a connection of its own and closes it after its answer.
const MAX_HTTP1_PER_THREAD: usize = 512;

/// Most calls one HTTP/2 connection carries at once: the fewest streams a server should
/// allow (RFC 9113, section 6.5.2). A call that finds every HTTP/2 connection of its
/// thread this busy opens another.
pub const MAX_STREAMS_PER_HTTP2: usize = 100;

/// Most HTTP/2 connections one thread keeps to one origin; past them, a call takes the
/// least busy one.
const MAX_HTTP2_PER_THREAD: usize = 64;

/// Upstream connections pooled per thread, made alike. A call on a server's I/O thread
/// uses connections whose tasks run on its own thread: no hand-off to another thread to
/// write the request or to read the answer.
#[derive(Clone)]
pub struct PerThreadClient {
    /// Tells this instance's pools apart from another instance's on the same thread.
    id: u64,
    connector: HttpsConnector<HttpConnector>,
    idle_timeout: Duration,
    /// Longest wait for a connection another call is setting up.
    connect_timeout: Duration,
    /// Calls one HTTP/2 connection carries at once ([`MAX_STREAMS_PER_HTTP2`]).
    streams_per_http2: usize,
}

impl std::fmt::Debug for PerThreadClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PerThreadClient")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One thread's connections to one origin.
struct ThreadPool {
    client: u64,
    scheme: Scheme,
    authority: Authority,
    /// The `host` header of HTTP/1.1 requests to this origin.
    host: HeaderValue,
    /// HTTP/1.1 connections, each ready for a request or busy with one.
    http1: Vec<Http1Connection>,
    /// HTTP/2 connections, each shared by up to `streams_per_http2` calls of the thread.
    http2: Vec<Http2Connection>,
    /// The connection a call of the thread is setting up, which calls arriving meanwhile
    /// wait for.
    connecting: Option<Connecting>,
    /// The origin answers over HTTP/1.1 (it is plain `http://`, or TLS did not negotiate
    /// HTTP/2): a connection carries one call at a time, so no call waits for another's.
    http1_origin: bool,
}

struct Http1Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    last_used: Instant,
}

thread_local! {
    /// This thread's pools (a process has one or two clients, each with one origin).
    static THREAD_POOLS: RefCell<Vec<ThreadPool>> = const { RefCell::new(Vec::new()) };
}

/// A connection made for one call.
enum Fresh {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(Http2Connection),
}

/// What the thread's pool did with a request.
#[allow(clippy::large_enum_variant)] // moved once, not boxed: see `send_pooled`
enum Pooled<F> {
    /// Sent on an HTTP/1.1 connection: the answer, or the request back unsent.
    Http1(F),
    /// Sent on an HTTP/2 connection.
    Http2(Result<Sent, RuntimeError>),
    /// No connection could take it.
    Nowhere(Request<Bytes>),
}

impl PerThreadClient {
    /// The public certificate authorities (Mozilla's list, built in), which AWS's endpoints
    /// chain to.
    pub fn public_roots() -> rustls::RootCertStore {
        rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }
    }

    /// Clients that trust `roots` (the [public roots](Self::public_roots), an operator's CA
    /// bundle, a test's certificate), connect within `connect_timeout` and keep idle
    /// connections for `idle_timeout` (under the 60 s after which AWS endpoints close them).
    pub fn with_roots(
        roots: rustls::RootCertStore,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, ClientSetupError> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
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
            connect_timeout,
            streams_per_http2: MAX_STREAMS_PER_HTTP2,
        })
    }

    /// The same client, carrying at most `streams` calls on one HTTP/2 connection (tests
    /// use servers that allow few).
    pub fn with_streams_per_http2(mut self, streams: usize) -> Self {
        self.streams_per_http2 = streams.max(1);
        self
    }

    /// Sends `request` (its URI absolute: scheme, authority and path) on a ready
    /// connection of this thread, or on a new one, and returns the answer's head.
    pub async fn send(&self, request: Request<Bytes>) -> Result<Answer, RuntimeError> {
        let (Some(scheme), Some(authority)) = (request.uri().scheme(), request.uri().authority())
        else {
            return Err(RuntimeError::Failed(format!(
                "cannot send a request to {}: its URI has no scheme and host",
                request.uri()
            )));
        };
        let (scheme, authority) = (scheme.clone(), authority.clone());
        let mut request = request;
        let mut waited = false;
        loop {
            // A pooled connection may have been closed by the server just as the request
            // went out; the request comes back unsent, and goes on a new connection.
            request = match self.send_pooled(&scheme, &authority, request) {
                Pooled::Http2(sent) => return sent?.answer().await,
                Pooled::Http1(sent) => match sent.await {
                    Ok(response) => return Ok(Answer::http1(response)),
                    Err(mut unsent) => match unsent.take_message() {
                        Some(request) => request.map(whole_body),
                        None => return Err(failed(unsent.into_error())),
                    },
                },
                Pooled::Nowhere(request) => request,
            };
            if waited {
                break;
            }
            // A connection another call is setting up, which this one can share: wait for
            // it (at most the connect timeout), then look again. Boxed, as connecting is
            // below: rare, and the future of every call would otherwise carry its timer.
            let Some(set_up) = self.with_pool(&scheme, &authority, |pool| {
                pool.wait_for_connecting(self.streams_per_http2)
            }) else {
                break;
            };
            let _ = Box::pin(tokio::time::timeout(self.connect_timeout, set_up)).await;
            waited = true;
        }
        // Boxed: a call on a pooled connection (nearly every call) then carries, and moves,
        // a small future instead of one sized for connecting and the TLS handshake.
        Box::pin(self.send_fresh(scheme, authority, request)).await
    }

    /// Sends `request` on a new connection, kept for the thread's next calls.
    async fn send_fresh(
        &self,
        scheme: Scheme,
        authority: Authority,
        request: Request<Bytes>,
    ) -> Result<Answer, RuntimeError> {
        // Dropped once the connection is pooled, or if connecting fails or the call is
        // dropped meanwhile: the calls waiting for it then look again.
        let setting_up = self.with_pool(&scheme, &authority, ThreadPool::start_connecting);
        let fresh = self.connect(&scheme, &authority).await?;
        let sent = self.with_pool(&scheme, &authority, |pool| match fresh {
            Fresh::Http1(mut sender) => {
                pool.http1_origin = true;
                let sent = sender.try_send_request(origin_form(request.map(Full::new), &pool.host));
                if pool.http1.len() < MAX_HTTP1_PER_THREAD {
                    pool.http1.push(Http1Connection {
                        sender,
                        last_used: Instant::now(),
                    });
                }
                Pooled::Http1(sent)
            }
            Fresh::Http2(mut connection) => {
                pool.http1_origin = false;
                let sent = connection.send(absolute_form(request, &scheme, &authority));
                // Past the most a thread keeps, the connection serves this call alone.
                if pool.http2.len() < MAX_HTTP2_PER_THREAD {
                    pool.http2.push(connection);
                }
                Pooled::Http2(sent)
            }
        });
        drop(setting_up);
        match sent {
            Pooled::Http2(sent) => sent?.answer().await,
            Pooled::Http1(sent) => match sent.await {
                Ok(response) => Ok(Answer::http1(response)),
                Err(error) => Err(failed(error.into_error())),
            },
            Pooled::Nowhere(_) => Err(RuntimeError::Failed(
                "a new connection took no request".to_owned(),
            )),
        }
    }

    /// Sends on a ready pooled connection; gives the request back when there is none (or
    /// every HTTP/2 connection carries as many calls as it should).
    ///
    /// The request given back is moved, not boxed: boxing it would allocate on the path
    /// that makes a new connection, and the send future beside it is as large.
    #[allow(clippy::type_complexity)]
    fn send_pooled(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        request: Request<Bytes>,
    ) -> Pooled<
        impl Future<
            Output = Result<
                Response<Incoming>,
                hyper::client::conn::TrySendError<Request<Full<Bytes>>>,
            >,
        >,
    > {
        THREAD_POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            let Some(pool) = pools
                .iter_mut()
                .find(|pool| pool.serves(self.id, scheme, authority))
            else {
                return Pooled::Nowhere(request);
            };
            if !pool.http2.is_empty() {
                // The first connection with room; ended ones are dropped on the way.
                let mut index = 0;
                while index < pool.http2.len() {
                    match pool.http2[index].room(self.streams_per_http2) {
                        Room::Yes => return Pooled::Http2(pool.http2[index].send(request)),
                        Room::Full => index += 1,
                        Room::Closed => {
                            pool.http2.swap_remove(index);
                        }
                    }
                }
                // Every one is busy: a new connection, unless the thread has its most.
                if pool.http2.len() < MAX_HTTP2_PER_THREAD {
                    return Pooled::Nowhere(request);
                }
                let least_busy = pool
                    .http2
                    .iter_mut()
                    .min_by_key(|connection| connection.busy());
                return match least_busy {
                    Some(connection) => Pooled::Http2(connection.send_queued(request)),
                    None => Pooled::Nowhere(request),
                };
            }
            let now = Instant::now();
            // The first ready connection; closed ones, and ready ones idle long enough for
            // the server to close them any moment, are dropped on the way.
            let mut index = 0;
            let ready = loop {
                let Some(connection) = pool.http1.get(index) else {
                    return Pooled::Nowhere(request);
                };
                let ready = connection.sender.is_ready();
                if connection.sender.is_closed()
                    || (ready && now.duration_since(connection.last_used) >= self.idle_timeout)
                {
                    pool.http1.swap_remove(index);
                } else if ready {
                    break index;
                } else {
                    index += 1;
                }
            };
            let connection = &mut pool.http1[ready];
            connection.last_used = now;
            let request = origin_form(request.map(Full::new), &pool.host);
            Pooled::Http1(connection.sender.try_send_request(request))
        })
    }

    /// A new connection to the origin: HTTP/2 when TLS negotiated it, HTTP/1.1 otherwise.
    async fn connect(&self, scheme: &Scheme, authority: &Authority) -> Result<Fresh, RuntimeError> {
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query(PathAndQuery::from_static("/"))
            .build()
            .map_err(|error| RuntimeError::Failed(error.to_string()))?;
        let mut connector = self.connector.clone();
        let stream = connector
            .call(uri)
            .await
            .map_err(|error| RuntimeError::Unreachable(error_chain(error.as_ref())))?;
        if stream.connected().is_negotiated_h2() {
            Ok(Fresh::Http2(
                Http2Connection::handshake(TokioIo::new(stream)).await?,
            ))
        } else {
            let (sender, connection) = http1::handshake(stream)
                .await
                .map_err(|error| RuntimeError::Unreachable(error_chain(&error)))?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(error = %error, "an HTTP/1.1 connection to Bedrock ended");
                }
            });
            Ok(Fresh::Http1(sender))
        }
    }

    /// Runs `work` on this thread's pool for the origin, made on first use.
    fn with_pool<T>(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        work: impl FnOnce(&mut ThreadPool) -> T,
    ) -> T {
        THREAD_POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            let index = match pools
                .iter()
                .position(|pool| pool.serves(self.id, scheme, authority))
            {
                Some(index) => index,
                None => {
                    pools.push(ThreadPool {
                        client: self.id,
                        scheme: scheme.clone(),
                        authority: authority.clone(),
                        host: host_header(scheme, authority),
                        http1: Vec::new(),
                        http2: Vec::new(),
                        connecting: None,
                        http1_origin: *scheme != Scheme::HTTPS,
                    });
                    pools.len() - 1
                }
            };
            work(&mut pools[index])
        })
    }
}

impl ThreadPool {
    fn serves(&self, client: u64, scheme: &Scheme, authority: &Authority) -> bool {
        self.client == client && self.authority == *authority && self.scheme == *scheme
    }

    /// The connection a call is setting up, for one more call to wait for, if it may carry
    /// it: an HTTP/2 origin's (or one not known yet), not past `carries` calls.
    fn wait_for_connecting(&mut self, carries: usize) -> Option<OwnedNotified> {
        if self.http1_origin {
            return None;
        }
        let connecting = self.connecting.as_mut()?;
        let joined = connecting.join(carries);
        if joined.is_none() && connecting.is_finished() {
            self.connecting = None;
        }
        joined
    }

    /// Marks a connection as being set up, unless one already is or the origin speaks
    /// HTTP/1.1; the guard ends it.
    fn start_connecting(&mut self) -> Option<SettingUp> {
        let busy = self
            .connecting
            .as_ref()
            .is_some_and(|connecting| !connecting.is_finished());
        if self.http1_origin || busy {
            return None;
        }
        let (connecting, setting_up) = Connecting::start();
        self.connecting = Some(connecting);
        Some(setting_up)
    }
}

/// The bytes of a body built whole: a request an HTTP/1.1 connection gave back unsent,
/// which may go next on HTTP/2.
fn whole_body(body: Full<Bytes>) -> Bytes {
    use futures::FutureExt;
    use http_body_util::BodyExt;
    // A whole body is ready at once.
    body.collect()
        .now_or_never()
        .and_then(Result::ok)
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default()
}

/// A failure after the request went out on a connection.
fn failed(error: hyper::Error) -> RuntimeError {
    RuntimeError::Failed(error_chain(&error))
}

#[cfg(test)]
#[path = "https_tests.rs"]
mod tests;
