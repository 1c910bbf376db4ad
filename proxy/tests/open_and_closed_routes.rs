//! Which routes authenticate: every proxy route does, except `GET /health`; an unknown
//! route, a known path with another method, and an unknown Bedrock operation answer 404
//! without asking for a token. Refusals carry Tollgate's request id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use proxy::config::ProxyConfig;
use proxy::server::{ProxyPorts, build_state};
use store::memory::MemoryStore;
use tower::ServiceExt;

async fn answer(
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, String, bool) {
    let store = Arc::new(MemoryStore::new());
    let ports = ProxyPorts {
        registry: store.clone(),
        counters: store.clone(),
        quotas: store.clone(),
        event_appender: store,
        runtime: Arc::new(proxy::upstream::SimulatedRuntime),
    };
    let (state, _emitter) = build_state(ProxyConfig::default(), ports).unwrap();
    let mut request = Request::builder().method(method).uri(path);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = proxy::build_router(state)
        .oneshot(request.body(Body::from("{}")).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let has_request_id = response.headers().contains_key("x-amzn-requestid");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8_lossy(&body).into_owned(),
        has_request_id,
    )
}

#[tokio::test]
async fn health_is_open() {
    assert_eq!(
        answer("GET", "/health", None).await,
        (StatusCode::OK, r#"{"status":"ok"}"#.to_owned(), false)
    );
}

#[tokio::test]
async fn unknown_routes_answer_404_without_asking_for_a_token() {
    for (method, path, named) in [
        ("POST", "/nope", "POST /nope"),
        ("GET", "/bedrock", "GET /bedrock"),
        ("GET", "/prod/bedrock", "GET /prod/bedrock"),
        ("POST", "/health", "POST /health"),
        (
            "POST",
            "/model/m/not-an-operation",
            "POST /model/m/not-an-operation",
        ),
        (
            "POST",
            "/prod/model/m/not-an-operation",
            "POST /model/m/not-an-operation",
        ),
        ("GET", "/model/m/invoke", "GET /model/m/invoke"),
        ("POST", "/prod/nope", "POST /prod/nope"),
        ("GET", "/prod/model/m/invoke", "GET /prod/model/m/invoke"),
        (
            "PUT",
            "/prod/model/m/converse",
            "PUT /prod/model/m/converse",
        ),
        ("POST", "/prod/model/m", "POST /prod/model/m"),
        (
            "POST",
            "/model/m/invoke/extra",
            "POST /model/m/invoke/extra",
        ),
    ] {
        for authorization in [None, Some("Bearer nonsense")] {
            let (status, body, _) = answer(method, path, authorization).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert!(
                body.contains(&format!("no route for {named};")),
                "{method} {path}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn every_proxy_route_asks_for_a_token() {
    for path in [
        "/bedrock",
        "/prod/bedrock",
        "/model/m/invoke",
        "/model/m/invoke-with-response-stream",
        "/model/m/converse",
        "/model/m/converse-stream",
        "/prod/model/m/invoke",
        "/prod/model/m/converse-stream",
    ] {
        let (status, body, has_request_id) = answer("POST", path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(body.contains("missing bearer token"), "{path}: {body}");
        assert!(has_request_id, "{path}: a refusal carries the request id");
    }
}
