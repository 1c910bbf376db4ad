use super::*;
use schemas::bedrock_stream::{encode_exception, encode_invoke_chunk};

fn names() -> ModelNames {
    ModelNames::from_toml(
        "schema_version = 1\n[[models]]\nname = \"claude-sonnet-4-5\"\nmodel_id = \"us.anthropic.claude-sonnet-4-5-20250929-v1:0\"\n",
    )
    .unwrap()
}

#[test]
fn the_body_loses_model_and_stream_and_gains_bedrocks_version() {
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}],"system":"be brief","temperature":0.2}"#;
    let request = messages_request(body, None, &names()).unwrap();
    assert_eq!(
        request.model.model_id,
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    );
    assert_eq!(request.model.name, "claude-sonnet-4-5");
    assert!(request.stream);
    let sent: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        sent,
        json!({"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
               "system": "be brief", "temperature": 0.2,
               "anthropic_version": "bedrock-2023-05-31"})
    );
}

#[test]
fn bedrock_ids_go_through_a_given_version_stays_and_beta_features_become_a_field() {
    let body = br#"{"model":"anthropic.claude-3-haiku-20240307-v1:0","max_tokens":5,"messages":[],"anthropic_version":"bedrock-2023-05-31"}"#;
    let request = messages_request(
        body,
        Some("prompt-caching-2024-07-31, token-efficient-tools-2025-02-19"),
        &names(),
    )
    .unwrap();
    assert_eq!(
        request.model.model_id,
        "anthropic.claude-3-haiku-20240307-v1:0"
    );
    assert!(!request.stream);
    let sent: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        sent["anthropic_beta"],
        json!([
            "prompt-caching-2024-07-31",
            "token-efficient-tools-2025-02-19"
        ])
    );
}

#[test]
fn malformed_bodies_are_refused_saying_what_to_fix() {
    for (body, words) in [
        (&b"{"[..], "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (br#"{"max_tokens":5}"#, "has no \"model\""),
        (br#"{"model":7}"#, "non-empty string"),
        (br#"{"model":"x.y-v1:0","stream":"yes"}"#, "true or false"),
        (
            br#"{"model":"../../admin"}"#,
            "one of the operator's model names",
        ),
    ] {
        let error = messages_request(body, None, &names()).unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(error.message.contains(words), "{body:?}: {}", error.message);
    }
}

#[test]
fn statuses_map_to_anthropics_error_types() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
    ] {
        assert_eq!(error_type(status), kind);
    }
    assert_eq!(
        error_from(429, br#"{"message":"daily request limit reached"}"#),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "daily request limit reached"}})
    );
    assert_eq!(
        error_from(502, b"not json")["error"]["message"],
        "the request failed with status 502"
    );
}

fn stream_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    for chunk in [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude", "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}),
        json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 7}}),
    ] {
        bytes.extend(encode_invoke_chunk(&chunk));
    }
    bytes
}

#[test]
fn chunks_become_anthropics_events_in_order_whatever_the_pieces() {
    let bytes = stream_bytes();
    let whole = StreamTranslator::default().push(&bytes);
    let mut pieces = StreamTranslator::default();
    let mut split = String::new();
    for piece in bytes.chunks(7) {
        split.push_str(&pieces.push(piece));
    }
    assert_eq!(whole, split, "the same events, however the bytes arrive");
    let events: Vec<&str> = whole
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(whole.contains("data: {\"delta\":{\"text\":\"Hello\",\"type\":\"text_delta\"},\"index\":0,\"type\":\"content_block_delta\"}"), "{whole}");
    assert!(
        !whole.contains("invocationMetrics"),
        "Bedrock's own metrics stay out"
    );
}

#[test]
fn exceptions_and_garbage_end_the_stream_with_one_error_event() {
    let mut bytes = encode_invoke_chunk(&json!({"type": "message_start", "message": {}}));
    let exception = encode_exception("throttlingException", "Too many tokens, slow down");
    bytes.extend(exception);
    bytes.extend(encode_invoke_chunk(&json!({"type": "message_stop"})));
    let text = StreamTranslator::default().push(&bytes);
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(text.contains("event: error\ndata: {\"error\":{\"message\":\"Too many tokens, slow down\",\"type\":\"rate_limit_error\"},\"type\":\"error\"}"), "{text}");
    assert!(!text.contains("message_stop"), "nothing after the error");

    let mut broken = StreamTranslator::default();
    let text = broken.push(&[0xff; 32]);
    assert!(text.starts_with("event: error\n"), "{text}");
    assert!(text.contains("could not be read"));
    assert_eq!(broken.push(&stream_bytes()), "", "ended");
}

#[test]
fn count_tokens_asks_bedrock_about_the_foundation_model_with_the_body_in_base64() {
    use base64::Engine;
    let body = br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}],"system":"s"}"#;
    let request = count_tokens_request(body, None, &names()).unwrap();
    assert_eq!(
        request.model.model_id,
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    );
    assert_eq!(
        request.bedrock_model_id,
        "anthropic.claude-sonnet-4-5-20250929-v1:0"
    );
    let sent: Value = serde_json::from_slice(&request.body).unwrap();
    let inner = base64::engine::general_purpose::STANDARD
        .decode(sent["input"]["invokeModel"]["body"].as_str().unwrap())
        .unwrap();
    let inner: Value = serde_json::from_slice(&inner).unwrap();
    assert_eq!(
        inner,
        json!({"messages": [{"role": "user", "content": "hi"}], "system": "s",
               "anthropic_version": "bedrock-2023-05-31", "max_tokens": 1})
    );
    assert_eq!(
        count_tokens_answer(br#"{"inputTokens": 42}"#),
        Some(json!({"input_tokens": 42}))
    );
    assert_eq!(count_tokens_answer(b"{}"), None);
    for (id, base) in [
        ("eu.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
        ("global.anthropic.claude-x-v1:0", "anthropic.claude-x-v1:0"),
        ("anthropic.claude-x-v1:0", "anthropic.claude-x-v1:0"),
        ("us.weird", "us.weird"),
    ] {
        assert_eq!(base_model_id(id), base);
    }
}
