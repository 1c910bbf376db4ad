//! The admin API in process, on the memory store: routes against the OpenAPI document,
//! credentials and roles, strict input, and the answers of each route.
#![allow(clippy::too_many_lines)] // scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use admin::{PREFIX, routes};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use control::Actor;
use control::admin_tokens::create_admin_credential;
use schemas::AdminRole;
use serde_json::{Value, json};

use common::{api, error_code};

/// The document's (method, path) pairs.
fn documented() -> BTreeSet<(String, String)> {
    let document: Value = serde_json::from_str(admin::openapi::DOCUMENT).unwrap();
    let mut pairs = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                pairs.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    pairs
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let mut registered: BTreeSet<(String, String)> = routes()
        .table()
        .iter()
        .map(|(method, path)| (method.to_string(), path.clone()))
        .collect();
    registered.insert(("GET".into(), format!("{PREFIX}/openapi.json")));
    assert_eq!(registered, documented());
    // Each documented route answers something other than the unknown-route 404.
    let api = api().await;
    let customer = api.create("Routed").await;
    let id = customer["customer_id"].as_str().unwrap();
    let key_id = customer["key_id"].as_str().unwrap();
    for (method, path) in documented() {
        let concrete = path
            .trim_start_matches(PREFIX)
            .replace("{id}", id)
            .replace("{key_id}", key_id)
            .replace("{period}", "2026-11");
        let answer = api.admin(method.parse().unwrap(), &concrete, None).await;
        let unknown = answer.status == StatusCode::NOT_FOUND
            && answer.json["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("is not a route");
        assert!(!unknown, "{method} {path} is not served");
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn the_served_document_is_the_documents_text() {
    let api = api().await;
    let answer = api.call(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["openapi"], "3.1.0");
}

#[tokio::test]
async fn credentials_decide_who_may_read_and_who_may_change() {
    let api = api().await;
    let customer = api.create("Acme").await;
    let token = customer["token"].as_str().unwrap().to_owned();
    let missing = api.call(None, Method::GET, "/customers", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&missing), "unauthorized");
    assert!(missing.headers.contains_key("www-authenticate"));
    let wrong = api
        .call(Some("tg_not-a-credential"), Method::GET, "/customers", None)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let customer_token = api
        .call(Some(&token), Method::GET, "/customers", None)
        .await;
    assert_eq!(customer_token.status, StatusCode::FORBIDDEN);
    let viewer_reads = api
        .call(Some(&api.viewer), Method::GET, "/customers", None)
        .await;
    assert_eq!(viewer_reads.status, StatusCode::OK);
    let viewer_writes = api
        .call(
            Some(&api.viewer),
            Method::POST,
            "/customers",
            Some(json!({"name": "Nope", "email": "n@example.com"})),
        )
        .await;
    assert_eq!(viewer_writes.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&viewer_writes), "forbidden");
    assert_eq!(
        api.admin(Method::GET, "/customers", None).await.json["customers"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the viewer made nothing"
    );
    // Revoked, the admin credential opens nothing.
    control::admin_tokens::revoke_admin_credential(
        api.store.as_ref(),
        &Actor::operator("alice"),
        "ops",
    )
    .await
    .unwrap();
    let revoked = api.admin(Method::GET, "/customers", None).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let api = api().await;
    let customer = api.create("Strict").await;
    let id = customer["customer_id"].as_str().unwrap();
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/customers".into(),
            json!({"name": "A", "email": "a@example.com", "colour": "red"}),
            "colour",
        ),
        (
            Method::POST,
            "/customers".into(),
            json!({"name": 5, "email": "a@example.com"}),
            "name",
        ),
        (
            Method::POST,
            "/customers".into(),
            json!({"name": "A", "email": "not-an-email"}),
            "email",
        ),
        (
            Method::POST,
            "/customers".into(),
            json!({"name": "A", "email": "a@example.com", "daily_limit": "lots"}),
            "daily_limit",
        ),
        (
            Method::POST,
            "/customers".into(),
            json!({"name": "A", "email": "a@example.com", "expires_in": "soon"}),
            "expires_in",
        ),
        (
            Method::PATCH,
            format!("/customers/{id}/limits"),
            json!({"rpm": -3}),
            "rpm",
        ),
        (
            Method::PATCH,
            format!("/customers/{id}/limits"),
            json!({}),
            "limits",
        ),
        (
            Method::PATCH,
            format!("/customers/{id}"),
            json!({"nickname": "x"}),
            "nickname",
        ),
        (
            Method::POST,
            format!("/customers/{id}/keys"),
            json!({"grace_period": "forever"}),
            "grace_period",
        ),
        (
            Method::PUT,
            format!("/customers/{id}/plan"),
            json!({"plan_id": "p", "effective_from": "2026-12-05"}),
            "effective_from",
        ),
        (
            Method::PATCH,
            "/customers/not-an-id/limits".into(),
            json!({"rpm": 5}),
            "customer_id",
        ),
        (
            Method::DELETE,
            format!("/customers/{id}/keys/nokey"),
            Value::Null,
            "key_id",
        ),
        (
            Method::GET,
            "/customers?limit=5000".into(),
            Value::Null,
            "limit",
        ),
        (
            Method::GET,
            "/customers?colour=red".into(),
            Value::Null,
            "colour",
        ),
        (
            Method::GET,
            "/customers?status=sleeping".into(),
            Value::Null,
            "status",
        ),
        (
            Method::GET,
            format!("/customers/{id}/usage?start_date=yesterday"),
            Value::Null,
            "start_date",
        ),
        (
            Method::GET,
            format!("/customers/{id}/invoices/2026-13"),
            Value::Null,
            "period",
        ),
    ];
    for (method, path, body, field) in cases {
        let body = (!body.is_null()).then_some(body);
        let answer = api.admin(method.clone(), &path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            answer.json
        );
        assert_eq!(
            answer.json["error"]["field"], field,
            "{method} {path}: {}",
            answer.json
        );
        assert!(!answer.json["error"]["message"].as_str().unwrap().is_empty());
    }
    // Not JSON, too large, or sent as a form: refused before anything is read.
    let form = Request::builder()
        .method(Method::POST)
        .uri(format!("{PREFIX}/customers"))
        .header("authorization", format!("Bearer {}", api.admin))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("name=A&email=a@example.com"))
        .unwrap();
    assert_eq!(
        api.send(form).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let huge = json!({"name": "x".repeat(100_000), "email": "a@example.com"});
    let too_large = api.admin(Method::POST, "/customers", Some(huge)).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    let broken = Request::builder()
        .method(Method::POST)
        .uri(format!("{PREFIX}/customers"))
        .header("authorization", format!("Bearer {}", api.admin))
        .header("content-type", "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    assert_eq!(api.send(broken).await.status, StatusCode::BAD_REQUEST);
    let listed = api.admin(Method::GET, "/customers", None).await;
    assert_eq!(
        listed.json["customers"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
    let unknown = api
        .admin(
            Method::GET,
            "/customers/0192c1a0-7b6e-7c3d-9a51-2f0e8d6b4c21",
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&unknown), "not_found");
    let wrong_method = api.admin(Method::PUT, "/customers", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    let no_route = api.admin(Method::GET, "/customer", None).await;
    assert_eq!(no_route.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_customer_goes_through_its_life_and_every_change_names_the_credential() {
    let api = api().await;
    let customer = api.create("Life").await;
    let id = customer["customer_id"].as_str().unwrap().to_owned();
    assert!(customer["token"].as_str().unwrap().starts_with("tg_"));
    let limits = api
        .admin(
            Method::PATCH,
            &format!("/customers/{id}/limits"),
            Some(json!({"daily_limit": null, "rpm": 60, "allowed_models": ["anthropic.*"], "enforcement": "strict"})),
        )
        .await;
    assert_eq!(limits.status, StatusCode::OK, "{}", limits.json);
    assert_eq!(limits.json["limits"]["daily_request_limit"], Value::Null);
    assert_eq!(limits.json["limits"]["requests_per_minute"], 60);
    assert_eq!(limits.json["limits"]["enforcement"], "strict");
    let rotated = api
        .admin(
            Method::POST,
            &format!("/customers/{id}/keys"),
            Some(json!({"grace_period": "0"})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED);
    let keys = api
        .admin(Method::GET, &format!("/customers/{id}/keys"), None)
        .await;
    let states: Vec<&str> = keys.json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["revoked", "active"]);
    assert!(
        !keys.json.to_string().contains("tg_"),
        "keys never show tokens"
    );
    let new_key = rotated.json["key_id"].as_str().unwrap();
    let revoked = api
        .admin(
            Method::DELETE,
            &format!("/customers/{id}/keys/{new_key}"),
            None,
        )
        .await;
    assert_eq!(revoked.json["state"], "revoked");
    let renamed = api
        .admin(
            Method::PATCH,
            &format!("/customers/{id}"),
            Some(json!({"name": "Life Ltd"})),
        )
        .await;
    assert_eq!(renamed.json["name"], "Life Ltd");
    for (action, status) in [("disable", "disabled"), ("enable", "active")] {
        let changed = api
            .admin(Method::POST, &format!("/customers/{id}/{action}"), None)
            .await;
        assert_eq!(changed.json["status"], status);
    }
    let deleted = api
        .admin(Method::DELETE, &format!("/customers/{id}"), None)
        .await;
    assert_eq!(deleted.json["status"], "deleted");
    let conflict = api
        .admin(Method::POST, &format!("/customers/{id}/enable"), None)
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let shown = api
        .admin(Method::GET, &format!("/customers/{id}"), None)
        .await;
    assert_eq!(shown.json["customer"]["status"], "deleted");
    let audit = api
        .admin(
            Method::GET,
            &format!("/audit?customer_id={id}&limit=3"),
            None,
        )
        .await;
    let entries = audit.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|entry| entry["actor"] == "admin-api:ops")
    );
    let rest = api
        .admin(
            Method::GET,
            &format!(
                "/audit?customer_id={id}&next_token={}",
                audit.json["next_token"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let actions: Vec<&str> = entries
        .iter()
        .chain(rest.json["entries"].as_array().unwrap())
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create", "limits", "rotate", "revoke", "profile", "disable", "enable", "delete"
        ]
    );
}

#[tokio::test]
async fn plans_usage_summary_and_invoices_answer_as_the_cli() {
    let api = api().await;
    let customer = api.create("Billed").await;
    let id = customer["customer_id"].as_str().unwrap();
    let plan = "schema_version = 1\nid = \"starter\"\nversion = 1\nname = \"Starter\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"0.002\"\n";
    let added = api
        .send(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{PREFIX}/plans"))
                .header("authorization", format!("Bearer {}", api.admin))
                .header("content-type", "application/toml")
                .body(Body::from(plan))
                .unwrap(),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json);
    let bad_plan = api
        .admin(Method::POST, "/plans", Some(json!({"schema_version": 1, "id": "x", "version": 1, "name": "X", "currency": "USD", "charges": [{"type": "per_request", "unit_price": "-1"}]})))
        .await;
    assert_eq!(
        bad_plan.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_plan.json
    );
    let listed = api.admin(Method::GET, "/plans", None).await;
    assert_eq!(listed.json["plans"][0]["id"], "starter");
    let month = chrono::Utc::now().date_naive().format("%Y-%m").to_string();
    let assigned = api
        .admin(
            Method::PUT,
            &format!("/customers/{id}/plan"),
            Some(json!({"plan_id": "starter", "effective_from": format!("{month}-01")})),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.json);
    assert_eq!(assigned.json["plan_version"], 1);
    let usage = api
        .admin(
            Method::GET,
            &format!("/customers/{id}/usage?granularity=hour"),
            None,
        )
        .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.json);
    assert_eq!(usage.json["totals"]["requests"], 0);
    assert!(usage.json["hours"].is_array());
    let invoice = api
        .admin(
            Method::GET,
            &format!("/customers/{id}/invoices/{month}"),
            None,
        )
        .await;
    assert_eq!(invoice.status, StatusCode::OK, "{}", invoice.json);
    assert_eq!(invoice.json["currency"], "USD");
    let html = api
        .send(
            Request::builder()
                .uri(format!(
                    "{PREFIX}/customers/{id}/invoices/{month}?format=html"
                ))
                .header("authorization", format!("Bearer {}", api.viewer))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(
        html.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let summary = api.admin(Method::GET, "/summary", None).await;
    assert_eq!(summary.json["customers"], 1);
    assert_eq!(summary.json["active_customers"], 0);
    let alerts = api.admin(Method::GET, "/alerts?since=24h", None).await;
    assert_eq!(alerts.json["alerts"], json!([]));
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_returns_the_first_answer_and_makes_nothing_new() {
    let api = api().await;
    let post = |key: &str, body: Value, token: &str| {
        Request::builder()
            .method(Method::POST)
            .uri(format!("{PREFIX}/customers"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let body = json!({"name": "Once", "email": "once@example.com"});
    let first = api.send(post("signup-7", body.clone(), &api.admin)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.headers.contains_key("idempotent-replayed"));
    let retry = api.send(post("signup-7", body.clone(), &api.admin)).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.json, first.json, "the same customer, key and token");
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let customers = api.admin(Method::GET, "/customers", None).await;
    assert_eq!(
        customers.json["customers"].as_array().unwrap().len(),
        1,
        "one customer"
    );
    // The key with another body: refused, nothing made.
    let other = api
        .send(post(
            "signup-7",
            json!({"name": "Twice", "email": "t@example.com"}),
            &api.admin,
        ))
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&other), "idempotency_key_reused");
    // A key of the wrong shape.
    let bad = api.send(post(" ", body.clone(), &api.admin)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json["error"]["field"], "Idempotency-Key");
    // Keys are per credential: another admin credential's same key is its own request.
    let second_admin = create_admin_credential(
        api.store.as_ref(),
        &Actor::operator("alice"),
        "billing",
        AdminRole::Admin,
    )
    .await
    .unwrap();
    let theirs = api
        .send(post("signup-7", body, second_admin.token.expose()))
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.json["customer_id"], first.json["customer_id"]);
    // Rotation too: a retried rotation issues one key.
    let id = first.json["customer_id"].as_str().unwrap();
    let rotate = || {
        Request::builder()
            .method(Method::POST)
            .uri(format!("{PREFIX}/customers/{id}/keys"))
            .header("authorization", format!("Bearer {}", api.admin))
            .header("idempotency-key", "rotate-1")
            .body(Body::empty())
            .unwrap()
    };
    let rotated = api.send(rotate()).await;
    let again = api.send(rotate()).await;
    assert_eq!(rotated.json, again.json);
    let keys = api
        .admin(Method::GET, &format!("/customers/{id}/keys"), None)
        .await;
    assert_eq!(
        keys.json["keys"].as_array().unwrap().len(),
        2,
        "the first key and one new"
    );
    // The stored answer holds the token sealed, never in the clear.
    let token = first.json["token"].as_str().unwrap();
    let lookup = control::idempotency::lookup("ops", "signup-7");
    let claim = store::IdempotencyKeys::claim(api.store.as_ref(), &lookup, "", chrono::Utc::now())
        .await
        .unwrap();
    let store::idempotency::Claim::Existing(record) = claim else {
        panic!("the key's record is stored under its lookup");
    };
    let (status, sealed) = record.answer.unwrap();
    assert_eq!(status, 201);
    assert!(
        !sealed
            .windows(token.len())
            .any(|window| window == token.as_bytes())
    );
}

#[tokio::test]
async fn browsers_on_other_origins_get_no_cors_permission() {
    let api = api().await;
    let preflight = api
        .send(
            Request::builder()
                .method(Method::OPTIONS)
                .uri(format!("{PREFIX}/customers"))
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "POST")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(!preflight.status.is_success(), "{}", preflight.status);
    assert!(
        !preflight
            .headers
            .contains_key("access-control-allow-origin")
    );
    let read = api
        .send(
            Request::builder()
                .uri(format!("{PREFIX}/customers"))
                .header("origin", "https://evil.example")
                .header("authorization", format!("Bearer {}", api.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(!read.headers.contains_key("access-control-allow-origin"));
    // A form post, what a cross-site page can send without a preflight, is refused unread.
    let form = api
        .send(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{PREFIX}/customers"))
                .header("origin", "https://evil.example")
                .header("authorization", format!("Bearer {}", api.admin))
                .header("content-type", "text/plain")
                .body(Body::from(r#"{"name":"X","email":"x@example.com"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        form.status,
        StatusCode::FORBIDDEN,
        "another site's change, refused first"
    );
    assert_eq!(error_code(&form), "forbidden");
    // Without Origin (a client that is not a browser), the same body is refused for its type.
    let typed = api
        .send(
            Request::builder()
                .method(Method::POST)
                .uri(format!("{PREFIX}/customers"))
                .header("authorization", format!("Bearer {}", api.admin))
                .header("content-type", "text/plain")
                .body(Body::from(r#"{"name":"X","email":"x@example.com"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(typed.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn margins_need_bedrocks_prices_and_then_show_revenue_cost_and_margin() {
    let api = api().await;
    let without = api.admin(Method::GET, "/margins", None).await;
    assert_eq!(without.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&without), "not_configured");

    let priced = common::priced(&api);
    let customer = priced.create("Margined").await;
    let id = customer["customer_id"].as_str().unwrap().to_owned();
    // 3 calls of 500,000 input and 100,000 output tokens: 1,500,000 × $2 = $3.00 and
    // 300,000 × $10 = $3.00, $6.00 of cost; at $0.01 a call the plan earns $0.03.
    let today = chrono::Utc::now().date_naive();
    common::calls(&priced, &id, 3).await;
    let month = common::cent_plan(&priced, &id).await;
    let margins = priced
        .admin(Method::GET, &format!("/margins?customer_id={id}"), None)
        .await;
    assert_eq!(margins.status, StatusCode::OK, "{}", margins.json);
    let row = &margins.json["margins"][0];
    assert_eq!(row["month"], month);
    assert_eq!(row["revenue"], "0.03");
    assert_eq!(row["cost_of_goods"]["total"], "6.00");
    assert_eq!(row["cost_of_goods"]["gross_margin"], "-5.97");
    let costs = priced
        .admin(Method::GET, &format!("/customers/{id}/costs"), None)
        .await;
    assert_eq!(costs.status, StatusCode::OK, "{}", costs.json);
    assert_eq!(costs.json["days"][0]["day"], today.to_string());
    assert_eq!(costs.json["days"][0]["cost"]["total"], "6.00");
    assert_eq!(
        costs.json["days"][0]["cost"]["by_model"][0]["input_tokens"],
        1_500_000
    );
    let not_configured = api
        .admin(Method::GET, &format!("/customers/{id}/costs"), None)
        .await;
    assert_eq!(not_configured.status, StatusCode::CONFLICT);
    // The invoice from the API carries the same cost, for the operator.
    let invoice = priced
        .admin(
            Method::GET,
            &format!("/customers/{id}/invoices/{month}"),
            None,
        )
        .await;
    assert_eq!(invoice.json["cost_of_goods"]["total"], "6.00");
}

#[tokio::test]
async fn the_quarantine_is_listed_to_viewers_and_requeued_by_admins() {
    let base = api().await;
    let ports = common::ports(&base.store);
    let api = common::Api {
        router: admin::router(admin::AdminState {
            ports: ports.clone(),
            configured: None,
            model_prices: None,
            seller: None,
        }),
        ..base
    };
    let entry = store::LogEntry {
        partition: "0".into(),
        position: "00000000000000000042".into(),
        partition_key: "proxy-7".into(),
        data: b"TGUF\x09 a frame from a newer proxy".to_vec().into(),
    };
    metering::quarantine::quarantine_record(&ports.objects, &entry, "frame version 9 is unknown")
        .await
        .unwrap();

    let listed = api
        .call(Some(&api.viewer), Method::GET, "/quarantine", None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.json);
    let items = listed.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["position"], "00000000000000000042");
    assert_eq!(items[0]["line"], Value::Null);
    assert_eq!(items[0]["reason"], "frame version 9 is unknown");

    let refused = api
        .call(Some(&api.viewer), Method::POST, "/quarantine/requeue", None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let requeued = api.admin(Method::POST, "/quarantine/requeue", None).await;
    assert_eq!(requeued.status, StatusCode::OK, "{}", requeued.json);
    assert_eq!(requeued.json, json!({ "requeued": 1, "refused": 0 }));
    let after = api.admin(Method::GET, "/quarantine", None).await;
    assert_eq!(after.json["items"], json!([]));
    let partition = ports.event_reader.partitions().await.unwrap().remove(0).id;
    let log = ports.event_reader.read(&partition, None, 10).await.unwrap();
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].data, entry.data);
}
