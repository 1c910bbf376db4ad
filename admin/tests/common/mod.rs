//! What the admin API's in-process tests share: the router on a memory store with an admin
//! and a viewer credential, and a client for it.
#![allow(dead_code)] // each test file uses its part
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use admin::{AdminState, PREFIX, router};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use control::Actor;
use control::admin_tokens::create_admin_credential;
use http_body_util::BodyExt;
use schemas::AdminRole;
use serde_json::{Value, json};
use store::backend::Ports;
use store::memory::MemoryStore;
use tower::ServiceExt;

pub struct Api {
    pub router: axum::Router,
    pub admin: String,
    pub viewer: String,
    pub store: Arc<MemoryStore>,
}

pub fn ports(store: &Arc<MemoryStore>) -> Ports {
    Ports::in_memory(store)
}

pub async fn api() -> Api {
    let store = Arc::new(MemoryStore::new());
    let operator = Actor::operator("alice");
    let admin = create_admin_credential(store.as_ref(), &operator, "ops", AdminRole::Admin)
        .await
        .unwrap();
    let viewer = create_admin_credential(store.as_ref(), &operator, "support", AdminRole::Viewer)
        .await
        .unwrap();
    Api {
        router: router(AdminState {
            ports: ports(&store),
            configured: None,
            model_prices: None,
            seller: None,
        }),
        admin: admin.token.expose().to_owned(),
        viewer: viewer.token.expose().to_owned(),
        store,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
}

impl Api {
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            json,
        }
    }

    pub async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{PREFIX}{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(Some(&self.admin.clone()), method, path, body)
            .await
    }

    pub async fn create(&self, name: &str) -> Value {
        let created = self
            .admin(
                Method::POST,
                "/customers",
                Some(json!({"name": name, "email": format!("{}@example.com", name.to_lowercase()), "daily_limit": 100})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
        created.json
    }
}

pub fn error_code(answer: &Answer) -> &str {
    answer.json["error"]["code"].as_str().unwrap_or("")
}

/// Bedrock's prices for `model-a`: $2 per million input, $10 per million output tokens.
pub const PRICES: &str = "schema_version = 1\ncurrency = \"USD\"\nas_of = \"2026-12-01\"\n\n[[prices]]\npattern = \"model-a\"\ninput_per_million = \"2.00\"\noutput_per_million = \"10.00\"\nsource = \"https://aws.amazon.com/bedrock/pricing/\"\n";

/// `api` with Bedrock's prices ([`PRICES`]) configured, on the same store.
pub fn priced(api: &Api) -> Api {
    let table = schemas::model_prices::ModelPriceTable::from_toml(PRICES).unwrap();
    Api {
        router: router(AdminState {
            ports: ports(&api.store),
            configured: None,
            model_prices: Some(Arc::new(table)),
            seller: None,
        }),
        admin: api.admin.clone(),
        viewer: api.viewer.clone(),
        store: api.store.clone(),
    }
}

/// `count` successful calls of `model-a` today, 500,000 input and 100,000 output tokens
/// each, as the consumer counts them.
pub async fn calls(api: &Api, customer_id: &str, count: u64) {
    let today = chrono::Utc::now().date_naive();
    let events: Vec<store::SourcedEvent> = (0..count)
        .map(|index| {
            store::contract::sourced_at(
                "0",
                index + 1,
                store::contract::event_on(
                    customer_id,
                    today,
                    "model-a",
                    schemas::Outcome::Success,
                    500_000,
                    100_000,
                ),
            )
        })
        .collect();
    store::Counters::apply(api.store.as_ref(), &events)
        .await
        .unwrap();
}

/// Stores plan `cent` ($0.01 a call) and prices the customer with it from this month on;
/// returns the month (`YYYY-MM`).
pub async fn cent_plan(api: &Api, customer_id: &str) -> String {
    let plan = "schema_version = 1\nid = \"cent\"\nversion = 1\nname = \"Cent\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"0.01\"\n";
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
    assert_eq!(added.status, StatusCode::CREATED);
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let assigned = api
        .admin(
            Method::PUT,
            &format!("/customers/{customer_id}/plan"),
            Some(json!({"plan_id": "cent", "effective_from": format!("{month}-01")})),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.json);
    month
}
