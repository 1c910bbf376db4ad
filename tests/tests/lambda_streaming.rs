//! The real `tollgate-proxy-lambda` binary under a local Lambda Runtime API, as API Gateway
//! (REST, `ResponseTransferMode: STREAM`) invokes it from `infra/template.yaml`: API Gateway
//! proxy events in, streamed HTTP integration responses (JSON prelude, 8 NUL bytes, payload)
//! out, on any stage name, against emulated AWS and the fake Bedrock. Each call's usage
//! event is in Kinesis by the time its answer has ended.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use proxy::upstream::model_runtime::encode_path_segment;
use schemas::UsageEvent;
use schemas::bedrock_stream::{StreamKind, StreamUsageTap};
use store::aws::AwsBackend;
use store::{EventReader, LogEntry};
use tests::aws_env::create_resources;
use tests::fake_bedrock::FakeBedrock;
use tests::harness::{Tollgate, spec_body};
use tests::lambda_runtime_api::FakeRuntimeApi;

const STAGE: &str = "live";

/// An API Gateway REST proxy event for `POST /{STAGE}{path}`.
fn rest_event(
    resource: &str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "resource": resource,
        "path": path,
        "httpMethod": "POST",
        "headers": {"Authorization": format!("Bearer {token}"), "Content-Type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Authorization": [format!("Bearer {token}")], "Content-Type": ["application/json"], "Host": ["abc123.execute-api.us-east-1.amazonaws.com"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "res123",
            "resourcePath": resource,
            "httpMethod": "POST",
            "path": format!("/{STAGE}{path}"),
            "stage": STAGE,
            "requestId": uuid::Uuid::now_v7().to_string(),
            "requestTimeEpoch": Utc::now().timestamp_millis(),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

async fn stream_events(log: &dyn EventReader) -> Vec<UsageEvent> {
    let mut entries: Vec<LogEntry> = Vec::new();
    for partition in log.partitions().await.unwrap() {
        entries.extend(
            store::contract::event_reader::read_until_caught_up(log, &partition.id, None, 1000)
                .await,
        );
    }
    entries
        .iter()
        .flat_map(|entry| schemas::usage_frame::decode_events(&entry.data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_lambda_streams_answers_on_any_stage_and_meters_them_before_ending() {
    let settings = create_resources(1).await;
    let backend = AwsBackend::connect(settings.clone()).await.unwrap();
    let tollgate = Tollgate::on_aws(settings);
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(30);
    let (customer_id, token) = tollgate.create_customer("Streaming Co", None);
    let runtime = FakeRuntimeApi::start().await;
    let mut function = tollgate.binary_command("tollgate-proxy-lambda");
    function
        .envs(runtime.lambda_environment("tollgate-proxy"))
        .env("TOLLGATE_UPSTREAM", "bedrock")
        .env("TOLLGATE_BEDROCK_ENDPOINT_URL", fake.endpoint_url())
        .stdout(std::process::Stdio::null());
    let mut child = function.spawn().unwrap();

    // The spec's endpoint on a stage that is not `prod`.
    let answer = runtime
        .invoke(&rest_event(
            "/bedrock",
            "/bedrock",
            &token,
            &spec_body("What is the capital of France?"),
        ))
        .await;
    assert_eq!(answer.error, None);
    assert_eq!(
        answer.headers["lambda-runtime-function-response-mode"], "streaming",
        "the function answers in streaming mode"
    );
    let (prelude, payload) = answer.http_parts();
    assert_eq!(prelude["statusCode"], 200, "{prelude}");
    let body: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        body["content"][0]["text"],
        "The capital of France is Paris."
    );
    let events = stream_events(backend.event_log.as_ref()).await;
    assert_eq!(
        events.len(),
        1,
        "the event was in Kinesis when the answer ended"
    );

    // A Bedrock event stream through the native route.
    let model = "anthropic.claude-3-sonnet-20240229-v1:0";
    let path = format!(
        "/model/{}/invoke-with-response-stream",
        encode_path_segment(model)
    );
    let streamed = runtime
        .invoke(&rest_event(
            "/model/{modelId}/{operation}",
            &path,
            &token,
            &spec_body("Stream it"),
        ))
        .await;
    assert_eq!(streamed.error, None);
    let (prelude, payload) = streamed.http_parts();
    assert_eq!(prelude["statusCode"], 200, "{prelude}");
    assert_eq!(
        prelude["headers"]["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let mut tap = StreamUsageTap::new(StreamKind::InvokeWithResponseStream);
    tap.feed(&payload);
    assert!(
        tap.observation().undecodable.is_none(),
        "frames arrive intact"
    );
    assert!(
        tap.observation().events > 30,
        "{}",
        tap.observation().events
    );
    assert!(streamed.pieces > 1, "the answer was streamed, not buffered");
    let usage = tap.observation().final_usage.unwrap();
    let call = fake.answered().last().cloned().unwrap();
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (call.input_tokens, call.output_tokens)
    );

    // A bad token is refused in the same format, and nothing is metered for it.
    let refused = runtime
        .invoke(&rest_event(
            "/bedrock",
            "/bedrock",
            "tg_not-a-real-token",
            &spec_body("hi"),
        ))
        .await;
    assert_eq!(refused.http_parts().0["statusCode"], 401);

    let events = stream_events(backend.event_log.as_ref()).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|event| event.customer_id == customer_id));
    let streamed_event = events
        .iter()
        .find(|event| event.operation == schemas::Operation::InvokeStream)
        .unwrap();
    assert_eq!(
        (streamed_event.input_tokens, streamed_event.output_tokens),
        (call.input_tokens, call.output_tokens)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compaction_lambda_compacts_the_day_it_is_given_and_refuses_a_bad_one() {
    let settings = create_resources(1).await;
    let tollgate = Tollgate::on_aws(settings);
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("Compact Co", None);
    let server = tollgate.serve_against(&fake, None);
    assert_eq!(server.spec_calls(&token, 3).await, vec![200; 3]);
    assert!(server.terminate().success());
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["requests"], 3);

    let runtime = FakeRuntimeApi::start().await;
    let mut function = tollgate.binary_command("tollgate-compact-lambda");
    function
        .envs(runtime.lambda_environment("tollgate-compact"))
        .stdout(std::process::Stdio::null());
    let mut child = function.spawn().unwrap();
    let today = Utc::now().date_naive().to_string();
    let answer = runtime.invoke(&serde_json::json!({ "date": today })).await;
    assert_eq!(answer.error, None);
    let reports: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(reports[0]["day"], today.as_str());
    // Today's files are settled once Parquet's progress has passed them (the live day is
    // compacted hourly): the day becomes one file of its 3 events.
    assert_eq!(reports[0]["files_not_settled"], 0, "{reports}");
    assert_eq!(reports[0]["files_written"], 1, "{reports}");
    assert_eq!(reports[0]["events"], 3, "{reports}");

    let refused = runtime
        .invoke(&serde_json::json!({ "date": "yesterday" }))
        .await;
    let error = refused.error.expect("a bad date is an error, not a crash");
    assert!(error.contains("give YYYY-MM-DD"), "{error}");
    let scheduled = runtime.invoke(&serde_json::json!({})).await;
    assert_eq!(
        scheduled.error, None,
        "the scheduled run still works after a refusal"
    );
    let reports: serde_json::Value = serde_json::from_slice(&scheduled.body).unwrap();
    let days: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|report| report["day"].as_str().unwrap())
        .collect();
    let yesterday = (Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    // Hourly: yesterday and today; the 01:00 UTC run adds the newest day settled by age.
    assert!(
        days.ends_with(&[yesterday.as_str(), today.as_str()])
            && (days.len() == 2 || (days.len() == 3 && days[0] < yesterday.as_str())),
        "yesterday and today, and at 01:00 an older settled day: {reports}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
