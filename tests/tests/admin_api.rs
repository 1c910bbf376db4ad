//! The admin API against a real `tollgate serve` (embedded store, the fake Bedrock as
//! upstream): the CLI and the API act on the same customers with the same rules, the served
//! OpenAPI document passes a real validator, and a client driving the document's examples
//! works.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::{Value, json};
use tests::fake_bedrock::FakeBedrock;
use tests::harness::{Tollgate, spec_body};

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

/// A stored admin credential made with the CLI: its token.
fn admin_credential(tollgate: &Tollgate, name: &str, role: &str) -> String {
    let made = tollgate.run_json(&["admin-token", "--name", name, "--role", role]);
    made["token"].as_str().unwrap().to_owned()
}

struct Admin {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/admin/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn spec_call(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/prod/bedrock"))
        .bearer_auth(token)
        .json(&spec_body("hello"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_api_share_customers_keys_limits_and_the_audit_trail() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let token = admin_credential(&tollgate, "billing-system", "admin");
    // No auth cache: each change through either adapter shows on the next call.
    let endpoint = fake.endpoint_url();
    let server = tollgate.serve(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &endpoint,
        "--auth-cache-ms",
        "0",
    ]);
    let api = Admin {
        client: reqwest::Client::new(),
        base: server.base_url.clone(),
        token,
    };

    // Created through the API, listed through the CLI.
    let (status, created) = api
        .send(
            reqwest::Method::POST,
            "/customers",
            Some(json!({"name": "Both Ways", "email": "ops@both.example", "daily_limit": 2})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let customer_id = created["customer_id"].as_str().unwrap().to_owned();
    let first_token = created["token"].as_str().unwrap().to_owned();
    let listed = tollgate.run_json(&["list"]);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|customer| customer["customer_id"] == customer_id.as_str())
        .expect("the CLI lists the customer the API created");
    assert_eq!(row["name"], "Both Ways");
    assert_eq!(row["limits"]["daily_request_limit"], 2);

    // The API's token authenticates on the proxy; rotated through the CLI, the new one
    // works and the old one stops.
    assert_eq!(spec_call(&server.base_url, &first_token).await, 200);
    let rotated = tollgate.run_json(&[
        "update-token",
        "--customer-id",
        &customer_id,
        "--grace-period",
        "0",
    ]);
    let second_token = rotated["token"].as_str().unwrap().to_owned();
    assert_eq!(spec_call(&server.base_url, &second_token).await, 200);
    assert_eq!(spec_call(&server.base_url, &first_token).await, 401);
    let (_, keys) = api
        .send(
            reqwest::Method::GET,
            &format!("/customers/{customer_id}/keys"),
            None,
        )
        .await;
    let states: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["revoked", "active"],
        "the API sees the CLI's rotation"
    );

    // The daily limit of 2 set through the API holds on the proxy.
    let third = spec_call(&server.base_url, &second_token).await;
    assert_eq!(
        third, 429,
        "the third call of the day is over the API's limit"
    );

    // The same validation from both adapters: the CLI refuses the bad email the API refuses.
    let (status, refused) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/customers/{customer_id}"),
            Some(json!({"email": "nope"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["field"], "email");
    let cli = tollgate.run(&[
        "update-customer",
        "--customer-id",
        &customer_id,
        "--email",
        "nope",
    ]);
    assert_eq!(cli.status.code(), Some(2));
    let cli_error = String::from_utf8_lossy(&cli.stderr);
    let api_message = refused["error"]["message"].as_str().unwrap();
    assert!(
        cli_error.contains(api_message),
        "one rule, one message: CLI {cli_error:?}, API {api_message:?}"
    );

    // Limits changed through the CLI read back through the API, and the other way round.
    tollgate.run_json(&[
        "update-limits",
        "--customer-id",
        &customer_id,
        "--rpm",
        "30",
    ]);
    let (_, profile) = api
        .send(
            reqwest::Method::GET,
            &format!("/customers/{customer_id}"),
            None,
        )
        .await;
    assert_eq!(profile["customer"]["limits"]["requests_per_minute"], 30);
    assert_eq!(profile["customer"]["limits"]["daily_request_limit"], 2);
    api.send(
        reqwest::Method::PATCH,
        &format!("/customers/{customer_id}/limits"),
        Some(json!({"daily_limit": null})),
    )
    .await;
    let shown = tollgate.run_json(&["show", "--customer-id", &customer_id]);
    assert_eq!(
        shown["customer"]["limits"]["daily_request_limit"],
        Value::Null
    );
    assert_eq!(spec_call(&server.base_url, &second_token).await, 200);

    // One audit trail, each change under its actor.
    let trail = tollgate.run_json(&["audit", "--customer-id", &customer_id]);
    let actors: Vec<(&str, &str)> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["action"].as_str().unwrap(),
                entry["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(actors[0], ("create", "admin-api:billing-system"));
    assert_eq!(actors[1].0, "rotate");
    assert_ne!(
        actors[1].1, "admin-api:billing-system",
        "the CLI acts as its operator"
    );
    assert_eq!(
        actors.last().unwrap(),
        &("limits", "admin-api:billing-system")
    );

    // A revoked credential opens nothing.
    let revoke = tollgate.run(&["admin-token", "revoke", "billing-system"]);
    assert!(revoke.status.success());
    let (status, _) = api.send(reqwest::Method::GET, "/customers", None).await;
    assert_eq!(status, 401);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_validates_and_a_client_driving_its_examples_works() {
    document_client_scenario(Tollgate::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_aws_backend_the_same_client_works_against_dynamodb() {
    let settings = tests::aws_env::create_resources(1).await;
    document_client_scenario(Tollgate::on_aws(settings)).await;
}

/// The document's examples through the Python client, against `tollgate serve` on
/// `tollgate`'s backend.
async fn document_client_scenario(tollgate: Tollgate) {
    let python = client_python();
    let fake = FakeBedrock::start().await;
    let token = admin_credential(&tollgate, "docs-client", "admin");
    let endpoint = fake.endpoint_url();
    let prices = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model-prices.toml");
    let server = tollgate.serve(&[
        "--upstream",
        "bedrock",
        "--bedrock-endpoint-url",
        &endpoint,
        "--model-prices",
        &prices.to_string_lossy(),
    ]);
    let output = Command::new(&python)
        .arg(clients_dir().join("admin_api_client.py"))
        .env("TOLLGATE_URL", &server.base_url)
        .env("TOLLGATE_ADMIN_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["limits"]["daily_request_limit"], 5000);
    assert_eq!(seen["invoice_currency"], "USD");
    assert_eq!(seen["invoice_status"], "draft");
    assert!(seen["csv_lines"].as_u64().unwrap() >= 2);
    assert_eq!(seen["renamed_email"], "billing@acme.example");
    assert_eq!(seen["plans"], 1);
    assert_eq!(seen["summary_customers"], 1);
    assert_eq!(seen["margin_cost"], "0.00", "no calls, no cost");
    assert_eq!(seen["deleted_status"], "deleted");
    let actions: Vec<&str> = seen["audit_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| action.as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "rotate",
            "limits",
            "assign-plan",
            "profile",
            "revoke",
            "disable",
            "enable"
        ]
    );
    // The customer the client made is real, and the CLI sees what the client did.
    // Deleting the customer through the API revoked its keys on the proxy (the token was
    // never used, so no cached record stands in the way).
    let rotated = seen["rotated_token"].as_str().unwrap();
    assert_eq!(spec_call(&server.base_url, rotated).await, 401);
    let customer_id = seen["customer_id"].as_str().unwrap();
    let shown = tollgate.run_json(&["show", "--customer-id", customer_id]);
    assert_eq!(shown["customer"]["name"], "Acme");
    assert_eq!(
        shown["customer"]["status"], "deleted",
        "the client's last step"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_proxy_serves_the_admin_api_and_own_usage_too() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let token = admin_credential(&tollgate, "standalone-ops", "viewer");
    let (customer_id, customer_token) = tollgate.create_customer("Standalone Co", Some(10));
    let endpoint = fake.endpoint_url();
    let proxy =
        tollgate.standalone_proxy(&["--upstream", "bedrock", "--bedrock-endpoint-url", &endpoint]);
    let api = Admin {
        client: reqwest::Client::new(),
        base: proxy.base_url.clone(),
        token,
    };
    let (status, page) = api.send(reqwest::Method::GET, "/customers", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["customers"][0]["customer_id"], customer_id.as_str());
    let (status, refused) = api
        .send(
            reqwest::Method::POST,
            &format!("/customers/{customer_id}/disable"),
            None,
        )
        .await;
    assert_eq!(status, 403, "a viewer only reads: {refused}");
    let usage: Value = reqwest::Client::new()
        .get(format!("{}/prod/usage", proxy.base_url))
        .bearer_auth(&customer_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["limits"][0]["limit_value"], 10);
}
