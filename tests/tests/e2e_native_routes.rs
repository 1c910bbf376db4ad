//! Bedrock's own routes through the real `tollgate serve` against the fake Bedrock: every
//! operation answered in Bedrock's format, streams passed through frame for frame and
//! metered to the token, model ids percent-encoded as the SDKs send them, and a client
//! that leaves mid-stream still metered exactly once.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use proxy::upstream::model_runtime::encode_path_segment;
use schemas::Outcome;
use schemas::bedrock_stream::{StreamKind, StreamUsageTap};
use tests::fake_bedrock::{FakeBedrock, FakeOperation};
use tests::harness::Tollgate;

const PROFILE_ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";

fn converse_body() -> serde_json::Value {
    serde_json::json!({
        "messages": [{"role": "user", "content": [{"text": "What is the capital of France?"}]}],
        "inferenceConfig": {"maxTokens": 100}
    })
}

fn invoke_body() -> serde_json::Value {
    serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_operation_is_forwarded_and_metered_to_the_token() {
    every_operation_end_to_end(Tollgate::new(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_operation_is_metered_on_the_aws_backend_too() {
    let settings = tests::aws_env::create_resources(1).await;
    every_operation_end_to_end(Tollgate::on_aws(settings), false).await;
}

async fn every_operation_end_to_end(tollgate: Tollgate, local_parquet: bool) {
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(40);
    let (customer_id, token) = tollgate.create_customer("Native Co", None);
    let server = tollgate.serve_against(&fake, None);
    let client = reqwest::Client::new();

    let cases = [
        (
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "invoke",
            invoke_body(),
            None,
        ),
        (PROFILE_ARN, "converse", converse_body(), None),
        (
            "anthropic.claude-3-sonnet-20240229-v1:0",
            "invoke-with-response-stream",
            invoke_body(),
            Some(StreamKind::InvokeWithResponseStream),
        ),
        (
            "amazon.nova-lite-v1:0",
            "converse-stream",
            converse_body(),
            Some(StreamKind::ConverseStream),
        ),
    ];
    for (model_id, operation, body, stream_kind) in &cases {
        let url = format!(
            "{}/model/{}/{operation}",
            server.base_url,
            encode_path_segment(model_id)
        );
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{operation}");
        assert!(response.headers().contains_key("x-amzn-requestid"));
        let call = fake.answered().last().cloned().unwrap();
        assert_eq!(
            &call.model_id, model_id,
            "the model id reaches Bedrock decoded"
        );
        assert_eq!(&call.body, body, "the body reaches Bedrock unchanged");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.bytes().await.unwrap();
        match stream_kind {
            Some(kind) => {
                assert_eq!(content_type, "application/vnd.amazon.eventstream");
                let mut tap = StreamUsageTap::new(*kind);
                tap.feed(&bytes);
                assert!(
                    tap.observation().undecodable.is_none(),
                    "frames arrive intact"
                );
                assert!(tap.observation().events > 40);
                let usage = tap.observation().final_usage.unwrap();
                assert_eq!(
                    (usage.input_tokens, usage.output_tokens),
                    (call.input_tokens, call.output_tokens)
                );
            }
            None => {
                let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert!(answer.get("usage").is_some(), "{answer}");
            }
        }
    }
    let operations: Vec<FakeOperation> =
        fake.answered().iter().map(|call| call.operation).collect();
    assert_eq!(
        operations,
        vec![
            FakeOperation::Invoke,
            FakeOperation::Converse,
            FakeOperation::InvokeStream,
            FakeOperation::ConverseStream
        ]
    );

    assert!(server.terminate().success());
    let usage = tollgate.usage_today(&customer_id);
    let answered = fake.answered();
    assert_eq!(usage["totals"]["requests"], 4);
    assert_eq!(usage["totals"]["by_api"]["bedrock"], 4);
    assert_eq!(
        usage["totals"]["input_tokens"],
        answered.iter().map(|call| call.input_tokens).sum::<u64>()
    );
    assert_eq!(
        usage["totals"]["output_tokens"],
        answered.iter().map(|call| call.output_tokens).sum::<u64>()
    );
    if !local_parquet {
        return;
    }
    let rows = tollgate.parquet_rows();
    let mut operations: Vec<&str> = rows
        .iter()
        .map(|row| schemas::arrow_column::StringEnum::as_str(&row.operation))
        .collect();
    operations.sort_unstable();
    assert_eq!(
        operations,
        vec!["converse", "converse_stream", "invoke", "invoke_stream"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_is_metered_once_with_bedrocks_final_count() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(400);
    let (customer_id, token) = tollgate.create_customer("Leaving Co", None);
    let server = tollgate.serve_against(&fake, None);

    let mut response = reqwest::Client::new()
        .post(format!("{}/model/m/converse-stream", server.base_url))
        .bearer_auth(&token)
        .json(&converse_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(response);

    // The proxy drains Bedrock's stream to learn the final count, then meters the call.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.terminate().success());
    let rows = tollgate.parquet_rows();
    assert_eq!(rows.len(), 1, "exactly one event");
    assert_eq!(rows[0].outcome, Outcome::ClientAborted);
    let call = fake.answered()[0].clone();
    assert_eq!(
        (rows[0].input_tokens, rows[0].output_tokens),
        (call.input_tokens, call.output_tokens)
    );
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_before_bedrock_answers_is_metered_once_with_bedrocks_count() {
    use tests::fake_bedrock::Behavior;
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_behavior(Behavior::Slow(Duration::from_millis(800)));
    let (customer_id, token) = tollgate.create_customer("Impatient Co", None);
    let server = tollgate.serve_against(&fake, None);

    // The client gives up while the proxy is still waiting for Bedrock's answer.
    let gave_up = reqwest::Client::new()
        .post(format!("{}/model/m/converse", server.base_url))
        .bearer_auth(&token)
        .json(&converse_body())
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());

    // Bedrock still answers the proxy, which meters the call though nobody is listening.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.terminate().success());
    let rows = tollgate.parquet_rows();
    assert_eq!(rows.len(), 1, "exactly one event");
    assert_eq!(rows[0].outcome, Outcome::ClientAborted);
    let answered = fake.answered();
    assert_eq!(answered.len(), 1, "Bedrock answered the call once");
    assert_eq!(
        (rows[0].input_tokens, rows[0].output_tokens),
        (answered[0].input_tokens, answered[0].output_tokens)
    );
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_faults_reach_the_client_in_bedrocks_shape_and_are_metered_as_upstream_errors() {
    use tests::fake_bedrock::Behavior;
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("Faulty Co", None);
    let server = tollgate.serve_against(&fake, None);
    let client = reqwest::Client::new();
    let call = |operation: &'static str| {
        client
            .post(format!(
                "{}/model/anthropic.claude-3-haiku-20240307-v1%3A0/{operation}",
                server.base_url
            ))
            .bearer_auth(&token)
            .json(&invoke_body())
            .send()
    };

    fake.set_behavior(Behavior::AccessDenied);
    let denied = call("invoke").await.unwrap();
    assert_eq!(
        denied.status(),
        502,
        "Bedrock refusing our own AWS access is the operator's problem"
    );
    assert_eq!(
        denied.headers()["x-amzn-errortype"],
        "ServiceUnavailableException"
    );
    let message = denied.text().await.unwrap();
    assert!(
        !message.contains("don't have access"),
        "the raw AWS error is not shown: {message}"
    );

    fake.set_behavior(Behavior::Throttle);
    let throttled = call("converse-stream").await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert!(
        throttled.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("ThrottlingException")
    );

    fake.set_behavior(Behavior::CutStreamAfter(3));
    let cut = call("invoke-with-response-stream").await.unwrap();
    assert_eq!(cut.status(), 200);
    let _ = cut.bytes().await;

    fake.set_behavior(Behavior::MalformedChunk);
    let malformed = call("converse-stream").await.unwrap();
    assert_eq!(malformed.status(), 200);
    let _ = malformed.bytes().await;

    fake.set_behavior(Behavior::Slow(Duration::from_millis(300)));
    assert_eq!(call("converse").await.unwrap().status(), 200);

    assert!(server.terminate().success());
    let mut rows = tollgate.parquet_rows();
    rows.sort_by_key(|row| row.instance_seq);
    let outcomes: Vec<(u16, Outcome)> = rows.iter().map(|row| (row.status, row.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            (502, Outcome::UpstreamError),
            (429, Outcome::UpstreamError),
            (200, Outcome::UpstreamError),
            (200, Outcome::UpstreamError),
            (200, Outcome::Success),
        ]
    );
    let cut_call = fake
        .answered()
        .into_iter()
        .find(|call| call.operation == FakeOperation::InvokeStream)
        .unwrap();
    assert_eq!(
        rows[2].input_tokens, cut_call.input_tokens,
        "a cut stream bills the tokens reported so far"
    );
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["errors"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_stream_passes_through_without_the_proxy_holding_it() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    // 2,000 pieces of 32 KiB: a 64 MiB answer.
    fake.set_stream_chunks(2_000);
    fake.set_chunk_text_bytes(32 * 1024);
    let (customer_id, token) = tollgate.create_customer("Long Co", None);
    let server = tollgate.serve_against(&fake, None);
    let before_kib = server.peak_rss_kib();

    let mut response = reqwest::Client::new()
        .post(format!("{}/model/m/converse-stream", server.base_url))
        .bearer_auth(&token)
        .json(&converse_body())
        .send()
        .await
        .unwrap();
    let mut streamed = 0usize;
    let mut tap = StreamUsageTap::new(StreamKind::ConverseStream);
    while let Some(chunk) = response.chunk().await.unwrap() {
        streamed += chunk.len();
        tap.feed(&chunk);
    }
    assert!(streamed > 60 * 1024 * 1024, "{streamed} bytes streamed");
    let growth_kib = server.peak_rss_kib().saturating_sub(before_kib);
    println!("peak RSS of the proxy grew by {growth_kib} KiB while streaming {streamed} bytes");
    assert!(
        growth_kib < 32 * 1024,
        "the proxy's peak memory grew by {growth_kib} KiB for a 64 MiB stream"
    );
    assert!(tap.observation().final_usage.is_some());

    assert!(server.terminate().success());
    let call = fake.answered()[0].clone();
    assert_eq!(
        tollgate.usage_today(&customer_id)["totals"]["output_tokens"],
        call.output_tokens
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_model_allow_list_is_enforced() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("Picky Co", None);
    let changed = tollgate.run_json(&[
        "update-limits",
        "--customer-id",
        &customer_id,
        "--allowed-models",
        "anthropic.*,*nova-lite*",
    ]);
    assert_eq!(
        changed["allowed_models"],
        serde_json::json!(["anthropic.*", "*nova-lite*"])
    );
    let nothing = tollgate.run(&["update-limits", "--customer-id", &customer_id]);
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing to change"));

    let server = tollgate.serve_against(&fake, None);
    let client = reqwest::Client::new();
    let call = |model: &str| {
        client
            .post(format!(
                "{}/model/{}/converse",
                server.base_url,
                encode_path_segment(model)
            ))
            .bearer_auth(&token)
            .json(&converse_body())
            .send()
    };
    let refused = call("meta.llama3-70b-instruct-v1:0").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["x-amzn-errortype"],
        "AccessDeniedException"
    );
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("is not enabled for this account")
    );
    assert_eq!(
        call("anthropic.claude-3-haiku-20240307-v1:0")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        call("us.amazon.nova-lite-v1:0").await.unwrap().status(),
        200
    );
    assert_eq!(
        fake.answered().len(),
        2,
        "the refused model never reached Bedrock"
    );
    assert!(server.terminate().success());
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["requests"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_and_malformed_model_ids_are_refused_before_bedrock() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("Edge Co", None);
    let server = tollgate.serve_against(&fake, None);
    let client = reqwest::Client::new();
    let spec_url = format!("{}/prod/bedrock", server.base_url);

    // A 70 KB header: 431 with the size and the limit, before authentication.
    let huge = client
        .post(&spec_url)
        .bearer_auth(&token)
        .header("x-padding", "a".repeat(70 * 1024))
        .json(&tests::harness::spec_body("huge headers"))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 431);
    let message = huge.json::<serde_json::Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("more than the 16384-byte limit"),
        "{message}"
    );
    let unauthenticated = client
        .post(&spec_url)
        .header("x-padding", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated.status(),
        431,
        "the cap comes before the token"
    );
    // Headers just under the cap pass.
    let large = client
        .post(&spec_url)
        .bearer_auth(&token)
        .header("x-padding", "a".repeat(14 * 1024))
        .json(&tests::harness::spec_body("large headers"))
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 200);

    // Model ids that are not Bedrock's: 400 naming the id, on the spec's route and on
    // Bedrock's own (where the id arrives percent-encoded in the path).
    for model_id in [
        "../../admin",
        "anthropic.claude/../x",
        "model?id=1",
        "arn:aws:s3:::bucket/x",
    ] {
        let mut body = tests::harness::spec_body("bad id");
        body["modelId"] = model_id.into();
        let refused = client
            .post(&spec_url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{model_id}");
        let message = refused.json::<serde_json::Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains(&format!("modelId {model_id:?} is not a Bedrock model id")),
            "{message}"
        );
        let native = client
            .post(format!(
                "{}/model/{}/converse",
                server.base_url,
                encode_path_segment(model_id)
            ))
            .bearer_auth(&token)
            .json(&converse_body())
            .send()
            .await
            .unwrap();
        assert_eq!(native.status(), 400, "{model_id}");
        assert_eq!(native.headers()["x-amzn-errortype"], "ValidationException");
    }
    // An inference profile's ARN is a model id.
    let profile = client
        .post(format!(
            "{}/model/{}/converse",
            server.base_url,
            encode_path_segment(PROFILE_ARN)
        ))
        .bearer_auth(&token)
        .json(&converse_body())
        .send()
        .await
        .unwrap();
    assert_eq!(profile.status(), 200);

    assert_eq!(
        fake.answered().len(),
        2,
        "only the two well-formed calls reached Bedrock"
    );
    assert!(server.terminate().success());
    let totals = tollgate.usage_today(&customer_id)["totals"].clone();
    assert_eq!(
        totals["requests"], 2,
        "refused calls are not metered: {totals}"
    );
}
