//! The official AWS SDK for Python (boto3, pinned) and the spec's own Python and JavaScript
//! examples, run unchanged against `tollgate serve` over HTTPS with a certificate the test
//! makes; the proxy forwards to the fake Bedrock. boto3 sends a Bedrock API key only to an
//! https endpoint, which is why TLS is on.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use tests::fake_bedrock::{FakeBedrock, FakeOperation};
use tests::harness::Tollgate;
use tests::tls::TestCertificate;

fn client_python() -> String {
    std::env::var("TOLLGATE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_PYTHON is not set: run the suite with `bash scripts/test.sh`, which installs the pinned \
             Python clients, or run `tests/clients/python.sh` and export the path it prints"
        )
    })
}

fn clients_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_spec_examples_work_unchanged_over_https() {
    let python = client_python();
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("SDK Co", None);
    let certificate = TestCertificate::generate();
    let server = tollgate.serve_against(&fake, Some(&certificate));
    assert!(server.base_url.starts_with("https://"));

    let boto3 = Command::new(&python)
        .arg(clients_dir().join("boto3_calls.py"))
        .env("TOLLGATE_ENDPOINT", &server.base_url)
        .env("TOLLGATE_CA_BUNDLE", &certificate.certificate_path)
        .env("AWS_BEARER_TOKEN_BEDROCK", &token)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(
        boto3.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&boto3.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&boto3.stdout).unwrap();

    let answered = fake.answered();
    let by_operation = |operation: FakeOperation| {
        answered
            .iter()
            .find(|call| call.operation == operation)
            .unwrap()
            .clone()
    };
    let invoke = by_operation(FakeOperation::Invoke);
    assert_eq!(seen["invoke"]["input_tokens"], invoke.input_tokens);
    let stream = by_operation(FakeOperation::InvokeStream);
    assert_eq!(
        seen["invoke_stream"]["metrics"]["outputTokenCount"],
        stream.output_tokens
    );
    assert!(seen["invoke_stream"]["chunks"].as_u64().unwrap() >= 4);
    let converse = by_operation(FakeOperation::Converse);
    assert_eq!(
        converse.model_id,
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
    );
    assert_eq!(
        seen["converse"]["usage"]["inputTokens"],
        converse.input_tokens
    );
    assert_eq!(seen["converse"]["text"], "The capital of France is Paris.");
    let converse_stream = by_operation(FakeOperation::ConverseStream);
    assert_eq!(
        seen["converse_stream"]["usage"]["outputTokens"],
        converse_stream.output_tokens
    );
    assert_eq!(seen["converse_stream"]["deltas"], 3);
    assert_eq!(seen["bad_token"]["status"], 401);
    assert_eq!(seen["bad_token"]["code"], "UnauthorizedException");

    let spec_python = Command::new(&python)
        .arg(clients_dir().join("spec_example.py"))
        .env("TOLLGATE_ENDPOINT", &server.base_url)
        .env("TOLLGATE_TOKEN", &token)
        .env("REQUESTS_CA_BUNDLE", &certificate.certificate_path)
        .output()
        .unwrap();
    assert!(
        spec_python.status.success(),
        "{}",
        String::from_utf8_lossy(&spec_python.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&spec_python.stdout).trim(),
        "The capital of France is Paris."
    );

    let spec_javascript = Command::new("node")
        .arg(clients_dir().join("spec_example.mjs"))
        .env("TOLLGATE_ENDPOINT", &server.base_url)
        .env("TOLLGATE_TOKEN", &token)
        .env("NODE_EXTRA_CA_CERTS", &certificate.certificate_path)
        .output()
        .expect("node is installed");
    assert!(
        spec_javascript.status.success(),
        "{}",
        String::from_utf8_lossy(&spec_javascript.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&spec_javascript.stdout).trim(),
        "The capital of France is Paris."
    );

    assert!(server.terminate().success());
    let usage = tollgate.usage_today(&customer_id);
    let answered = fake.answered();
    assert_eq!(answered.len(), 6);
    assert_eq!(usage["totals"]["requests"], 6);
    assert_eq!(
        usage["totals"]["by_api"],
        serde_json::json!({"bedrock": 4, "spec": 2, "anthropic": 0, "openai": 0}),
        "boto3 on Bedrock's routes, the spec's examples on POST /prod/bedrock"
    );
    assert_eq!(
        usage["totals"]["input_tokens"],
        answered.iter().map(|call| call.input_tokens).sum::<u64>()
    );
    assert_eq!(
        usage["totals"]["output_tokens"],
        answered.iter().map(|call| call.output_tokens).sum::<u64>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_for_javascript_v3_works_unchanged_over_https() {
    let node_path = std::env::var("TOLLGATE_TEST_NODE_PATH").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_NODE_PATH is not set: run the suite with `bash scripts/test.sh`, which installs the pinned \
             AWS SDK for JavaScript, or run `tests/clients/node.sh` and export the path it prints"
        )
    });
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("JS Co", None);
    let certificate = TestCertificate::generate();
    let server = tollgate.serve_against(&fake, Some(&certificate));

    let output = Command::new("node")
        .arg(clients_dir().join("sdk_js_calls.cjs"))
        .env("NODE_PATH", &node_path)
        .env("TOLLGATE_ENDPOINT", &server.base_url)
        .env("NODE_EXTRA_CA_CERTS", &certificate.certificate_path)
        .env("AWS_BEARER_TOKEN_BEDROCK", &token)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("node is installed");
    assert!(
        output.status.success(),
        "the JavaScript SDK failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let answered = fake.answered();
    let by_operation = |operation: FakeOperation| {
        answered
            .iter()
            .find(|call| call.operation == operation)
            .unwrap()
            .clone()
    };
    assert_eq!(
        seen["invoke"]["output_tokens"],
        by_operation(FakeOperation::Invoke).output_tokens
    );
    assert_eq!(
        seen["invoke_stream"]["metrics"]["inputTokenCount"],
        by_operation(FakeOperation::InvokeStream).input_tokens
    );
    assert_eq!(
        seen["converse"]["usage"]["outputTokens"],
        by_operation(FakeOperation::Converse).output_tokens
    );
    assert_eq!(
        seen["converse_stream"]["usage"]["inputTokens"],
        by_operation(FakeOperation::ConverseStream).input_tokens
    );
    assert_eq!(seen["converse_stream"]["deltas"], 3);

    assert!(server.terminate().success());
    let totals = &tollgate.usage_today(&customer_id)["totals"];
    assert_eq!(totals["requests"], 4);
    assert_eq!(totals["by_api"]["bedrock"], 4);
}
