//! The upstream client against a hyper server on 127.0.0.1, over HTTP/1.1 and over TLS
//! with HTTP/2: what reaches the server, and how many connections the calls take.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use super::{PerThreadClient, body_stream, read_body};

/// What the server saw of one request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    version: Version,
    path: String,
    /// The `host` header, or HTTP/2's `:authority`.
    authority: String,
    content_length: Option<String>,
    body: Bytes,
}

/// A server on 127.0.0.1 that answers every request with `ok` and records it; over TLS
/// (HTTP/2 or HTTP/1.1 by ALPN) when given a TLS configuration.
struct Server {
    address: String,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Closes each connection after its first answer, without saying so.
    close_after_one: bool,
    /// The most requests it held at once (see [`Hold`]).
    held_at_once: Arc<AtomicUsize>,
}

/// How long the server holds each request to a path with `hold` in it before it answers:
/// until this many have been held at once, or a few seconds have passed.
#[derive(Clone)]
struct Hold {
    until: usize,
    held: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Hold {
    async fn wait(&self) {
        let now = self.held.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.arrived.notify_waiters();
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                let arrived = self.arrived.notified();
                if self.most.load(Ordering::SeqCst) >= self.until {
                    break;
                }
                arrived.await;
            }
        })
        .await;
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>, close_after_one: bool) -> Self {
        Self::start_holding(tls, close_after_one, None, 1).await
    }

    /// A server that allows `streams` concurrent HTTP/2 streams per connection (hyper's
    /// default when `None`) and holds each request until `hold` are held at once.
    async fn start_holding(
        tls: Option<Arc<rustls::ServerConfig>>,
        close_after_one: bool,
        streams: Option<u32>,
        hold: usize,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (counted, recorded) = (Arc::clone(&connections), Arc::clone(&seen));
        let hold = Hold {
            until: hold,
            held: Arc::new(AtomicUsize::new(0)),
            most: Arc::new(AtomicUsize::new(0)),
            arrived: Arc::new(tokio::sync::Notify::new()),
        };
        let held_at_once = Arc::clone(&hold.most);
        let options = Connection {
            tls,
            streams,
            close_after_one,
            hold,
            recorded,
        };
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(options.clone().serve(socket));
            }
        });
        Self {
            address,
            connections,
            seen,
            close_after_one,
            held_at_once,
        }
    }

    /// The URL of `path` on this server over TLS, by the name its certificate carries.
    fn https_url(&self, path: &str) -> String {
        let port = self.address.rsplit(':').next().unwrap_or_default();
        format!("https://localhost:{port}{path}")
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// How the server serves each connection it accepts.
#[derive(Clone)]
struct Connection {
    tls: Option<Arc<rustls::ServerConfig>>,
    streams: Option<u32>,
    close_after_one: bool,
    hold: Hold,
    recorded: Arc<Mutex<Vec<Seen>>>,
}

impl Connection {
    async fn serve(self, socket: tokio::net::TcpStream) {
        let Self {
            tls,
            streams,
            close_after_one,
            hold,
            recorded,
        } = self;
        let answered = Arc::new(tokio::sync::Notify::new());
        let service = {
            let answered = Arc::clone(&answered);
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let recorded = Arc::clone(&recorded);
                let answered = Arc::clone(&answered);
                let hold = hold.clone();
                async move {
                    if request.uri().path().contains("hold") {
                        hold.wait().await;
                    }
                    record(request, &recorded, &answered).await
                }
            })
        };
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Some(streams) = streams {
            builder.http2().max_concurrent_streams(streams);
        }
        let serve = async {
            match tls {
                Some(tls) => {
                    let stream = tokio_rustls::TlsAcceptor::from(tls).accept(socket).await;
                    if let Ok(stream) = stream {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                }
            }
        };
        if close_after_one {
            // Drop the connection once the first answer had time to go out.
            tokio::select! {
                () = serve => {}
                () = async {
                    answered.notified().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } => {}
            }
        } else {
            serve.await;
        }
    }
}

/// Records a request the server received and answers it with `ok`, or with its own body
/// when its path has `echo` in it.
async fn record(
    request: Request<Incoming>,
    recorded: &Mutex<Vec<Seen>>,
    answered: &tokio::sync::Notify,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let version = request.version();
    let path = request.uri().path().to_owned();
    let authority = request
        .headers()
        .get(http::header::HOST)
        .map(|value| value.to_str().unwrap().to_owned())
        .or_else(|| request.uri().authority().map(ToString::to_string))
        .unwrap_or_default();
    let content_length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = request.into_body().collect().await?.to_bytes();
    let answer = if path.contains("echo") {
        body.clone()
    } else {
        Bytes::from_static(b"ok")
    };
    recorded.lock().unwrap().push(Seen {
        version,
        path,
        authority,
        content_length,
        body,
    });
    answered.notify_one();
    Ok(Response::new(Full::new(answer)))
}

