//! End to end on the embedded default, with the real binaries: `tollgate create`, then
//! `tollgate serve --upstream bedrock` against the wire-level fake Bedrock, then calls with
//! the spec's body, then `tollgate usage` and the Parquet files read back.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::process::Command;

use schemas::{Operation, Outcome};
use tests::fake_bedrock::FakeBedrock;
use tests::harness::{ServeProcess, Tollgate, spec_body};

const MODEL_ID: &str = "anthropic.claude-3-sonnet-20240229-v1:0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metered_calls_match_usage_and_parquet_exactly() {
    const CALLS: u64 = 12;
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("Acme Corp", Some(CALLS));
    let server = tollgate.serve(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
        "--max-body-bytes",
        "65536",
    ]);
    let endpoint = format!("{}/prod/bedrock", server.base_url);
    let client = reqwest::Client::new();

    // N - 1 calls with the spec's body from an HTTP client, and one with the spec's curl command.
    for call in 0..CALLS - 1 {
        let response = client
            .post(&endpoint)
            .bearer_auth(&token)
            .json(&spec_body(&format!(
                "What is the capital of France? (call {call})"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-amzn-requestid"));
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            answer["content"][0]["text"],
            "The capital of France is Paris."
        );
    }
    let curl = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            &endpoint,
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-w", "\n%{http_code}", "-d"])
        .arg(
            r#"{
    "modelId": "anthropic.claude-3-sonnet-20240229-v1:0",
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 1000,
    "messages": [
      {
        "role": "user",
        "content": [
          {
            "type": "text", 
            "text": "What is the capital of France?"
          }
        ]
      }
    ]
  }"#,
        )
        .output()
        .expect("curl is installed");
    let curl_output = String::from_utf8_lossy(&curl.stdout);
    assert!(curl_output.ends_with("\n200"), "curl got: {curl_output}");

    // The call past the daily limit is refused, with Retry-After, and Bedrock is not called.
    let refused = client
        .post(&endpoint)
        .bearer_auth(&token)
        .json(&spec_body("one more"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after));
    let message: serde_json::Value = refused.json().await.unwrap();
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .contains("daily request limit")
    );

    // Bad tokens get 401 with a JSON error and are not metered.
    for authorization in [
        None,
        Some("Bearer nope"),
        Some("Bearer tg_0000000000000000000000000000000000000000000000000"),
    ] {
        let mut request = client.post(&endpoint).json(&spec_body("hi"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{authorization:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains("token"));
    }
    let unknown = "Bearer ".to_owned() + &"x".repeat(44);
    let response = client
        .post(&endpoint)
        .header("authorization", unknown)
        .json(&spec_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Malformed and oversized bodies are refused before Bedrock and not metered.
    let malformed = client
        .post(&endpoint)
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let oversized = client
        .post(&endpoint)
        .bearer_auth(&token)
        .json(&spec_body(&"x".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);

    let status = server.terminate();
    assert!(status.success(), "serve exited with {status}");

    // Bedrock saw exactly the admitted calls, signed, with modelId taken out of the body.
    let answered = fake.answered();
    assert_eq!(answered.len() as u64, CALLS);
    assert_eq!(fake.refused_unsigned(), 0);
    for call in &answered {
        assert_eq!(call.model_id, MODEL_ID);
        assert!(call.body.get("modelId").is_none());
        assert_eq!(call.body["max_tokens"], 1000);
    }
    let fake_input: u64 = answered.iter().map(|call| call.input_tokens).sum();
    let fake_output: u64 = answered.iter().map(|call| call.output_tokens).sum();

    // `tollgate usage` shows exactly those calls and tokens.
    let usage = tollgate.usage_today(&customer_id);
    let totals = &usage["totals"];
    assert_eq!(totals["requests"], CALLS);
    assert_eq!(totals["input_tokens"], fake_input);
    assert_eq!(totals["output_tokens"], fake_output);
    assert_eq!(totals["rejected"], 1);
    assert_eq!(totals["errors"], 0);
    assert_eq!(usage["days"][0]["model_id"], MODEL_ID);

    // Parquet holds one row per metered call: the admitted ones and the rejection.
    let rows = tollgate.parquet_rows();
    assert_eq!(rows.len() as u64, CALLS + 1);
    let ids: BTreeSet<_> = rows.iter().map(|row| row.event_id).collect();
    assert_eq!(ids.len(), rows.len(), "event ids are unique");
    let successes: Vec<_> = rows
        .iter()
        .filter(|row| row.outcome == Outcome::Success)
        .collect();
    assert_eq!(successes.len() as u64, CALLS);
    assert_eq!(
        successes.iter().map(|row| row.input_tokens).sum::<u64>(),
        fake_input
    );
    assert_eq!(
        successes.iter().map(|row| row.output_tokens).sum::<u64>(),
        fake_output
    );
    let upstream_ids: BTreeSet<_> = successes
        .iter()
        .filter_map(|row| row.upstream_request_id.as_ref().map(|id| id.to_text()))
        .collect();
    let fake_ids: BTreeSet<_> = answered
        .iter()
        .map(|call| call.request_id.clone())
        .collect();
    assert_eq!(
        upstream_ids, fake_ids,
        "each row carries Bedrock's request id"
    );
    let rejected: Vec<_> = rows
        .iter()
        .filter(|row| row.outcome == Outcome::RejectedLimit)
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].status, 429);
    assert_eq!(rejected[0].upstream_request_id, None);
    for row in &rows {
        assert_eq!(row.customer_id, customer_id);
        assert_eq!(row.operation, Operation::Invoke);
        assert!(row.key_id.starts_with("key_"));
        assert!(
            !format!("{row:?}").contains(&token),
            "the token never appears in an event"
        );
    }
    let mut sequences: Vec<u64> = rows.iter().map(|row| row.instance_seq).collect();
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (1..=CALLS + 1).collect::<Vec<_>>(),
        "the proxy's sequence has no gaps"
    );
}

