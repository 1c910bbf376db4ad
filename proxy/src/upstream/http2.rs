//! HTTP/2 to the upstream through the `h2` crate, without hyper's HTTP/2 client.
//!
//! hyper's client sends a request's body from a task of its own: the connection writes the
//! `HEADERS` frame, then the body's task runs and the connection writes `DATA` in a second
//! write. Every call paid for one more system call and one more task than on HTTP/1.1
//! (BENCHMARKS.md, "The upstream over TLS"). Here a call queues its `HEADERS` and its whole
//! body as `DATA` before the connection's task runs, which writes them together.
//!
//! A connection takes a call when h2 says it can open a stream (under the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`) and it carries fewer than the client's own cap
//! ([`super::https::MAX_STREAMS_PER_HTTP2`]). The answer's body gives h2 back its
//! flow-control capacity as it is read (`answer`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Version};
use tokio::io::{AsyncRead, AsyncWrite};

use super::answer::{Answer, StreamSlot, error_chain};
use super::model_runtime::RuntimeError;

/// Bytes the server may send on one stream before the client reads them: a streamed
/// answer is not held up by the window (hyper's client default).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;

/// Bytes the server may send on the whole connection before the client reads them.
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// One HTTP/2 connection to the upstream, shared by the calls of one thread.
pub(super) struct Http2Connection {
    sender: h2::client::SendRequest<Bytes>,
    /// Calls on it whose answers are still being read.
    streams: Arc<AtomicUsize>,
}

/// Whether a connection can take one more call now.
pub(super) enum Room {
    Yes,
    /// It carries as many calls as it may.
    Full,
    /// The connection has ended (the server closed it, or went away).
    Closed,
}

/// A request sent on a connection: its answer's head to wait for, and its place there.
pub(super) struct Sent {
    pub(super) response: h2::client::ResponseFuture,
    pub(super) slot: StreamSlot,
}

impl Http2Connection {
    /// Opens HTTP/2 over `io` (TLS that negotiated `h2`) and runs the connection on a task of
    /// the current runtime.
    pub(super) async fn handshake<T>(io: T) -> Result<Self, RuntimeError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<T, Bytes>(io)
            .await
            .map_err(|error| RuntimeError::Unreachable(error_chain(&error)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "an HTTP/2 connection to Bedrock ended");
            }
        });
        Ok(Self {
            sender,
            streams: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Calls it carries now.
    pub(super) fn busy(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// Whether it can take one more call, carrying at most `most` at once, and no more than
    /// the server allows (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub(super) fn room(&mut self, most: usize) -> Room {
        // Readiness is known without waiting: h2 answers from the connection's state.
        let mut context = Context::from_waker(std::task::Waker::noop());
        match self.sender.poll_ready(&mut context) {
            Poll::Ready(Err(_)) => Room::Closed,
            Poll::Pending => Room::Full,
            Poll::Ready(Ok(()))
                if self.busy() >= most.min(self.sender.current_max_send_streams()) =>
            {
                Room::Full
            }
            Poll::Ready(Ok(())) => Room::Yes,
        }
    }

    /// Sends `request` past the connection's limits: h2 queues its stream until the server
    /// lets it open (a thread with as many connections as it keeps, each full).
    pub(super) fn send_queued(&mut self, request: Request<Bytes>) -> Result<Sent, RuntimeError> {
        // A new handle has no stream of its own waiting to open, which would refuse it.
        let mut queued = Self {
            sender: self.sender.clone(),
            streams: Arc::clone(&self.streams),
        };
        queued.send(request)
    }

    /// Sends `request`, head and body together (its URI absolute, as HTTP/2 carries it).
    pub(super) fn send(&mut self, request: Request<Bytes>) -> Result<Sent, RuntimeError> {
        let (mut parts, body) = request.into_parts();
        parts.version = Version::HTTP_2;
        // As hyper's client and the AWS SDKs send it, though `END_STREAM` ends the body.
        if !body.is_empty() {
            parts
                .headers
                .entry(http::header::CONTENT_LENGTH)
                .or_insert_with(|| http::HeaderValue::from(body.len()));
        }
        let head = Request::from_parts(parts, ());
        let slot = StreamSlot::take(&self.streams);
        let (response, mut stream) = self
            .sender
            .send_request(head, body.is_empty())
            .map_err(|error| RuntimeError::Failed(error_chain(&error)))?;
        if !body.is_empty() {
            // Queued whole, beyond the stream's window if need be: the body is in memory
            // already (bounded by the proxy's body cap), and h2 sends it as the window opens.
            stream
                .send_data(body, true)
                .map_err(|error| RuntimeError::Failed(error_chain(&error)))?;
        }
        Ok(Sent { response, slot })
    }
}

impl Sent {
    /// The answer's head, once the server sends it; the body follows on the stream.
    pub(super) async fn answer(self) -> Result<Answer, RuntimeError> {
        let response = self
            .response
            .await
            .map_err(|error| RuntimeError::Failed(error_chain(&error)))?;
        Ok(Answer::http2(response, self.slot))
    }
}