fn post(url: &str, body: &'static str) -> Request<Bytes> {
    Request::post(url)
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

async fn call(client: &PerThreadClient, url: &str, body: &'static str) -> Bytes {
    let answer = client.send(post(url, body)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let (_, body) = answer.into_parts();
    read_body(body).await.unwrap()
}

fn client_trusting(roots: rustls::RootCertStore) -> PerThreadClient {
    PerThreadClient::with_roots(roots, Duration::from_secs(2), Duration::from_secs(50)).unwrap()
}

/// A TLS server for `localhost` (HTTP/2 by ALPN, `streams` per connection, holding as
/// [`Server::start_holding`] does) and a client that trusts its certificate.
async fn over_tls(streams: Option<u32>, hold: usize) -> (Server, PerThreadClient) {
    over_tls_offering(&[b"h2", b"http/1.1"], false, streams, hold).await
}

/// Like [`over_tls`], the server offering `alpn` and, with `close_after_one`, dropping each
/// connection after its first answer.
async fn over_tls_offering(
    alpn: &[&[u8]],
    close_after_one: bool,
    streams: Option<u32>,
    hold: usize,
) -> (Server, PerThreadClient) {
    let (certificate, server_config) = crate::tls::self_signed_for_tests(&["localhost"]);
    let mut server_config = (*server_config).clone();
    server_config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let server = Server::start_holding(
        Some(Arc::new(server_config)),
        close_after_one,
        streams,
        hold,
    )
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate).unwrap();
    (server, client_trusting(roots))
}

#[tokio::test(flavor = "current_thread")]
async fn calls_one_after_another_share_one_connection_and_carry_their_host() {
    let server = Server::start(None, false).await;
    let client = client_trusting(rustls::RootCertStore::empty());
    let url = format!("http://{}/model/m/invoke", server.address);
    for _ in 0..5 {
        assert_eq!(call(&client, &url, "{}").await, "ok");
    }
    assert_eq!(
        server.connections(),
        1,
        "five calls in a row, one connection"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(|seen| seen.version == Version::HTTP_11
        && seen.path == "/model/m/invoke"
        && seen.authority == server.address
        && seen.body == "{}"));
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_calls_each_get_a_connection_and_all_are_answered() {
    let server = Server::start(None, false).await;
    let client = client_trusting(rustls::RootCertStore::empty());
    let url = format!("http://{}/model/m/invoke", server.address);
    let calls = (0..8).map(|_| call(&client, &url, "{}"));
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|answer| answer == "ok"));
    assert_eq!(server.seen().len(), 8);
    let opened = server.connections();
    assert!((2..=8).contains(&opened), "{opened} connections");
    // Once answered, they serve the next round without new ones.
    let calls = (0..8).map(|_| call(&client, &url, "{}"));
    futures::future::join_all(calls).await;
    assert_eq!(server.seen().len(), 16);
    assert_eq!(server.connections(), opened);
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_the_server_closed_while_idle_is_replaced_without_a_failed_call() {
    let server = Server::start(None, true).await;
    assert!(server.close_after_one);
    let client = client_trusting(rustls::RootCertStore::empty());
    let url = format!("http://{}/model/m/invoke", server.address);
    for round in 1..=3 {
        assert_eq!(call(&client, &url, "{}").await, "ok");
        assert_eq!(server.connections(), round);
        // The server drops the connection 50 ms after answering.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn an_http2_connection_the_server_closed_while_idle_is_replaced_without_a_failed_call() {
    let (server, client) = over_tls_offering(&[b"h2"], true, None, 1).await;
    let url = server.https_url("/model/m/converse");
    for round in 1..=3 {
        assert_eq!(call(&client, &url, "{}").await, "ok");
        assert_eq!(server.connections(), round);
        // The server drops the connection 50 ms after answering.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|seen| seen.version == Version::HTTP_2));
}

#[tokio::test(flavor = "current_thread")]
async fn over_tls_an_endpoint_offering_http2_gets_every_call_on_one_connection() {
    let (server, client) = over_tls(None, 1).await;
    let url = server.https_url("/model/m/converse");
    assert_eq!(call(&client, &url, "one").await, "ok");
    let calls = (0..6).map(|_| call(&client, &url, "many"));
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|answer| answer == "ok"));
    assert_eq!(server.connections(), 1, "HTTP/2 carries every call");
    let seen = server.seen();
    assert_eq!(seen.len(), 7);
    assert!(seen.iter().all(|seen| seen.version == Version::HTTP_2
        && seen.path == "/model/m/converse"
        && format!("https://{}/model/m/converse", seen.authority) == url));
}

#[tokio::test(flavor = "current_thread")]
async fn over_http2_calls_past_a_connections_streams_go_on_another_rather_than_wait() {
    // The server takes 2 streams per connection and answers nothing until it holds 5
    // requests at once: calls queued behind a busy connection would never all arrive.
    let (server, client) = over_tls(Some(2), 5).await;
    let client = client.with_streams_per_http2(2);
    // One call first: the thread then has one HTTP/2 connection, idle.
    let first = server.https_url("/model/m/converse");
    assert_eq!(call(&client, &first, "{}").await, "ok");
    assert_eq!(server.connections(), 1);
    let url = server.https_url("/model/hold/converse-stream");
    let calls = (0..5).map(|_| call(&client, &url, "{}"));
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|answer| answer == "ok"));
    assert_eq!(
        server.held_at_once.load(Ordering::SeqCst),
        5,
        "all five calls reached the server at once"
    );
    assert!(
        server.connections() >= 3,
        "{} connections for 5 calls at 2 streams each",
        server.connections()
    );
    assert!(
        server
            .seen()
            .iter()
            .all(|seen| seen.version == Version::HTTP_2)
    );
    // Answered, their places are free again: the next five take no new connection (the
    // server holds nothing now, having held five at once).
    let opened = server.connections();
    let calls = (0..5).map(|_| call(&client, &url, "{}"));
    futures::future::join_all(calls).await;
    assert_eq!(server.connections(), opened);
}

