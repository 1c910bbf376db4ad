//! The client APIs customers already use, translated to and from Bedrock's, as pure
//! functions (the routes that use them are in [`crate::client_apis`]).

pub mod anthropic;
pub mod openai;
#[cfg(test)]
mod robustness_tests;

use schemas::bedrock_stream::{FrameReader, header_string};

/// One item of a Bedrock event stream, as a translator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// An event: its `:event-type` and JSON payload.
    Event { kind: String, payload: Vec<u8> },
    /// The end of the stream in error: Bedrock's exception event, or bytes that cannot be
    /// read; the HTTP status the error would have had, and its message.
    Failure { status: u16, message: String },
}

/// Reads Bedrock's event-stream bytes, fed as they arrive, into [`StreamItem`]s. After a
/// failure it yields nothing more.
#[derive(Debug, Default)]
pub struct EventReader {
    reader: FrameReader,
    ended: bool,
}

impl EventReader {
    /// The items `bytes` complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<StreamItem> {
        if self.ended {
            return Vec::new();
        }
        let messages = match self.reader.push(bytes) {
            Ok(messages) => messages,
            Err(reason) => {
                self.ended = true;
                return vec![StreamItem::Failure {
                    status: 502,
                    message: format!("the model's stream could not be read: {reason}"),
                }];
            }
        };
        let mut items = Vec::with_capacity(messages.len());
        for message in &messages {
            if header_string(message, ":message-type") == Some("exception") {
                let kind = header_string(message, ":exception-type").unwrap_or("exception");
                let status = if kind.to_lowercase().contains("throttling") {
                    429
                } else {
                    500
                };
                let text = serde_json::from_slice::<serde_json::Value>(message.payload())
                    .ok()
                    .and_then(|payload| payload.get("message")?.as_str().map(str::to_owned))
                    .unwrap_or_else(|| kind.to_owned());
                items.push(StreamItem::Failure {
                    status,
                    message: text,
                });
                self.ended = true;
                break;
            }
            items.push(StreamItem::Event {
                kind: header_string(message, ":event-type")
                    .unwrap_or_default()
                    .to_owned(),
                payload: message.payload().to_vec(),
            });
        }
        items
    }
}
