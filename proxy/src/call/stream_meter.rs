//! A streamed answer passed to the client as it arrives, with its tokens read on the way
//! and exactly one usage event written when the stream ends, fails, or the client leaves.
//! A stream that ends without Bedrock's final usage (cut short, or carrying an exception
//! frame) is metered as `upstream_error` with the tokens reported so far.
//!
//! When the client disconnects mid-stream, the proxy keeps reading Bedrock's stream (for at
//! most [`DRAIN_LIMIT`]) and discards it, to learn the final token count Bedrock reports;
//! the event is then `client_aborted` with those tokens. Bedrock bills the operator for the
//! tokens it generated, so this bills the customer for the same tokens. If the drain times
//! out, the event carries the tokens reported so far.
//!
//! The stream ends for the client once its event is recorded as the emitter's durability
//! requires (on Lambda: durable in the log).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use schemas::bedrock_stream::{StreamKind, StreamUsageTap};
use schemas::{Outcome, RequestId};

use crate::admission::Settlement;
use crate::call::meter::{AnswerFacts, EventDraft, UpstreamFacts, call_event, settle_admission};
use crate::emitter::{ClosingWrite, EmitterHandle};
use crate::upstream::RuntimeError;

/// Longest the proxy keeps reading a stream whose client has gone.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// What is needed to settle the call and write the stream's event.
#[derive(Debug)]
pub struct StreamMeter {
    pub draft: EventDraft,
    pub settlement: Settlement,
    pub emitter: EmitterHandle,
    pub status: u16,
    pub upstream_request_id: Option<RequestId>,
    pub upstream_latency_ms: u64,
}

impl StreamMeter {
    /// Settles the call with the tokens the stream reported, then builds its event.
    fn close(
        self,
        tap: &StreamUsageTap,
        outcome: Outcome,
        response_bytes: u64,
    ) -> (EmitterHandle, schemas::UsageEvent, Option<ClosingWrite>) {
        let facts = UpstreamFacts {
            upstream_request_id: self.upstream_request_id,
            upstream_latency_ms: Some(self.upstream_latency_ms),
            usage: tap.observation().usage(),
        };
        let closing_write = settle_admission(self.settlement, &facts.usage);
        let answer = AnswerFacts {
            status: self.status,
            outcome,
            response_bytes,
        };
        (
            self.emitter,
            call_event(self.draft, answer, facts),
            closing_write,
        )
    }

    /// Meters a stream whose client has gone: nothing waits for the event.
    fn record_in_background(self, tap: &StreamUsageTap, outcome: Outcome, response_bytes: u64) {
        let (emitter, event, closing_write) = self.close(tap, outcome, response_bytes);
        emitter.record_in_background(event, closing_write);
    }
}

/// The client's view of a streamed answer.
pub struct MeteredStream {
    inner: Option<BoxStream<'static, Result<Bytes, RuntimeError>>>,
    tap: Option<StreamUsageTap>,
    meter: Option<StreamMeter>,
    response_bytes: u64,
    /// The recording of the event, which the end of the stream waits for.
    pending_record: Option<BoxFuture<'static, ()>>,
    /// What to yield once the event is recorded (`None` = end of stream).
    after_write: Option<Option<Result<Bytes, std::io::Error>>>,
}

impl std::fmt::Debug for MeteredStream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MeteredStream")
            .field("response_bytes", &self.response_bytes)
            .finish()
    }
}

impl MeteredStream {
    /// Wraps Bedrock's stream.
    pub fn new(
        inner: BoxStream<'static, Result<Bytes, RuntimeError>>,
        kind: StreamKind,
        meter: StreamMeter,
    ) -> Self {
        Self {
            inner: Some(inner),
            tap: Some(StreamUsageTap::new(kind)),
            meter: Some(meter),
            response_bytes: 0,
            pending_record: None,
            after_write: None,
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        if let (Some(meter), Some(tap)) = (self.meter.take(), self.tap.as_ref()) {
            let observation = tap.observation();
            let incomplete = observation.exception.is_some() || observation.final_usage.is_none();
            let outcome = if outcome == Outcome::Success && incomplete {
                Outcome::UpstreamError
            } else {
                outcome
            };
            let (emitter, event, closing_write) = meter.close(tap, outcome, self.response_bytes);
            self.pending_record =
                Some(async move { emitter.record(event, closing_write).await }.boxed());
        }
    }

    /// Ends the client's stream with `last`, once the event is recorded.
    fn end_with(
        &mut self,
        last: Option<Result<Bytes, std::io::Error>>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        if self.pending_record.is_none() {
            return Poll::Ready(last);
        }
        self.after_write = Some(last);
        self.poll_pending_record(context)
    }

    fn poll_pending_record(
        &mut self,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        if let Some(record) = self.pending_record.as_mut() {
            if record.as_mut().poll(context).is_pending() {
                return Poll::Pending;
            }
            self.pending_record = None;
        }
        Poll::Ready(self.after_write.take().flatten())
    }
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pending_record.is_some() {
            return self.poll_pending_record(context);
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some(tap) = self.tap.as_mut() {
                    tap.feed(&bytes);
                }
                self.response_bytes += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(error))) => {
                tracing::warn!(error = %error, "model stream failed mid-way");
                self.finish(Outcome::UpstreamError);
                self.inner = None;
                self.end_with(Some(Err(std::io::Error::other(error.to_string()))), context)
            }
            Poll::Ready(None) => {
                self.finish(Outcome::Success);
                self.inner = None;
                self.end_with(None, context)
            }
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if let Some(record) = self.pending_record.take() {
            // The client left while the event was being recorded: finish recording it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(record);
            }
        }
        let (Some(meter), Some(mut tap)) = (self.meter.take(), self.tap.take()) else {
            return;
        };
        let response_bytes = self.response_bytes;
        let Some(mut inner) = self.inner.take() else {
            meter.record_in_background(&tap, Outcome::ClientAborted, response_bytes);
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            meter.record_in_background(&tap, Outcome::ClientAborted, response_bytes);
            return;
        };
        runtime.spawn(async move {
            let drained = tokio::time::timeout(DRAIN_LIMIT, async {
                while let Some(Ok(bytes)) = inner.next().await {
                    tap.feed(&bytes);
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!("stream of a departed client did not end in time; metering the tokens reported so far");
            }
            meter.record_in_background(&tap, Outcome::ClientAborted, response_bytes);
        });
    }
}