/// The running proxy's auth cache in these tests (the default is 5 s): an entry is
/// refreshed in the background once older than this, and not used once twice as old.
const AUTH_CACHE_MS: &str = "200";

/// `tollgate serve` against the fake Bedrock with the tests' short auth cache.
fn serve_with_short_auth_cache(tollgate: &Tollgate, fake: &FakeBedrock) -> ServeProcess {
    tollgate.serve(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &fake.endpoint_url(),
        "--auth-cache-ms",
        AUTH_CACHE_MS,
    ])
}

/// Waits until no auth cache entry made before now can be used.
async fn past_auth_cache() {
    let ttl: u64 = AUTH_CACHE_MS.parse().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2 * ttl + 100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_token_switches_keys_while_serving_and_errors_pass_through() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, old_token) = tollgate.create_customer("Rotating Co", None);
    let server = serve_with_short_auth_cache(&tollgate, &fake);
    let endpoint = format!("{}/prod/bedrock", server.base_url);
    let client = reqwest::Client::new();
    let call = |token: String| {
        let client = client.clone();
        let endpoint = endpoint.clone();
        async move {
            client
                .post(&endpoint)
                .bearer_auth(token)
                .json(&spec_body("hello"))
                .send()
                .await
                .unwrap()
        }
    };

    assert_eq!(call(old_token.clone()).await.status(), 200);
    let rotated = tollgate.run_json(&[
        "update-token",
        "--customer-id",
        &customer_id,
        "--grace-period",
        "0",
    ]);
    let new_token = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, old_token);
    past_auth_cache().await;
    assert_eq!(call(old_token).await.status(), 401);
    assert_eq!(call(new_token.clone()).await.status(), 200);

    // Bedrock's own errors reach the client unchanged and are metered as errors.
    fake.set_behavior(tests::fake_bedrock::Behavior::Throttle);
    let throttled = call(new_token.clone()).await;
    assert_eq!(throttled.status(), 429);
    let error_type = throttled.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        error_type.starts_with("ThrottlingException"),
        "{error_type}"
    );
    fake.set_behavior(tests::fake_bedrock::Behavior::ServerError);
    assert_eq!(call(new_token).await.status(), 500);

    assert!(server.terminate().success());
    let usage = tollgate.usage_today(&customer_id);
    assert_eq!(usage["totals"]["requests"], 4);
    assert_eq!(usage["totals"]["errors"], 2);
    let rows = tollgate.parquet_rows();
    let outcomes: Vec<Outcome> = rows.iter().map(|row| row.outcome).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| **outcome == Outcome::UpstreamError)
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_with_a_grace_period_and_customers_can_be_disabled_and_deleted() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, first_token) = tollgate.create_customer("Lifecycle Co", None);
    let first_token_copy = first_token.clone();
    let server = serve_with_short_auth_cache(&tollgate, &fake);
    let endpoint = format!("{}/prod/bedrock", server.base_url);
    let client = reqwest::Client::new();
    let status_of = |token: String| {
        let client = client.clone();
        let endpoint = endpoint.clone();
        async move {
            client
                .post(&endpoint)
                .bearer_auth(token)
                .json(&spec_body("hello"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // Rotation with the default grace period: both keys work.
    let rotated = tollgate.run_json(&["update-token", "--customer-id", &customer_id]);
    let second_token = rotated["token"].as_str().unwrap().to_owned();
    let second_token_copy = second_token.clone();
    assert_eq!(
        status_of(first_token.clone()).await,
        200,
        "the old key works during the grace period"
    );
    assert_eq!(status_of(second_token.clone()).await, 200);
    let keys = tollgate.run_json(&["list-keys", "--customer-id", &customer_id]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|key| key["state"] == "active"));
    assert!(
        keys[0]["expires_at"].is_string(),
        "the old key now expires at the end of the grace period"
    );
    assert!(keys[1]["expires_at"].is_null());

    // Revoking the old key ends it at once.
    let first_key_id = keys[0]["key_id"].as_str().unwrap().to_owned();
    let revoked = tollgate.run_json(&[
        "revoke-token",
        "--customer-id",
        &customer_id,
        "--key-id",
        &first_key_id,
    ]);
    assert_eq!(revoked["state"], "revoked");
    past_auth_cache().await;
    assert_eq!(status_of(first_token).await, 401);
    let unknown_key = tollgate.run(&[
        "revoke-token",
        "--customer-id",
        &customer_id,
        "--key-id",
        "key_missing",
    ]);
    assert_eq!(unknown_key.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unknown_key.stderr).contains("has no key \"key_missing\""));

    // Disabled customers get 403 until enabled again.
    tollgate.run_json(&["disable", "--customer-id", &customer_id]);
    past_auth_cache().await;
    assert_eq!(status_of(second_token.clone()).await, 403);
    tollgate.run_json(&["enable", "--customer-id", &customer_id]);
    past_auth_cache().await;
    assert_eq!(status_of(second_token.clone()).await, 200);

    // Rotation with no grace revokes the previous key at once.
    let third = tollgate.run_json(&[
        "update-token",
        "--customer-id",
        &customer_id,
        "--grace-period",
        "0",
        "--expires-in",
        "90d",
    ]);
    let third_token = third["token"].as_str().unwrap().to_owned();
    let third_token_copy = third_token.clone();
    past_auth_cache().await;
    assert_eq!(status_of(second_token).await, 401);
    assert_eq!(status_of(third_token.clone()).await, 200);

    // Deleting revokes every key and keeps the record and the usage.
    tollgate.run_json(&["delete", "--customer-id", &customer_id]);
    past_auth_cache().await;
    assert_eq!(status_of(third_token).await, 401);
    let shown = tollgate.run_json(&["show", "--customer-id", &customer_id]);
    assert_eq!(shown["customer"]["status"], "deleted");
    assert!(
        shown["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|key| key["state"] == "revoked")
    );
    let refused = tollgate.run(&["enable", "--customer-id", &customer_id]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is deleted and cannot be changed"));

    // Keys can expire.
    let expiring = tollgate.run_json(&[
        "create",
        "--name",
        "Brief Co",
        "--email",
        "b@brief.example",
        "--expires-in",
        "2s",
    ]);
    let expiring_token = expiring["token"].as_str().unwrap().to_owned();
    assert_eq!(status_of(expiring_token.clone()).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2_300)).await;
    assert_eq!(
        status_of(expiring_token).await,
        401,
        "an expired key is refused like a revoked one"
    );
    let bad_duration = tollgate.run(&[
        "update-token",
        "--customer-id",
        &customer_id,
        "--grace-period",
        "soon",
    ]);
    assert_eq!(bad_duration.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_duration.stderr).contains("such as 30m, 24h or 90d"));

    assert!(server.terminate().success());
    assert_eq!(
        tollgate.usage_today(&customer_id)["totals"]["requests"],
        4,
        "a deleted customer's usage is kept"
    );

    // Every administrative action is in the audit trail, with its actor, and no token.
    let limits = tollgate
        .command()
        .args([
            "--json",
            "--actor",
            "alice@operator.example",
            "update-limits",
            "--customer-id",
            &customer_id,
            "--daily-limit",
            "5",
        ])
        .output()
        .unwrap();
    assert!(
        limits.status.success(),
        "{}",
        String::from_utf8_lossy(&limits.stderr)
    );
    let audit = tollgate.run_json(&["audit", "--customer-id", &customer_id]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "create", "rotate", "revoke", "disable", "enable", "rotate", "delete", "limits"
        ]
    );
    let last = audit.as_array().unwrap().last().unwrap();
    assert_eq!(last["actor"], "alice@operator.example");
    assert_eq!(
        last["before"]["daily_request_limit"],
        serde_json::Value::Null
    );
    assert_eq!(last["after"]["daily_request_limit"], 5);
    assert_eq!(audit[2]["after"]["state"], "revoked");
    let audit_text = audit.to_string();
    // The database and its write-ahead log, where recent writes live until a checkpoint.
    let mut database = Vec::new();
    for entry in std::fs::read_dir(&tollgate.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tollgate.db")
        {
            database.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!database.is_empty());
    let database_text = String::from_utf8_lossy(&database);
    for token in [&first_token_copy, &second_token_copy, &third_token_copy] {
        assert!(
            !audit_text.contains(token.as_str()),
            "no token in the audit trail"
        );
        assert!(
            !database_text.contains(token.as_str()),
            "no token in the database file"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_is_coalesced_and_written_on_shutdown() {
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Last Use Co", None);
    let server = tollgate.serve(&["--upstream", "simulated", "--key-use-flush-secs", "3600"]);
    let before_calls = chrono::Utc::now();
    assert_eq!(server.spec_calls(&token, 5).await, vec![200; 5]);
    let keys = tollgate.run_json(&["list-keys", "--customer-id", &customer_id]);
    assert!(
        keys[0]["last_used_at"].is_null(),
        "no registry write per request: the use waits for the flush: {keys}"
    );
    assert!(server.terminate().success());
    let keys = tollgate.run_json(&["list-keys", "--customer-id", &customer_id]);
    let last_used =
        chrono::DateTime::parse_from_rfc3339(keys[0]["last_used_at"].as_str().unwrap()).unwrap();
    assert!(
        last_used.timestamp() >= before_calls.timestamp() && last_used <= chrono::Utc::now(),
        "{keys}"
    );
    let table = tollgate.run(&["list-keys", "--customer-id", &customer_id]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("last used"), "{table}");
}

/// Invariant: a poison record never stalls the log and is never dropped: it is quarantined
/// with its payload, the events after it are counted, and the quarantine count is a metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_quarantined_and_counted_as_a_metric() {
    use store::EventAppender;
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Poison Co", None);
    let metrics_port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let server = tollgate.serve(&[
        "--upstream",
        "simulated",
        "--metrics-listen",
        &metrics_listen,
    ]);
    let client = reqwest::Client::new();
    let call = || async {
        let response = client
            .post(format!("{}/prod/bedrock", server.base_url))
            .bearer_auth(&token)
            .json(&spec_body("hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    };
    call().await;
    // A record no proxy would write, appended to the same log between two good calls.
    let log = store::embedded::EmbeddedStore::open(&tollgate.data_dir.join("tollgate.db")).unwrap();
    log.append(&[store::LogRecord {
        partition_key: customer_id.clone(),
        data: bytes::Bytes::from_static(b"{\"schema_version\":1,\"event_id\":\"not-a-uuid\"}"),
    }])
    .await
    .unwrap();
    call().await;

    let metric = |text: &str, name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .map(|value| value.parse::<f64>().unwrap())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = client
            .get(format!("http://{metrics_listen}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&text, "tollgate_metering_records_quarantined_total") == Some(1.0)
            && metric(&text, "tollgate_metering_events_counted_total") == Some(2.0)
        {
            assert_eq!(
                metric(&text, "tollgate_proxy_spool_records"),
                Some(0.0),
                "proxy metrics are served too"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the metrics never showed the quarantine: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["requests"], 2);
    let quarantined: Vec<_> = walk(&tollgate.data_dir.join("quarantine"));
    let payloads: Vec<_> = quarantined
        .iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "payload")
        })
        .collect();
    assert_eq!(payloads.len(), 1, "{quarantined:?}");
    let kept = std::fs::read_to_string(payloads[0]).unwrap();
    assert!(kept.contains("not-a-uuid"), "the payload is kept: {kept}");

    // The operator lists it, and sends it through the log again: it is still not an
    // event, so the consumer quarantines it again under its new position, and nothing is
    // counted twice.
    let listed = tollgate.run_json(&["quarantine", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("record is not valid json"),
        "{listed}"
    );
    let first_position = listed[0]["position"].as_str().unwrap().to_owned();
    let requeued = tollgate.run_json(&["quarantine", "requeue"]);
    assert_eq!(requeued["requeued"], 1, "{requeued}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed = tollgate.run_json(&["quarantine", "list"]);
        let positions: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|item| item["position"].as_str())
            .collect();
        if positions.len() == 1 && positions[0] != first_position {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the requeued record was never quarantined again: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(tollgate.usage_today(&customer_id)["totals"]["requests"], 2);
    assert!(server.terminate().success());
}

fn walk(directory: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(directory) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// `tollgate reconcile` finds no drift on a healthy installation, names the drift when a
/// projection loses data, and reports sequence gaps per proxy instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_no_drift_then_names_what_was_lost() {
    use store::EventAppender;
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Reconcile Co", Some(3));
    let server = tollgate.serve(&["--upstream", "simulated"]);
    assert_eq!(
        server.spec_calls(&token, 5).await,
        vec![200, 200, 200, 429, 429]
    );
    let before_other = chrono::Utc::now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let healthy_usage = loop {
        let usage = tollgate.usage_today(&customer_id);
        if usage["totals"]["requests"] == 3 && usage["totals"]["rejected"] == 2 {
            break usage;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metering never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(healthy_usage["gaps"], serde_json::json!([]));
    let complete: chrono::DateTime<chrono::Utc> = healthy_usage["complete_through"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        complete <= before_other - chrono::Duration::minutes(10)
            && complete > before_other - chrono::Duration::minutes(11),
        "complete through the newest event minus the 10-minute allowance: {complete}"
    );

    // Two events from another proxy instance with a hole in its sequence.
    let log = store::embedded::EmbeddedStore::open(&tollgate.data_dir.join("tollgate.db")).unwrap();
    let mut records = Vec::new();
    // The first of them five minutes old (unless that crosses midnight), so the hold-back
    // is visible.
    let early = before_other - chrono::Duration::minutes(5);
    let early = if early.date_naive() == before_other.date_naive() {
        early
    } else {
        before_other
    };
    for seq in [1, 4] {
        let mut event = store::contract::event_on(
            &customer_id,
            chrono::Utc::now().date_naive(),
            "m",
            Outcome::Success,
            7,
            3,
        );
        event.occurred_at = if seq == 1 { early } else { chrono::Utc::now() };
        event.proxy_instance = "other-proxy".into();
        event.instance_seq = seq;
        records.push(store::LogRecord {
            partition_key: customer_id.clone(),
            data: bytes::Bytes::from(event.encode_json().unwrap()),
        });
    }
    log.append(&records).await.unwrap();
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 5)
        .await;
    let gapped = tollgate.usage_today(&customer_id);
    assert_eq!(
        gapped["gaps"],
        serde_json::json!([{"proxy_instance": "other-proxy", "first_missing": 2, "last_missing": 3}])
    );
    let held: chrono::DateTime<chrono::Utc> = gapped["complete_through"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        held <= early - chrono::Duration::minutes(10),
        "a gap holds completeness back to the instance's last contiguous event: {held}"
    );
    assert!(server.terminate().success());

    let today = chrono::Utc::now().date_naive().to_string();
    let range = ["reconcile", "--start-date", &today, "--end-date", &today];
    let healthy = tollgate.run_json(&range);
    assert_eq!(healthy["raw_events"], 7);
    assert_eq!(
        healthy["source"]["kind"], "archive_and_event_log",
        "{healthy}"
    );
    assert_eq!(healthy["source_covers_range"], true);
    assert_eq!(healthy["drift"].as_array().unwrap().len(), 0, "{healthy}");
    assert_eq!(
        healthy["gaps"],
        serde_json::json!([{"proxy_instance": "other-proxy", "first_missing": 2, "last_missing": 3}])
    );

    // Lose one Parquet file: reconcile names the numbers that no longer match and exits 6.
    let day_dir = tollgate.data_dir.join("usage").join(format!("dt={today}"));
    let file = std::fs::read_dir(&day_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&file).unwrap();
    let drifted = tollgate.run(&range);
    assert_eq!(
        drifted.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&drifted.stderr)
    );
    let table = String::from_utf8_lossy(&drifted.stdout);
    assert!(
        table.contains("requests") && table.contains(&customer_id),
        "{table}"
    );
    assert!(
        table.contains("raw events: the archive in ")
            && table.contains(" and the embedded event log in "),
        "reconcile names its source: {table}"
    );
}

/// `tollgate replay` rebuilds the counters and Parquet from the event log into a fresh data
/// directory: the same numbers and rows as the live projections, byte-identical when run
/// twice, and never into the live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_the_projections_and_is_repeatable() {
    use store::Counters;
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Replay Co", Some(4));
    let server = tollgate.serve(&["--upstream", "simulated"]);
    server.spec_calls(&token, 6).await;
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["rejected"] == 2)
        .await;
    assert!(server.terminate().success());

    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("rebuilt");
    let target_text = target.to_string_lossy().into_owned();
    let first = tollgate.run_json(&["replay", "--to-data-dir", &target_text]);
    assert_eq!(first["events"], 6);
    assert_eq!(first["newly_counted"], 6);

    let today = chrono::Utc::now().date_naive();
    let live =
        store::embedded::EmbeddedStore::open(&tollgate.data_dir.join("tollgate.db")).unwrap();
    let rebuilt = store::embedded::EmbeddedStore::open(&target.join("tollgate.db")).unwrap();
    assert_eq!(
        rebuilt
            .read_daily(&customer_id, today, today)
            .await
            .unwrap(),
        live.read_daily(&customer_id, today, today).await.unwrap(),
        "the rebuilt counters equal the live ones"
    );
    let ids = |rows: Vec<schemas::UsageEvent>| -> BTreeSet<uuid::Uuid> {
        rows.into_iter().map(|row| row.event_id).collect()
    };
    assert_eq!(
        ids(tests::harness::parquet_rows_in(&target)),
        ids(tollgate.parquet_rows())
    );
    let files = |directory: &std::path::Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = walk(&directory.join("usage"))
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        files.sort();
        files
    };
    let before = files(&target);

    let second = tollgate.run_json(&["replay", "--to-data-dir", &target_text]);
    assert_eq!(second["events"], 6);
    assert_eq!(
        second["newly_counted"], 0,
        "a second run counts nothing again"
    );
    assert_eq!(
        files(&target),
        before,
        "a second run writes the same files, byte for byte"
    );

    let live_dir = tollgate.data_dir.to_string_lossy().into_owned();
    let refused = tollgate.run(&["replay", "--to-data-dir", &live_dir]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("live projections"));
}

/// `tollgate compact` merges a day's batch files into one file of its unique events; a
/// second run finds nothing to do; reconcile still finds no drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_merges_a_day_and_is_idempotent() {
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Compact Co", None);
    let server = tollgate.serve(&["--upstream", "simulated", "--metering-batch-records", "2"]);
    let client = reqwest::Client::new();
    for call in 0..7 {
        client
            .post(format!("{}/prod/bedrock", server.base_url))
            .bearer_auth(&token)
            .json(&spec_body(&format!("call {call}")))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    }
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 7)
        .await;
    assert!(server.terminate().success());
    let today = chrono::Utc::now().date_naive().to_string();
    let day_dir = tollgate.data_dir.join("usage").join(format!("dt={today}"));
    let before = std::fs::read_dir(&day_dir).unwrap().count();
    assert!(before > 1, "several batch files to merge: {before}");
    let ids_before: BTreeSet<_> = tollgate
        .parquet_rows()
        .iter()
        .map(|row| row.event_id)
        .collect();

    let compacted = tollgate.run_json(&["compact", "--date", &today]);
    assert_eq!(compacted["files_merged"], before);
    assert_eq!(compacted["files_written"], 1);
    assert_eq!(compacted["events"], 7);
    let files: Vec<_> = std::fs::read_dir(&day_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with("compacted-"), "{files:?}");
    let rows = tollgate.parquet_rows();
    assert_eq!(rows.len(), 7);
    let ids_after: BTreeSet<_> = rows.iter().map(|row| row.event_id).collect();
    assert_eq!(ids_after, ids_before);

    let again = tollgate.run_json(&["compact", "--date", &today]);
    assert_eq!(again["files_written"], 0);
    let reconciled =
        tollgate.run_json(&["reconcile", "--start-date", &today, "--end-date", &today]);
    assert_eq!(reconciled["drift"], serde_json::json!([]));
}

/// Real traffic through the proxy, then an invoice whose total matches the calls made:
/// the assigned plan prices the month, a candidate plan prices it what-if without changing
/// anything, and the output is byte-identical run to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_prices_the_calls_made() {
    let tollgate = Tollgate::new();
    let (customer_id, token) = tollgate.create_customer("Invoice Co", None);
    let plans = tempfile::tempdir().unwrap();
    let plan_file = plans.path().join("starter.toml");
    std::fs::write(
        &plan_file,
        r#"schema_version = 1
id = "starter"
version = 1
name = "Starter"
currency = "USD"

[[charges]]
type = "subscription"
fee = "10.00"
metric = "requests"
included_units = 3
overage_unit_price = "0.50"

[[charges]]
type = "per_request"
unit_price = "0.01"
"#,
    )
    .unwrap();
    let plan_path = plan_file.to_string_lossy().into_owned();
    tollgate.run_json(&["plan", "add", &plan_path]);
    let listed = tollgate.run_json(&["plan", "list"]);
    assert_eq!(listed[0]["id"], "starter");
    let now = chrono::Utc::now().date_naive();
    let month_start = chrono::NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&now),
        chrono::Datelike::month(&now),
        1,
    )
    .unwrap()
    .to_string();
    let mid_month = tollgate.run(&[
        "assign-plan",
        "--customer-id",
        &customer_id,
        "--plan-id",
        "starter",
        "--effective-from",
        &format!("{}-15", &month_start[..7]),
    ]);
    assert_eq!(
        mid_month.status.code(),
        Some(2),
        "plans change at the start of a month"
    );
    tollgate.run_json(&[
        "assign-plan",
        "--customer-id",
        &customer_id,
        "--plan-id",
        "starter",
        "--effective-from",
        &month_start,
    ]);

    let server = tollgate.serve(&["--upstream", "simulated"]);
    assert_eq!(server.spec_calls(&token, 5).await, vec![200; 5]);
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 5)
        .await;
    assert!(server.terminate().success());

    let period = &month_start[..7];
    let invoice =
        tollgate.run_json(&["invoice", "--customer-id", &customer_id, "--period", period]);
    // $10.00 subscription + 2 requests over the 3 included × $0.50 + 5 × $0.01 = $11.05.
    assert_eq!(invoice["total"], "11.05", "{invoice}");
    assert_eq!(invoice["status"], "draft", "the month is not over");
    assert_eq!(
        invoice["subtotals"],
        serde_json::json!([
            {"charge": "subscription", "amount": "11.00"},
            {"charge": "per request", "amount": "0.05"}
        ])
    );
    assert_eq!(invoice["plan"]["plan_id"], "starter");
    assert_eq!(invoice["usage"]["requests"], 5);
    assert!(invoice["complete_through"].is_string());
    let again = tollgate.run(&["invoice", "--customer-id", &customer_id, "--period", period]);
    let first = tollgate.run(&["invoice", "--customer-id", &customer_id, "--period", period]);
    assert_eq!(again.stdout, first.stdout, "byte-identical");

    let csv = tollgate.run(&[
        "invoice",
        "--customer-id",
        &customer_id,
        "--period",
        period,
        "--format",
        "csv",
    ]);
    assert!(
        String::from_utf8_lossy(&csv.stdout)
            .trim_end()
            .ends_with(",total,,,,11.05")
    );
    let html = tollgate.run(&[
        "invoice",
        "--customer-id",
        &customer_id,
        "--period",
        period,
        "--format",
        "html",
    ]);
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(html.contains("id=\"total\">11.05<"), "{html}");

    // What-if under a candidate plan: another total, and nothing changes.
    let audit_before = tollgate.run_json(&["audit"]).as_array().unwrap().len();
    let candidate = plans.path().join("candidate.toml");
    std::fs::write(
        &candidate,
        "schema_version = 1\nid = \"candidate\"\nversion = 1\nname = \"Candidate\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"1.00\"\n",
    )
    .unwrap();
    let what_if = tollgate.run_json(&[
        "invoice",
        "--customer-id",
        &customer_id,
        "--period",
        period,
        "--plan",
        &candidate.to_string_lossy(),
    ]);
    assert_eq!(what_if["total"], "5.00");
    assert_eq!(
        tollgate.run_json(&["audit"]).as_array().unwrap().len(),
        audit_before
    );
    assert_eq!(
        tollgate.run_json(&["invoice", "--customer-id", &customer_id, "--period", period])["total"],
        "11.05"
    );
    let everyone = tollgate.run_json(&["invoice", "--all", "--period", period]);
    assert_eq!(everyone.as_array().unwrap().len(), 1);
    let pages = plans.path().join("pages");
    let written = tollgate.run(&[
        "invoice",
        "--all",
        "--period",
        period,
        "--format",
        "html",
        "--out",
        &pages.to_string_lossy(),
    ]);
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let page = pages.join(format!(
        "{}.html",
        invoice["invoice_number"].as_str().unwrap()
    ));
    assert!(
        std::fs::read_to_string(page)
            .unwrap()
            .contains("id=\"total\">11.05<")
    );
}

/// `tollgate alerts` lists what was raised, each (rule, customer, window) once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_listed_once_per_rule_customer_and_window() {
    use store::Alerts;
    let tollgate = Tollgate::new();
    let (customer_id, _) = tollgate.create_customer("Alerted Co", Some(10));
    let store =
        store::embedded::EmbeddedStore::open(&tollgate.data_dir.join("tollgate.db")).unwrap();
    let alert = schemas::alert::Alert {
        rule: "usage_80".into(),
        customer_id: customer_id.clone(),
        window: "daily_requests:day:2026-11-29".into(),
        message: "80% of the daily request limit".into(),
        value: 8.0,
        threshold: 8.0,
    };
    assert!(store.record(&alert, chrono::Utc::now()).await.unwrap());
    assert!(!store.record(&alert, chrono::Utc::now()).await.unwrap());
    let listed = tollgate.run_json(&["alerts"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["rule"], "usage_80");
    assert_eq!(listed[0]["customer_id"], customer_id.as_str());
    let table = tollgate.run(&["alerts", "--since", "1h"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("usage_80"));
}
