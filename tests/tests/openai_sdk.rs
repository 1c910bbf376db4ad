//! The official OpenAI clients (the Python SDK and the npm package, pinned and installed by
//! `scripts/test.sh`), unchanged, against `tollgate serve` and the wire-level fake Bedrock:
//! chat, streaming with usage, tools, the model list, the `/prod` stage and errors in
//! OpenAI's shape. What the clients saw equals what Bedrock answered, and Tollgate metered
//! every call to the token.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::json;
use tests::clients::{
    clients_dir as clients, pinned as env, restricted_customer, run_client as run,
    serve_for_clients,
};
use tests::fake_bedrock::FakeBedrock;
use tests::harness::Tollgate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_clients_work_unchanged_and_every_call_is_metered_to_the_token() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(4);
    let (customer_id, token) = tollgate.create_customer("GPT Habits", None);
    let restricted = restricted_customer(&tollgate, "Haiku Only", "claude-3-haiku");
    let server = serve_for_clients(&tollgate, &fake, &[]);
    let python = run(Command::new(env("TOLLGATE_TEST_PYTHON"))
        .arg(clients().join("openai_sdk.py"))
        .env("TOLLGATE_URL", &server.base_url)
        .env("TOLLGATE_TOKEN", &token)
        .env("TOLLGATE_RESTRICTED_TOKEN", &restricted));
    let python_calls = fake.answered();
    // chat, stream, tool call, tool answer, /prod, and the restricted customer's call by
    // the name its allow-list names: six calls reached Bedrock.
    assert_eq!(
        python_calls.len(),
        6,
        "refusals and the model list never reach Bedrock"
    );
    for call in &python_calls[..5] {
        assert_eq!(call.model_id, "anthropic.claude-3-sonnet-20240229-v1:0");
    }
    assert_eq!(
        python_calls[5].model_id,
        "anthropic.claude-3-haiku-20240307-v1:0"
    );
    assert_eq!(python["restricted_models"], json!(["claude-3-haiku"]));
    assert_eq!(python["allowed_by_name"], "The capital of France is Paris.");
    let chat = &python["chat"];
    assert_eq!(chat["text"], "The capital of France is Paris.");
    assert_eq!(chat["finish_reason"], "stop");
    assert_eq!(chat["model"], "claude-3-sonnet");
    assert_eq!(chat["prompt_tokens"], python_calls[0].input_tokens);
    assert_eq!(chat["completion_tokens"], python_calls[0].output_tokens);
    assert_eq!(
        chat["total_tokens"],
        python_calls[0].input_tokens + python_calls[0].output_tokens
    );
    assert_eq!(
        python_calls[0].body["system"],
        json!([{"text": "Answer briefly."}])
    );
    assert_eq!(python_calls[0].body["inferenceConfig"]["maxTokens"], 100);
    let stream = &python["stream"];
    assert_eq!(stream["text"], "piece 0 piece 1 piece 2 piece 3 ");
    assert_eq!(stream["finish_reason"], "stop");
    assert_eq!(stream["prompt_tokens"], python_calls[1].input_tokens);
    assert_eq!(stream["completion_tokens"], python_calls[1].output_tokens);
    let tool = &python["tool_call"];
    assert_eq!(tool["finish_reason"], "tool_calls");
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["arguments"], json!({"location": "Paris"}));
    assert_eq!(
        python_calls[3].body["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        tool["id"]
    );
    assert_eq!(
        python["tool_answer"]["text"],
        "The capital of France is Paris."
    );
    assert!(
        python["models"]
            .as_array()
            .unwrap()
            .contains(&json!("claude-3-sonnet"))
    );
    assert_eq!(python["staged"], "The capital of France is Paris.");
    assert_eq!(python["bad_key"]["status"], 401);
    assert_eq!(python["bad_key"]["class"], "AuthenticationError");
    assert_eq!(python["not_allowed"]["status"], 403);
    assert_eq!(python["not_allowed"]["class"], "PermissionDeniedError");
    assert_eq!(python["unsupported"]["status"], 400);
    assert_eq!(python["unsupported"]["param"], "frequency_penalty");
    assert_eq!(python["unsupported"]["type"], "invalid_request_error");

    let javascript = run(Command::new("node")
        .arg(clients().join("openai_js.cjs"))
        .env("NODE_PATH", env("TOLLGATE_TEST_NODE_PATH"))
        .env("TOLLGATE_URL", &server.base_url)
        .env("TOLLGATE_TOKEN", &token));
    let all_calls = fake.answered();
    assert_eq!(all_calls.len(), 8);
    let (js_chat, js_stream) = (&all_calls[6], &all_calls[7]);
    assert_eq!(
        javascript["chat"]["text"],
        "The capital of France is Paris."
    );
    assert_eq!(
        javascript["chat"]["usage"]["prompt_tokens"],
        js_chat.input_tokens
    );
    assert_eq!(
        javascript["stream"]["text"],
        "piece 0 piece 1 piece 2 piece 3 "
    );
    assert_eq!(
        javascript["stream"]["usage"]["completion_tokens"],
        js_stream.output_tokens
    );

    // Metered to the token: seven calls of this customer, Bedrock's own counts.
    let mine: Vec<_> = all_calls
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != 5)
        .map(|(_, call)| call)
        .collect();
    let input: u64 = mine.iter().map(|call| call.input_tokens).sum();
    let output: u64 = mine.iter().map(|call| call.output_tokens).sum();
    let totals = tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 7)
        .await;
    assert_eq!(totals["input_tokens"], input);
    assert_eq!(totals["output_tokens"], output);
    assert_eq!(
        totals["by_api"],
        serde_json::json!({"bedrock": 0, "spec": 0, "anthropic": 0, "openai": 7}),
        "each call recorded as OpenAI's API"
    );
    assert!(server.terminate().success());
}

/// A client leaving mid-stream on a translated route: the call is metered once, as
/// `client_aborted`, with Bedrock's final count, exactly as on the native routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_leaving_translated_streams_are_metered_once_with_bedrocks_count() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    fake.set_stream_chunks(400);
    let (customer_id, token) = tollgate.create_customer("Leaving SDK Co", None);
    let server = serve_for_clients(&tollgate, &fake, &[]);
    let bodies = [
        (
            "/v1/messages",
            serde_json::json!({"model": "claude-3-sonnet", "max_tokens": 100, "stream": true,
                "messages": [{"role": "user", "content": "Tell me a long story"}]}),
        ),
        (
            "/v1/chat/completions",
            serde_json::json!({"model": "claude-3-sonnet", "stream": true,
                "messages": [{"role": "user", "content": "Tell me a long story"}]}),
        ),
    ];
    for (path, body) in bodies {
        let mut response = reqwest::Client::new()
            .post(format!("{}{path}", server.base_url))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let first = response.chunk().await.unwrap().unwrap();
        assert!(!first.is_empty(), "{path}");
        drop(response);
    }
    // The proxy drains Bedrock's streams to learn the final counts, then meters the calls.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(server.terminate().success());
    let rows = tollgate.parquet_rows();
    assert_eq!(rows.len(), 2, "exactly one event per call");
    for (row, call) in rows.iter().zip(fake.answered()) {
        assert_eq!(row.outcome, schemas::Outcome::ClientAborted);
        assert_eq!(
            (row.input_tokens, row.output_tokens),
            (call.input_tokens, call.output_tokens)
        );
    }
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["requests"], 2);
}
