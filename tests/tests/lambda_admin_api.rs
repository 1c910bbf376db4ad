//! The admin API and the customers' usage route through the real `tollgate-proxy-lambda`
//! binary under a local Lambda Runtime API, as API Gateway invokes it, on emulated AWS: the
//! same routes, credentials and rules as on `tollgate serve`, the changes in DynamoDB where
//! the CLI sees them.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use serde_json::{Value, json};
use tests::aws_env::create_resources;
use tests::fake_bedrock::FakeBedrock;
use tests::harness::Tollgate;
use tests::lambda_runtime_api::FakeRuntimeApi;

const STAGE: &str = "prod";

/// An API Gateway REST proxy event for `METHOD /{STAGE}{path}` under `resource`.
fn rest_event(
    method: &str,
    resource: &str,
    path: &str,
    token: &str,
    extra_headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Value {
    let mut headers = json!({
        "Authorization": format!("Bearer {token}"),
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
    });
    if body.is_some() {
        headers["Content-Type"] = json!("application/json");
    }
    for (name, value) in extra_headers {
        headers[*name] = json!(value);
    }
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), json!([value])))
        .collect();
    json!({
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "res123",
            "resourcePath": resource,
            "httpMethod": method,
            "path": format!("/{STAGE}{path}"),
            "stage": STAGE,
            "requestId": uuid::Uuid::now_v7().to_string(),
            "requestTimeEpoch": Utc::now().timestamp_millis(),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    })
}

async fn call(runtime: &FakeRuntimeApi, event: &Value) -> (u64, Value) {
    let answer = runtime.invoke(event).await;
    assert_eq!(answer.error, None);
    let (prelude, payload) = answer.http_parts();
    let status = prelude["statusCode"].as_u64().unwrap();
    (
        status,
        serde_json::from_slice(&payload).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_and_own_usage_work_through_the_proxy_lambda_on_emulated_aws() {
    let settings = create_resources(1).await;
    let tollgate = Tollgate::on_aws(settings);
    let fake = FakeBedrock::start().await;
    let made = tollgate.run_json(&["admin-token", "--name", "lambda-ops", "--role", "admin"]);
    let admin = made["token"].as_str().unwrap().to_owned();
    let runtime = FakeRuntimeApi::start().await;
    let mut function = tollgate.binary_command("tollgate-proxy-lambda");
    function
        .envs(runtime.lambda_environment("tollgate-proxy"))
        .env("TOLLGATE_UPSTREAM", "bedrock")
        .env("TOLLGATE_BEDROCK_ENDPOINT_URL", fake.endpoint_url())
        .stdout(std::process::Stdio::null());
    let mut child = function.spawn().unwrap();
    let admin_resource = "/admin/{proxy+}";

    // Create through the Lambda, twice with one Idempotency-Key: one customer.
    let body = json!({"name": "Lambda Co", "email": "ops@lambda.example", "daily_limit": 50});
    let create = rest_event(
        "POST",
        admin_resource,
        "/admin/api/v1/customers",
        &admin,
        &[("Idempotency-Key", "signup-lambda-1")],
        Some(&body),
    );
    let (status, created) = call(&runtime, &create).await;
    assert_eq!(status, 201, "{created}");
    let (status, again) = call(&runtime, &create).await;
    assert_eq!(status, 201);
    assert_eq!(again, created, "the retry returns the first answer");
    let customer_id = created["customer_id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();

    // The CLI on the same tables sees it, with the API credential as the actor.
    let listed = tollgate.run_json(&["list"]);
    let named: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|customer| customer["name"] == "Lambda Co")
        .collect();
    assert_eq!(named.len(), 1, "one customer for two requests");
    let trail = tollgate.run_json(&["audit", "--customer-id", &customer_id]);
    assert_eq!(trail[0]["actor"], "admin-api:lambda-ops");

    // Reads, limits, and refusals in the API's own shapes.
    let (status, profile) = call(
        &runtime,
        &rest_event(
            "GET",
            admin_resource,
            &format!("/admin/api/v1/customers/{customer_id}"),
            &admin,
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(profile["customer"]["limits"]["daily_request_limit"], 50);
    let (status, limits) = call(
        &runtime,
        &rest_event(
            "PATCH",
            admin_resource,
            &format!("/admin/api/v1/customers/{customer_id}/limits"),
            &admin,
            &[],
            Some(&json!({"daily_limit": 3})),
        ),
    )
    .await;
    assert_eq!(status, 200, "{limits}");
    let (status, refused) = call(
        &runtime,
        &rest_event(
            "GET",
            admin_resource,
            "/admin/api/v1/customers",
            &token,
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(refused["error"]["code"], "forbidden");

    // The customer's own usage route, with its token.
    let (status, usage) = call(
        &runtime,
        &rest_event("GET", "/usage", "/usage", &token, &[], None),
    )
    .await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["customer_id"], customer_id.as_str());
    assert_eq!(usage["limits"][0]["limit"], "daily_requests");
    assert_eq!(usage["limits"][0]["limit_value"], 3);

    // The operator console, under the stage as a browser asks for it: its assets are
    // relative, so they resolve under /prod/admin/ too.
    let page = runtime
        .invoke(&rest_event("GET", admin_resource, "/admin/", "", &[], None))
        .await;
    let (prelude, payload) = page.http_parts();
    assert_eq!(prelude["statusCode"], 200);
    assert!(
        prelude.to_string().contains("default-src 'none'"),
        "{prelude}"
    );
    let html = String::from_utf8_lossy(&payload);
    assert!(html.contains("src=\"console.js\""), "{html}");
    child.kill().unwrap();
    child.wait().unwrap();
}
