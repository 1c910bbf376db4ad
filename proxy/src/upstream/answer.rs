//! An upstream answer as the HTTP client returns it: its head, and its body read whole or
//! as a stream. On HTTP/2 the body holds the call's place on its connection
//! ([`StreamSlot`]) until it has been read or dropped, which is how the client knows how
//! busy each connection is.

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
    pub(super) response: Response<Incoming>,
    pub(super) slot: Option<StreamSlot>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Answer")
            .field("status", &self.response.status())
            .field("http2", &self.slot.is_some())
            .finish_non_exhaustive()
    }
}

impl Answer {
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The head, and the body to read with [`read_body`] or [`body_stream`].
    pub fn into_parts(self) -> (http::response::Parts, AnswerBody) {
        let (parts, body) = self.response.into_parts();
        (
            parts,
            AnswerBody {
                body,
                _slot: self.slot,
            },
        )
    }
}

/// An answer's body. On HTTP/2 it holds the call's place on its connection until it has
/// been read or is dropped.
pub struct AnswerBody {
    body: Incoming,
    _slot: Option<StreamSlot>,
}

/// A whole answer body (the caller bounds the time it takes).
pub async fn read_body(body: AnswerBody) -> Result<Bytes, RuntimeError> {
    match body.body.collect().await {
        Err(error) => Err(RuntimeError::Failed(error_chain(&error))),
        Ok(collected) => Ok(collected.to_bytes()),
    }
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
            loop {
                let frame = match tokio::time::timeout(read_timeout, body.body.frame()).await {
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
