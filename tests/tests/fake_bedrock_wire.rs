//! The fake Bedrock itself answers each operation in Bedrock's wire format, checked with the
//! same decoders the proxy uses (so the proxy's tests stand on a faithful fake).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use schemas::bedrock_stream::{StreamKind, StreamUsageTap};
use tests::fake_bedrock::{Behavior, FakeBedrock, FakeOperation};

async fn signed_post(fake: &FakeBedrock, path: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", fake.endpoint_url()))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20261129/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=abc")
        .header("x-amz-date", "20261129T000000Z")
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn streams_are_event_stream_frames_with_the_reported_usage() {
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(50);
    for (path, kind, operation) in [
        (
            "/model/m/invoke-with-response-stream",
            StreamKind::InvokeWithResponseStream,
            FakeOperation::InvokeStream,
        ),
        (
            "/model/m/converse-stream",
            StreamKind::ConverseStream,
            FakeOperation::ConverseStream,
        ),
    ] {
        let response = signed_post(&fake, path, r#"{"messages":[]}"#).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.amazon.eventstream"
        );
        let bytes = response.bytes().await.unwrap();
        let mut tap = StreamUsageTap::new(kind);
        tap.feed(&bytes);
        let call = fake
            .answered()
            .into_iter()
            .rev()
            .find(|call| call.operation == operation)
            .unwrap();
        let usage = tap.observation().final_usage.unwrap();
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (call.input_tokens, call.output_tokens)
        );
        assert!(tap.observation().events > 50);
    }
}

#[tokio::test]
async fn converse_answers_with_usage_and_faults_can_be_injected() {
    let fake = FakeBedrock::start().await;
    let converse: serde_json::Value = signed_post(&fake, "/model/m/converse", r#"{"messages":[]}"#)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        converse["usage"]["inputTokens"],
        fake.answered()[0].input_tokens
    );

    fake.set_behavior(Behavior::CutStreamAfter(2));
    let cut = signed_post(&fake, "/model/m/converse-stream", "{}")
        .await
        .bytes()
        .await
        .unwrap();
    let mut tap = StreamUsageTap::new(StreamKind::ConverseStream);
    tap.feed(&cut);
    assert_eq!(tap.observation().events, 2);
    assert_eq!(tap.observation().final_usage, None);

    fake.set_behavior(Behavior::MalformedChunk);
    let malformed = signed_post(&fake, "/model/m/invoke-with-response-stream", "{}")
        .await
        .bytes()
        .await
        .unwrap();
    let mut tap = StreamUsageTap::new(StreamKind::InvokeWithResponseStream);
    tap.feed(&malformed);
    assert!(tap.observation().undecodable.is_some());

    let unsigned = reqwest::Client::new()
        .post(format!("{}/model/m/converse", fake.endpoint_url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    assert_eq!(fake.refused_unsigned(), 1);
}

#[tokio::test]
async fn a_fake_for_load_counts_calls_without_keeping_them() {
    let fake = FakeBedrock::start().await;
    fake.set_recording(false);
    for _ in 0..3 {
        let response = signed_post(&fake, "/model/m/invoke", r#"{"messages":[]}"#).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(fake.answered_count(), 3);
    assert!(
        fake.answered().is_empty(),
        "nothing kept: memory stays flat"
    );
    fake.set_recording(true);
    signed_post(&fake, "/model/m/invoke", r#"{"messages":[]}"#).await;
    assert_eq!((fake.answered_count(), fake.answered().len()), (4, 1));
}
