//! The translators never panic, whatever a client sends or Bedrock answers: arbitrary JSON
//! (shaped from each API's own vocabulary, so generated bodies reach deep into the
//! mapping), arbitrary bytes, and event streams of arbitrary events cut at arbitrary
//! places. A request either maps or is refused with a 400 that names the problem.

use proptest::prelude::*;
use schemas::bedrock_stream::{encode_event, encode_exception, encode_invoke_chunk};
use schemas::model_names::ModelNames;
use serde_json::{Map, Value, json};

use super::anthropic::{self, StreamTranslator};
use super::openai::{self, ChunkTranslator};

/// Field names of the two client APIs and of Bedrock's answers and stream events.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "detail",
    "tool_calls",
    "id",
    "function",
    "name",
    "arguments",
    "tool_call_id",
    "tools",
    "tool_choice",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stream",
    "stream_options",
    "include_usage",
    "n",
    "user",
    "metadata",
    "system",
    "anthropic_version",
    "parameters",
    "description",
    "source",
    "media_type",
    "data",
    "output",
    "message",
    "stopReason",
    "usage",
    "inputTokens",
    "outputTokens",
    "cacheReadInputTokens",
    "toolUse",
    "toolUseId",
    "input",
    "delta",
    "contentBlockIndex",
    "start",
    "index",
    "stop_reason",
    "amazon-bedrock-invocationMetrics",
    "inputTokenCount",
    "outputTokenCount",
    "logprobs",
    "seed",
    "response_format",
    "store",
    "frequency_penalty",
];

/// String values the mappings look for.
const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "image_url",
    "image",
    "tool_use",
    "tool_result",
    "auto",
    "required",
    "none",
    "any",
    "end_turn",
    "max_tokens",
    "tool_use",
    "stop_sequence",
    "content_filtered",
    "message_start",
    "content_block_delta",
    "message_delta",
    "message_stop",
    "claude-3-haiku",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "us.anthropic.claude-3-haiku-20240307-v1:0",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:image/png;base64,@@",
    "https://example.com/a.png",
    "",
    "{",
    "{}",
    "[1]",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0_u64..5).prop_map(Value::from),
        any::<f64>().prop_map(|number| json!(number)),
        proptest::sample::select(WORDS).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..7).prop_map(
                |fields| {
                    Value::Object(
                        fields
                            .into_iter()
                            .map(|(key, value)| (key.to_owned(), value))
                            .collect::<Map<String, Value>>(),
                    )
                }
            ),
        ]
    })
}

/// A request body: usually an object naming a model, sometimes anything at all.
fn request_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (json_value(), proptest::sample::select(WORDS)).prop_map(|(value, model)| {
            let mut body = match value {
                Value::Object(fields) => fields,
                other => Map::from_iter([("messages".to_owned(), other)]),
            };
            body.entry("model").or_insert_with(|| Value::from(model));
            Value::Object(body).to_string().into_bytes()
        }),
        1 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn names() -> ModelNames {
    ModelNames::from_toml(
        "schema_version = 1\n[[models]]\nname = \"claude-3-haiku\"\nmodel_id = \"us.anthropic.claude-3-haiku-20240307-v1:0\"\n",
    )
    .unwrap()
}

/// A stream of events of the given kinds with arbitrary payloads, perhaps an exception,
/// then cut into pieces at arbitrary places.
fn stream_pieces(kinds: &'static [&'static str]) -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        proptest::collection::vec((proptest::sample::select(kinds), json_value()), 0..8),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::collection::vec(1_usize..64, 1..8),
    )
        .prop_map(|(events, exception, garbage, cuts)| {
            let mut bytes = Vec::new();
            for (kind, payload) in events {
                if kind == "chunk" {
                    bytes.extend(encode_invoke_chunk(&payload));
                } else {
                    bytes.extend(encode_event(kind, payload.to_string().as_bytes()));
                }
            }
            if exception {
                bytes.extend(encode_exception("throttlingException", "slow down"));
            }
            bytes.extend(garbage);
            let mut pieces = Vec::new();
            let mut rest = bytes.as_slice();
            for cut in cuts.into_iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, after) = rest.split_at(cut.min(rest.len()));
                pieces.push(piece.to_vec());
                rest = after;
            }
            pieces
        })
}

const CONVERSE_EVENTS: &[&str] = &[
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_request_body_maps_or_is_refused_with_a_named_400(body in request_body()) {
        let names = names();
        if let Err(error) = openai::chat_request(&body, &names) {
            prop_assert_eq!(error.status.as_u16(), 400);
            prop_assert!(!error.message.is_empty());
        }
        for beta in [None, Some("tools-2024-04-04")] {
            if let Err(error) = anthropic::messages_request(&body, beta, &names) {
                prop_assert_eq!(error.status.as_u16(), 400);
                prop_assert!(!error.message.is_empty());
            }
            let _ = anthropic::count_tokens_request(&body, beta, &names);
        }
    }

    #[test]
    fn any_answer_from_bedrock_translates_or_is_declined(answer in json_value(), status in 100_u16..600) {
        let bytes = answer.to_string().into_bytes();
        let _ = openai::completion(&bytes, "chatcmpl-1", "claude-3-haiku", 0);
        let _ = openai::error_from(status, &bytes);
        let _ = anthropic::count_tokens_answer(&bytes);
        let _ = anthropic::error_from(status, &bytes);
    }

    #[test]
    fn any_converse_stream_translates_without_panicking(pieces in stream_pieces(CONVERSE_EVENTS), usage in any::<bool>()) {
        let mut translator = ChunkTranslator::new("chatcmpl-1", "claude-3-haiku", 0, usage);
        for piece in &pieces {
            let text = translator.push(piece);
            for line in text.lines().filter(|line| line.starts_with("data: ")) {
                let data = &line["data: ".len()..];
                prop_assert!(data == "[DONE]" || serde_json::from_str::<Value>(data).is_ok(), "{}", line);
            }
        }
    }

    #[test]
    fn any_invoke_stream_translates_without_panicking(pieces in stream_pieces(&["chunk"])) {
        let mut translator = StreamTranslator::default();
        for piece in &pieces {
            let text = translator.push(piece);
            for line in text.lines().filter(|line| line.starts_with("data: ")) {
                prop_assert!(serde_json::from_str::<Value>(&line["data: ".len()..]).is_ok(), "{}", line);
            }
        }
    }
}
