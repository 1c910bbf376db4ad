//! Token counts from Bedrock's streamed answers, read from the AWS event-stream frames as
//! they pass through, without changing or holding back a byte.
//!
//! - InvokeModelWithResponseStream: `chunk` events whose JSON payload carries the model's
//!   chunk base64-encoded in `bytes`; the last chunk holds `amazon-bedrock-invocationMetrics`
//!   (`inputTokenCount`, `outputTokenCount`, and cache counts where the model reports them).
//!   Anthropic chunks also report `usage` as they go (`message_start`, `message_delta`),
//!   which gives the tokens produced so far when a stream is cut.
//! - ConverseStream: the `metadata` event carries `usage` (`inputTokens`, `outputTokens`,
//!   `cacheReadInputTokens`, `cacheWriteInputTokens`).
//!
//! The tap keeps at most one incomplete frame buffered, so memory stays flat however long
//! the stream is. A frame it cannot decode stops the tap, never the stream.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use base64::Engine;
use bytes::{Buf, BytesMut};
use serde_json::Value;

use crate::bedrock_usage::{TokenUsage, usage_from_body};

/// Which streamed operation the frames belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    InvokeWithResponseStream,
    ConverseStream,
}

/// What the tap learned from a stream so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamObservation {
    /// The final counts Bedrock reported at the end of the stream.
    pub final_usage: Option<TokenUsage>,
    /// The largest counts reported along the way (for streams cut before the end).
    pub running_usage: TokenUsage,
    /// Events seen.
    pub events: u64,
    /// The first exception event's type, if Bedrock sent one mid-stream.
    pub exception: Option<String>,
    /// Why the tap stopped reading frames, if it did.
    pub undecodable: Option<String>,
}

impl StreamObservation {
    /// The best count available: the final one, else what was reported so far.
    pub fn usage(&self) -> TokenUsage {
        self.final_usage.unwrap_or(self.running_usage)
    }
}

/// Largest event-stream message AWS sends (16 MiB); a longer declared length is garbage.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
const MIN_FRAME_BYTES: usize = 16;
const PRELUDE_BYTES: usize = 12;

/// Splits event-stream bytes, fed in any pieces, into whole messages. It keeps at most one
/// incomplete frame buffered; a frame that cannot be decoded ends it (every later call
/// returns the same error).
#[derive(Debug)]
pub struct FrameReader {
    decoder: MessageFrameDecoder,
    buffer: BytesMut,
    /// Whether the buffer starts at a frame boundary (the decoder holds no prelude).
    at_boundary: bool,
    broken: Option<String>,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self {
            decoder: MessageFrameDecoder::new(),
            buffer: BytesMut::new(),
            at_boundary: true,
            broken: None,
        }
    }

    /// Feeds the next bytes; returns the messages they complete, or why the stream cannot be
    /// read (then the messages completed before are lost to the caller: it stops anyway).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Message>, String> {
        if let Some(reason) = &self.broken {
            return Err(reason.clone());
        }
        self.buffer.extend_from_slice(bytes);
        let mut messages = Vec::new();
        loop {
            if self.at_boundary && self.buffer.len() >= 4 {
                let declared = u32::from_be_bytes([
                    self.buffer[0],
                    self.buffer[1],
                    self.buffer[2],
                    self.buffer[3],
                ]);
                let declared = usize::try_from(declared).unwrap_or(usize::MAX);
                if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&declared) {
                    return Err(self.break_with(format!("frame declares {declared} bytes")));
                }
            }
            let prelude_available = self.buffer.len() >= PRELUDE_BYTES;
            match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => {
                    self.at_boundary = true;
                    messages.push(message);
                }
                Ok(DecodedFrame::Incomplete) => {
                    if prelude_available {
                        self.at_boundary = false;
                    }
                    break;
                }
                Err(error) => return Err(self.break_with(error.to_string())),
            }
        }
        if self.buffer.capacity() > 1024 * 1024 && self.buffer.remaining() < 64 * 1024 {
            self.buffer = BytesMut::from(&self.buffer[..]);
        }
        Ok(messages)
    }

    fn break_with(&mut self, reason: String) -> String {
        self.broken = Some(reason.clone());
        self.buffer = BytesMut::new();
        reason
    }
}

/// The model chunk an InvokeModelWithResponseStream `chunk` payload carries (base64 in
/// `bytes`), decoded as JSON.
pub fn invoke_chunk(payload: &[u8]) -> Option<Value> {
    let payload: Value = serde_json::from_slice(payload).ok()?;
    let encoded = payload.get("bytes")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    serde_json::from_slice(&decoded).ok()
}

/// Reads usage from event-stream bytes as they pass.
#[derive(Debug)]
pub struct StreamUsageTap {
    kind: StreamKind,
    reader: FrameReader,
    observation: StreamObservation,
}

/// A message's string header (`:event-type`, `:message-type`, `:exception-type`).
pub fn header_string<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|header| header.name().as_str() == name)
        .and_then(|header| match header.value() {
            HeaderValue::String(value) => Some(value.as_str()),
            _ => None,
        })
}

