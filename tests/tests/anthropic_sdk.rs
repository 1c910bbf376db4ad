//! The official Anthropic Python SDK (pinned, installed by `scripts/test.sh`), unchanged,
//! against `tollgate serve` and the wire-level fake Bedrock: `POST /v1/messages` plain and
//! streamed, under `/prod` too, the operator's model names, and errors in Anthropic's
//! shape. What the SDK saw equals what Bedrock answered, and Tollgate metered every call
//! to the token.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use tests::clients::{clients_dir, pinned, restricted_customer, run_client, serve_for_clients};
use tests::fake_bedrock::FakeBedrock;
use tests::harness::Tollgate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_works_unchanged_and_every_call_is_metered_to_the_token() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(5);
    let (customer_id, token) = tollgate.create_customer("Claude Fan", None);
    let restricted = restricted_customer(&tollgate, "Nova Only", "amazon.nova-*");
    let server = serve_for_clients(&tollgate, &fake, &[]);
    let seen = run_client(
        Command::new(pinned("TOLLGATE_TEST_PYTHON"))
            .arg(clients_dir().join("anthropic_sdk.py"))
            .env("TOLLGATE_URL", &server.base_url)
            .env("TOLLGATE_TOKEN", &token)
            .env("TOLLGATE_RESTRICTED_TOKEN", &restricted),
    );

    // Bedrock got three calls for the resolved id, with its own version and no `model`.
    let answered = fake.answered();
    assert_eq!(answered.len(), 3, "refused calls never reach Bedrock");
    for call in &answered {
        assert_eq!(call.model_id, "anthropic.claude-3-sonnet-20240229-v1:0");
        assert_eq!(call.body["anthropic_version"], "bedrock-2023-05-31");
        assert!(call.body.get("model").is_none() && call.body.get("stream").is_none());
    }
    assert_eq!(answered[2].body["system"], "Answer briefly.");
    // The SDK saw Bedrock's answers and counts.
    assert_eq!(seen["create"]["text"], "The capital of France is Paris.");
    assert_eq!(seen["create"]["input_tokens"], answered[0].input_tokens);
    assert_eq!(seen["create"]["output_tokens"], answered[0].output_tokens);
    assert_eq!(seen["create"]["stop_reason"], "end_turn");
    let streamed = seen["stream"]["text"].as_str().unwrap();
    assert!(
        streamed.starts_with("piece 0 ") && streamed.contains("piece 4 "),
        "{streamed}"
    );
    assert_eq!(seen["stream"]["input_tokens"], answered[1].input_tokens);
    assert_eq!(seen["stream"]["output_tokens"], answered[1].output_tokens);
    assert_eq!(seen["stream"]["stop_reason"], "end_turn");
    assert_eq!(seen["staged"]["output_tokens"], answered[2].output_tokens);
    // Errors are the SDK's own types.
    assert_eq!(seen["bad_key"]["status"], 401);
    assert_eq!(seen["bad_key"]["type"], "authentication_error");
    assert_eq!(seen["bad_key"]["class"], "AuthenticationError");
    assert_eq!(seen["not_allowed"]["status"], 403);
    assert_eq!(seen["not_allowed"]["type"], "permission_error");
    assert!(
        seen["not_allowed"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic.claude-3-sonnet-20240229-v1:0")
    );
    assert_eq!(seen["bad_model"]["status"], 400);
    assert_eq!(seen["bad_model"]["type"], "invalid_request_error");

    // count_tokens asked Bedrock's CountTokens about the foundation model, with the
    // Messages body; it is not metered (Bedrock does not bill it).
    let counted = fake.counted();
    assert_eq!(counted.len(), 1, "the refused count never reached Bedrock");
    assert_eq!(counted[0].0, "anthropic.claude-3-sonnet-20240229-v1:0");
    assert_eq!(counted[0].1["system"], "Answer briefly.");
    assert_eq!(counted[0].1["anthropic_version"], "bedrock-2023-05-31");
    let expected =
        tests::fake_bedrock::fake_token_counts(&serde_json::to_vec(&counted[0].1).unwrap()).0;
    assert_eq!(seen["count_tokens"], expected);
    assert_eq!(seen["count_not_allowed"]["status"], 403);
    assert_eq!(seen["count_not_allowed"]["type"], "permission_error");

    // Metered to the token, the streamed call included.
    let input: u64 = answered.iter().map(|call| call.input_tokens).sum();
    let output: u64 = answered.iter().map(|call| call.output_tokens).sum();
    let totals = tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 3)
        .await;
    assert_eq!(totals["input_tokens"], input);
    assert_eq!(totals["output_tokens"], output);
    assert_eq!(
        totals["by_api"],
        serde_json::json!({"bedrock": 0, "spec": 0, "anthropic": 3, "openai": 0}),
        "each call recorded as Anthropic's API"
    );
    let usage = tollgate.usage_today(&customer_id);
    let models: Vec<&str> = usage["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell["model_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        ["anthropic.claude-3-sonnet-20240229-v1:0"],
        "the resolved id"
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_model_names_file_stops_the_server_naming_the_field() {
    let tollgate = Tollgate::new();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("names.toml");
    std::fs::write(
        &file,
        "schema_version = 1\n[[models]]\nname = \"a\"\nmodel_id = \"../../admin\"\n",
    )
    .unwrap();
    let output = tollgate.run(&[
        "serve",
        "--upstream",
        "simulated",
        "--model-names",
        &file.to_string_lossy(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("models[0].model_id"), "{stderr}");
    assert!(stderr.contains("docs/model-names.toml"), "{stderr}");
}
