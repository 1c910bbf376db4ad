//! An upstream answer as the HTTP client returns it: its head, and its body read whole or
//! as a stream, from hyper's HTTP/1.1 connection or from an `h2` stream. On HTTP/2 the body
//! holds the call's place on its connection ([`StreamSlot`]) until it has been read or
//! dropped, which is how the client knows how busy each connection is, and gives h2 back
//! the flow-control capacity of each piece it reads, so the server may send more.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::model_runtime::RuntimeError;

/// A call's place on an HTTP/2 connection, given back when dropped.
pub(super) struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    pub(super) fn take(streams: &Arc<AtomicUsize>) -> Self {
        streams.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(streams))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An answer's head and body, as the server sent them.
pub struct Answer {
    parts: http::response::Parts,
    body: AnswerBody,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Answer")
            .field("status", &self.parts.status)
            .field("http2", &self.body.slot.is_some())
            .finish_non_exhaustive()
    }
}

impl Answer {
    /// An answer over HTTP/1.1.
    pub(super) fn http1(response: Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            parts,
            body: AnswerBody {
                body: Body::Http1(body),
                slot: None,
            },
        }
    }

    /// An answer on an HTTP/2 stream, holding the call's place on its connection.
    pub(super) fn http2(response: Response<h2::RecvStream>, slot: StreamSlot) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            parts,
            body: AnswerBody {
                body: Body::Http2(body),
                slot: Some(slot),
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    /// The head, and the body to read with [`read_body`] or [`body_stream`].
    pub fn into_parts(self) -> (http::response::Parts, AnswerBody) {
        (self.parts, self.body)
    }
}

/// An answer's body. On HTTP/2 it holds the call's place on its connection until it has
/// been read or is dropped.
pub struct AnswerBody {
    body: Body,
    slot: Option<StreamSlot>,
}

enum Body {
    Http1(Incoming),
    Http2(h2::RecvStream),
}

impl AnswerBody {
    /// The next piece of the body that carries bytes; `None` at its end.
    async fn next(&mut self) -> Option<Result<Bytes, RuntimeError>> {
        match &mut self.body {
            Body::Http1(incoming) => loop {
                let frame = match incoming.frame().await? {
                    Err(error) => return Some(Err(RuntimeError::Failed(error_chain(&error)))),
                    Ok(frame) => frame,
                };
                // Trailers and empty frames carry no answer bytes.
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    return Some(Ok(data));
                }
            },
            Body::Http2(stream) => loop {
                let data = match stream.data().await? {
                    Err(error) => return Some(Err(RuntimeError::Failed(error_chain(&error)))),
                    Ok(data) => data,
                };
                // Read: the server may send as much again.
                let _ = stream.flow_control().release_capacity(data.len());
                if !data.is_empty() {
                    return Some(Ok(data));
                }
            },
        }
    }
}

/// A whole answer body (the caller bounds the time it takes).
pub async fn read_body(mut body: AnswerBody) -> Result<Bytes, RuntimeError> {
    // Most answers come in one piece, returned as it is; more are copied together.
    let Some(first) = body.next().await.transpose()? else {
        return Ok(Bytes::new());
    };
    let Some(second) = body.next().await.transpose()? else {
        return Ok(first);
    };
    let mut whole = bytes::BytesMut::with_capacity(first.len() + second.len());
    whole.extend_from_slice(&first);
    whole.extend_from_slice(&second);
    while let Some(piece) = body.next().await.transpose()? {
        whole.extend_from_slice(&piece);
    }
    Ok(whole.freeze())
}

/// An answer body as a stream of its data, each read within `read_timeout` of the last;
/// the stream ends after the first error.
pub fn body_stream(
    body: AnswerBody,
    read_timeout: Duration,
) -> BoxStream<'static, Result<Bytes, RuntimeError>> {
    Box::pin(futures::stream::unfold(
        Some(body),
        move |body| async move {
            let mut body = body?;
            match tokio::time::timeout(read_timeout, body.next()).await {
                Err(_) => Some((Err(RuntimeError::Timeout(read_timeout)), None)),
                Ok(None) => None,
                Ok(Some(Err(error))) => Some((Err(error), None)),
                Ok(Some(Ok(data))) => Some((Ok(data), Some(body))),
            }
        },
    ))
}

/// An error and its causes, `: `-separated (hyper's own message alone is terse).
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