fn max_usage(a: TokenUsage, b: TokenUsage) -> TokenUsage {
    TokenUsage {
        input_tokens: a.input_tokens.max(b.input_tokens),
        output_tokens: a.output_tokens.max(b.output_tokens),
        cache_read_tokens: a.cache_read_tokens.max(b.cache_read_tokens),
        cache_write_tokens: a.cache_write_tokens.max(b.cache_write_tokens),
    }
}

fn count(value: &Value, names: &[&str]) -> Option<u64> {
    names.iter().find_map(|name| value.get(*name)?.as_u64())
}

/// Running counts from one Anthropic streaming chunk (`message_start` or `message_delta`).
fn anthropic_running_usage(chunk: &Value) -> Option<TokenUsage> {
    let usage = chunk
        .get("message")
        .and_then(|message| message.get("usage"))
        .or_else(|| chunk.get("usage"))?;
    Some(TokenUsage {
        input_tokens: count(usage, &["input_tokens"]).unwrap_or(0),
        output_tokens: count(usage, &["output_tokens"]).unwrap_or(0),
        cache_read_tokens: count(usage, &["cache_read_input_tokens"]).unwrap_or(0),
        cache_write_tokens: count(usage, &["cache_creation_input_tokens"]).unwrap_or(0),
    })
}

impl StreamUsageTap {
    /// A tap for one stream.
    pub fn new(kind: StreamKind) -> Self {
        Self {
            kind,
            reader: FrameReader::new(),
            observation: StreamObservation::default(),
        }
    }

    /// Feeds the next bytes of the stream, exactly as they went to the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.observation.undecodable.is_some() {
            return;
        }
        match self.reader.push(bytes) {
            Ok(messages) => {
                for message in &messages {
                    self.observe(message);
                }
            }
            Err(reason) => self.observation.undecodable = Some(reason),
        }
    }

    /// What the tap has seen.
    pub fn observation(&self) -> &StreamObservation {
        &self.observation
    }

    fn observe(&mut self, message: &Message) {
        self.observation.events += 1;
        if header_string(message, ":message-type") == Some("exception") {
            if self.observation.exception.is_none() {
                self.observation.exception =
                    header_string(message, ":exception-type").map(str::to_owned);
            }
            return;
        }
        match (self.kind, header_string(message, ":event-type")) {
            (StreamKind::InvokeWithResponseStream, Some("chunk")) => {
                if let Some(chunk) = invoke_chunk(message.payload()) {
                    self.observe_chunk(&chunk);
                }
            }
            (StreamKind::ConverseStream, Some("metadata")) => {
                if let Some(usage) = usage_from_body(message.payload()) {
                    self.observation.final_usage = Some(usage);
                }
            }
            _ => {}
        }
    }

    fn observe_chunk(&mut self, chunk: &Value) {
        if let Some(metrics) = chunk.get("amazon-bedrock-invocationMetrics") {
            self.observation.final_usage = Some(TokenUsage {
                input_tokens: count(metrics, &["inputTokenCount"]).unwrap_or(0),
                output_tokens: count(metrics, &["outputTokenCount"]).unwrap_or(0),
                cache_read_tokens: count(metrics, &["cacheReadInputTokenCount"]).unwrap_or(0),
                cache_write_tokens: count(metrics, &["cacheWriteInputTokenCount"]).unwrap_or(0),
            });
        } else if let Some(running) = anthropic_running_usage(chunk) {
            self.observation.running_usage = max_usage(self.observation.running_usage, running);
        }
    }
}

/// Encodes one event-stream event, as Bedrock frames it (used by the fake and by tests).
pub fn encode_event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    use aws_smithy_types::event_stream::Header;
    let message = Message::new(payload.to_vec())
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".to_owned().into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".to_owned().into()),
        ));
    let mut buffer = Vec::new();
    // Writing into a Vec cannot run out of space; an error here means a malformed message.
    if aws_smithy_eventstream::frame::write_message_to(&message, &mut buffer).is_err() {
        buffer.clear();
    }
    buffer
}

/// Encodes an exception event, as Bedrock sends one mid-stream (`throttlingException`, …).
pub fn encode_exception(exception_type: &str, message: &str) -> Vec<u8> {
    use aws_smithy_types::event_stream::Header;
    let payload = serde_json::json!({ "message": message }).to_string();
    let message = Message::new(payload.into_bytes())
        .add_header(Header::new(
            ":exception-type",
            HeaderValue::String(exception_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".to_owned().into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("exception".to_owned().into()),
        ));
    let mut buffer = Vec::new();
    if aws_smithy_eventstream::frame::write_message_to(&message, &mut buffer).is_err() {
        buffer.clear();
    }
    buffer
}

/// Encodes an InvokeModelWithResponseStream `chunk` event around a model chunk.
pub fn encode_invoke_chunk(model_chunk: &Value) -> Vec<u8> {
    let bytes = base64::engine::general_purpose::STANDARD.encode(model_chunk.to_string());
    encode_event(
        "chunk",
        serde_json::json!({ "bytes": bytes }).to_string().as_bytes(),
    )
}

#[cfg(test)]
#[path = "bedrock_stream_tests.rs"]
mod tests;
