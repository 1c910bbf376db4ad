//! `GET /prod/usage` against `tollgate serve` and the fake Bedrock: a customer reads its own
//! usage (today and this month per model, each limit with what remains, its keys' last use)
//! with its own token, and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tests::fake_bedrock::FakeBedrock;
use tests::harness::Tollgate;

async fn own_usage(
    base: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_reads_its_own_usage_limits_and_keys_with_its_token() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let (customer_id, token) = tollgate.create_customer("Self Served", Some(5));
    let (other_id, other_token) = tollgate.create_customer("Someone Else", None);
    tollgate.run_json(&[
        "update-limits",
        "--customer-id",
        &customer_id,
        "--monthly-token-limit",
        "1000000",
    ]);
    let server = tollgate.serve_against(&fake, None);
    assert_eq!(server.spec_calls(&token, 2).await, [200, 200]);
    assert_eq!(server.spec_calls(&other_token, 1).await, [200]);
    tollgate
        .wait_for_usage(&customer_id, |totals| totals["requests"] == 2)
        .await;
    tollgate
        .wait_for_usage(&other_id, |totals| totals["requests"] == 1)
        .await;
    let (input, output) = fake
        .answered()
        .iter()
        .take(2)
        .fold((0, 0), |(input, output), call| {
            (input + call.input_tokens, output + call.output_tokens)
        });

    for path in ["/prod/usage", "/usage"] {
        let (status, headers, usage) = own_usage(&server.base_url, path, Some(&token)).await;
        assert_eq!(status, 200, "{path}: {usage}");
        assert_eq!(usage["customer_id"], customer_id.as_str());
        assert_eq!(usage["today"]["requests"], 2);
        assert_eq!(usage["today"]["input_tokens"], input);
        assert_eq!(usage["today"]["output_tokens"], output);
        assert_eq!(usage["month"]["requests"], 2, "this month includes today");
        let by_model = usage["today"]["by_model"].as_object().unwrap();
        assert_eq!(by_model.len(), 1);
        assert_eq!(by_model.values().next().unwrap()["requests"], 2);
        let limits = usage["limits"].as_array().unwrap();
        let daily = limits
            .iter()
            .find(|limit| limit["limit"] == "daily_requests")
            .unwrap();
        assert_eq!(daily["limit_value"], 5);
        assert_eq!(daily["used"], 2);
        assert_eq!(daily["remaining"], 3);
        let monthly = limits
            .iter()
            .find(|limit| limit["limit"] == "monthly_tokens")
            .unwrap();
        assert_eq!(monthly["used"], input + output);
        assert_eq!(headers["ratelimit-limit"], "5");
        assert_eq!(headers["ratelimit-remaining"], "3");
        let keys = usage["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["state"], "active");
        assert!(
            !usage.to_string().contains(&token),
            "the answer never holds a token"
        );
        assert!(
            !usage.to_string().contains(&other_id),
            "only the caller's own usage"
        );
    }
    // Reading usage is not a model call: it is not metered and uses no limit.
    let (_, _, again) = own_usage(&server.base_url, "/prod/usage", Some(&token)).await;
    assert_eq!(again["today"]["requests"], 2);
    assert_eq!(server.spec_calls(&token, 3).await, [200, 200, 200]);

    // Without a customer's token: 401, as on every customer route.
    let (status, _, _) = own_usage(&server.base_url, "/prod/usage", None).await;
    assert_eq!(status, 401);
    let (status, _, _) = own_usage(&server.base_url, "/prod/usage", Some("tg_nope")).await;
    assert_eq!(status, 401);
    let admin = tollgate.run_json(&["admin-token", "--name", "ops"]);
    let (status, _, _) = own_usage(
        &server.base_url,
        "/prod/usage",
        Some(admin["token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 401, "an admin credential is not a customer");
}