#[tokio::test(flavor = "current_thread")]
async fn over_http2_a_burst_on_a_thread_with_no_connection_yet_makes_one_connection() {
    let (server, client) = over_tls(None, 1).await;
    let url = server.https_url("/model/m/converse");
    // Twenty calls at once on a thread that has never connected: one sets a connection up
    // and the others wait for it, instead of twenty TLS handshakes.
    let calls = (0..20).map(|_| call(&client, &url, "{}"));
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|answer| answer == "ok"));
    assert_eq!(server.connections(), 1, "the burst shared one connection");
    let seen = server.seen();
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|seen| seen.version == Version::HTTP_2));
}

#[tokio::test(flavor = "current_thread")]
async fn over_http2_bodies_larger_than_the_flow_control_windows_go_and_come_back_whole() {
    let (server, client) = over_tls(None, 1).await;
    let url = server.https_url("/model/echo/invoke");
    // 3 MiB each way: past the server's window for the request (1 MiB by hyper's default)
    // and past the client's for the answer (2 MiB), so both sides must give capacity back.
    let body: Bytes = (0..3 * 1024 * 1024).map(|at| (at % 251) as u8).collect();
    for _ in 0..2 {
        let request = Request::post(&url).body(body.clone()).unwrap();
        let answer = client.send(request).await.unwrap();
        assert_eq!(answer.status(), 200);
        let (_, answer_body) = answer.into_parts();
        // A window never given back stalls the answer: fail instead of hanging.
        let echoed = tokio::time::timeout(Duration::from_secs(30), read_body(answer_body))
            .await
            .expect("the answer came whole within 30 s")
            .unwrap();
        assert_eq!(echoed.len(), body.len());
        assert!(echoed == body, "the echoed body differs");
    }
    assert_eq!(server.connections(), 1);
    assert!(
        server
            .seen()
            .iter()
            .all(|seen| seen.version == Version::HTTP_2
                && seen.body == body
                && seen.content_length.as_deref() == Some("3145728"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn over_tls_an_endpoint_offering_only_http1_gets_a_connection_per_concurrent_call() {
    // The server answers nothing until it holds 4 requests at once: calls that waited
    // behind one HTTP/1.1 connection would never all arrive.
    let (server, client) = over_tls_offering(&[b"http/1.1"], false, None, 4).await;
    let url = server.https_url("/model/hold/converse");
    let calls = (0..4).map(|_| call(&client, &url, "{}"));
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|answer| answer == "ok"));
    assert_eq!(server.held_at_once.load(Ordering::SeqCst), 4);
    assert_eq!(server.connections(), 4);
    assert!(
        server
            .seen()
            .iter()
            .all(|seen| seen.version == Version::HTTP_11)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_http2_answer_read_as_a_stream_gives_its_place_back_when_read_or_dropped() {
    use futures::StreamExt;
    // One call per connection: a place not given back would make the next call connect.
    let (server, client) = over_tls(None, 1).await;
    let client = client.with_streams_per_http2(1);
    let url = server.https_url("/model/m/converse-stream");
    let read_through = client.send(post(&url, "{}")).await.unwrap();
    let (_, body) = read_through.into_parts();
    let chunks: Vec<_> = body_stream(body, Duration::from_secs(2)).collect().await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].as_ref().unwrap(), "ok");
    let dropped = client.send(post(&url, "{}")).await.unwrap();
    let (_, body) = dropped.into_parts();
    drop(body_stream(body, Duration::from_secs(2)));
    assert_eq!(call(&client, &url, "{}").await, "ok");
    assert_eq!(
        server.connections(),
        1,
        "every call on the first connection"
    );
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_without_a_scheme_and_host_is_refused_before_any_connection() {
    let client = client_trusting(rustls::RootCertStore::empty());
    let error = client
        .send(post("/model/m/invoke", "{}"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no scheme and host"), "{error}");
}
