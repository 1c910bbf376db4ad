use serde_json::json;

use super::*;

fn anthropic_stream(input: u64, output: u64) -> Vec<Vec<u8>> {
    vec![
        encode_invoke_chunk(
            &json!({"type": "message_start", "message": {"usage": {"input_tokens": input, "output_tokens": 1}}}),
        ),
        encode_invoke_chunk(
            &json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Paris"}}),
        ),
        encode_invoke_chunk(&json!({"type": "message_delta", "usage": {"output_tokens": output}})),
        encode_invoke_chunk(&json!({
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": input, "outputTokenCount": output, "invocationLatency": 420, "firstByteLatency": 100}
        })),
    ]
}

#[test]
fn invoke_streams_are_metered_from_the_final_metrics() {
    let mut tap = StreamUsageTap::new(StreamKind::InvokeWithResponseStream);
    for frame in anthropic_stream(25, 40) {
        tap.feed(&frame);
    }
    let observation = tap.observation();
    assert_eq!(observation.events, 4);
    assert_eq!(
        observation.final_usage,
        Some(TokenUsage {
            input_tokens: 25,
            output_tokens: 40,
            ..TokenUsage::default()
        })
    );
}

#[test]
fn frames_split_at_any_byte_still_decode() {
    let stream: Vec<u8> = anthropic_stream(7, 9).concat();
    for split in [1, 2, 3, 7, 13, 64] {
        let mut tap = StreamUsageTap::new(StreamKind::InvokeWithResponseStream);
        for piece in stream.chunks(split) {
            tap.feed(piece);
        }
        assert_eq!(
            tap.observation().usage().output_tokens,
            9,
            "pieces of {split} bytes"
        );
    }
}

#[test]
fn a_cut_stream_reports_the_tokens_produced_so_far() {
    let frames = anthropic_stream(30, 12);
    let mut tap = StreamUsageTap::new(StreamKind::InvokeWithResponseStream);
    for frame in &frames[..3] {
        tap.feed(frame);
    }
    tap.feed(&frames[3][..10]);
    let observation = tap.observation();
    assert_eq!(observation.final_usage, None);
    assert_eq!(
        observation.usage(),
        TokenUsage {
            input_tokens: 30,
            output_tokens: 12,
            ..TokenUsage::default()
        }
    );
}

#[test]
fn converse_streams_are_metered_from_the_metadata_event() {
    let mut tap = StreamUsageTap::new(StreamKind::ConverseStream);
    tap.feed(&encode_event("messageStart", br#"{"role":"assistant"}"#));
    tap.feed(&encode_event(
        "contentBlockDelta",
        br#"{"contentBlockIndex":0,"delta":{"text":"Paris"}}"#,
    ));
    tap.feed(&encode_event(
        "messageStop",
        br#"{"stopReason":"end_turn"}"#,
    ));
    tap.feed(&encode_event(
        "metadata",
        br#"{"usage":{"inputTokens":11,"outputTokens":3,"totalTokens":14,"cacheReadInputTokens":5,"cacheWriteInputTokens":2},"metrics":{"latencyMs":250}}"#,
    ));
    assert_eq!(
        tap.observation().final_usage,
        Some(TokenUsage {
            input_tokens: 11,
            output_tokens: 3,
            cache_read_tokens: 5,
            cache_write_tokens: 2
        })
    );
}

#[test]
fn garbage_stops_the_tap_without_panicking() {
    let mut tap = StreamUsageTap::new(StreamKind::ConverseStream);
    tap.feed(&[0xff; 64]);
    assert!(tap.observation().undecodable.is_some());
    tap.feed(&encode_event(
        "metadata",
        br#"{"usage":{"inputTokens":1,"outputTokens":1}}"#,
    ));
    assert_eq!(tap.observation().final_usage, None, "the tap stays stopped");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let mut tap = StreamUsageTap::new(StreamKind::InvokeWithResponseStream);
        tap.feed(&bytes);
    }
}
