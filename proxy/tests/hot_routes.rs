//! The hot routes answer exactly as the router does: the same requests sent through the
//! proxy's service with the hot routes and through the router alone get the same status,
//! headers (but the request id) and body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::BodyExt;
use proxy::config::ProxyConfig;
use proxy::header_cap::with_header_cap;
use proxy::hot_routes::{HotRoute, Routes, hot_route};
use proxy::server::{ProxyPorts, build_state};
use proxy::upstream::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse, header_map,
};
use schemas::Operation;
use store::memory::MemoryStore;
use tower::ServiceExt;

/// Answers with what reached it: the operation, the model id and the body.
struct EchoRuntime;

#[async_trait]
impl ModelRuntime for EchoRuntime {
    async fn send(&self, invocation: ModelInvocation) -> Result<UpstreamResponse, RuntimeError> {
        let answer = serde_json::json!({
            "operation": format!("{:?}", invocation.operation),
            "model": invocation.model_id,
            "body": String::from_utf8_lossy(&invocation.body),
            "usage": {"input_tokens": 3, "output_tokens": 4},
        });
        Ok(UpstreamResponse {
            status: 200,
            headers: header_map([
                ("content-type", "application/json".to_owned()),
                ("x-amzn-requestid", "echo".to_owned()),
            ]),
            body: UpstreamBody::Complete(Bytes::from(answer.to_string())),
            upstream_latency: Duration::ZERO,
        })
    }
}

/// What a client sees of an answer, but the request id (new on every call).
async fn seen(routes: Routes, request: Request<Body>) -> (u16, Vec<(String, String)>, String) {
    let response = routes.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "x-amzn-requestid")
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

struct Case {
    method: Method,
    path: &'static str,
    token: Option<&'static str>,
    big_header: bool,
    body: &'static str,
}

const INVOKE_BODY: &str =
    r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}"#;
const SPEC_BODY: &str = r#"{"modelId":"anthropic.claude-v2","prompt":"hi"}"#;

fn cases() -> Vec<Case> {
    let post = |path, body| Case {
        method: Method::POST,
        path,
        token: Some("valid"),
        big_header: false,
        body,
    };
    let mut cases = vec![
        post(
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            INVOKE_BODY,
        ),
        post("/prod/model/anthropic.claude-v2/invoke", INVOKE_BODY),
        post("/model/anthropic.claude-v2/converse", r#"{"messages":[]}"#),
        post(
            "/model/anthropic.claude-v2/invoke-with-response-stream",
            INVOKE_BODY,
        ),
        post(
            "/prod/model/anthropic.claude-v2/converse-stream",
            r#"{"messages":[]}"#,
        ),
        post(
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-v2/invoke",
            INVOKE_BODY,
        ),
        post("/prod/bedrock", SPEC_BODY),
        post("/bedrock", SPEC_BODY),
        post("/prod/bedrock", "{not json"),
        post("/prod/bedrock", r#"{"prompt":"no model"}"#),
        post("/model/..%2F..%2Fadmin/invoke", INVOKE_BODY),
        post("/model/%FF/invoke", INVOKE_BODY),
        post("/model//invoke", INVOKE_BODY),
        post("/model/m/invoke/", INVOKE_BODY),
        post("/model/m/frobnicate", INVOKE_BODY),
        post("/prodx/bedrock", SPEC_BODY),
        post("/prod/prod/bedrock", SPEC_BODY),
        post("/model/anthropic.claude-v2/invoke?x=1", INVOKE_BODY),
    ];
    cases.push(Case {
        method: Method::GET,
        path: "/model/anthropic.claude-v2/invoke",
        token: Some("valid"),
        big_header: false,
        body: "",
    });
    for token in [None, Some("tg_wrong"), Some("a-supplied-token-nobody-has")] {
        cases.push(Case {
            token,
            ..post("/model/anthropic.claude-v2/invoke", INVOKE_BODY)
        });
        cases.push(Case {
            token,
            ..post("/prod/bedrock", SPEC_BODY)
        });
    }
    cases.push(Case {
        big_header: true,
        ..post("/model/anthropic.claude-v2/invoke", INVOKE_BODY)
    });
    cases.push(Case {
        big_header: true,
        token: None,
        ..post("/prod/bedrock", SPEC_BODY)
    });
    cases
}

fn request(case: &Case, token: &str) -> Request<Body> {
    let mut builder = Request::builder()
        .method(case.method.clone())
        .uri(case.path)
        .header("content-type", "application/json");
    match case.token {
        Some("valid") => builder = builder.header("authorization", format!("Bearer {token}")),
        Some(other) => builder = builder.header("authorization", format!("Bearer {other}")),
        None => {}
    }
    if case.big_header {
        builder = builder.header("x-big", "a".repeat(20 * 1024));
    }
    builder.body(Body::from(case.body)).unwrap()
}

#[tokio::test]
async fn the_hot_routes_answer_as_the_router_does() {
    let store = Arc::new(MemoryStore::new());
    let token = common::customer_with_token(&store, "hot", 5).await;
    let ports = ProxyPorts {
        registry: store.clone(),
        counters: store.clone(),
        quotas: store.clone(),
        event_appender: store.clone(),
        runtime: Arc::new(EchoRuntime),
    };
    let config = ProxyConfig::default();
    let max_header_bytes = config.max_header_bytes;
    let (state, emitter) = build_state(config, ports).unwrap();
    let router = with_header_cap(proxy::build_router(state.clone()), max_header_bytes);
    let hot = Routes::new(router.clone(), state);
    let plain = Routes::router_only(router);

    let mut statuses = Vec::new();
    for case in cases() {
        let through_hot = seen(hot.clone(), request(&case, &token)).await;
        let through_router = seen(plain.clone(), request(&case, &token)).await;
        assert_eq!(
            through_hot, through_router,
            "{} {} answered differently",
            case.method, case.path
        );
        statuses.push((case.path, through_hot.0));
    }
    // The cases cover answers and refusals alike.
    let codes: std::collections::BTreeSet<u16> = statuses.iter().map(|(_, code)| *code).collect();
    for expected in [200, 400, 401, 404, 431] {
        assert!(
            codes.contains(&expected),
            "no case answered {expected}: {statuses:?}"
        );
    }
    drop((hot, plain));
    emitter.finish(Duration::from_secs(5)).await;
}

#[test]
fn hot_routes_are_the_bedrock_operations_and_the_spec_endpoint() {
    let bedrock = |operation, model_id: &str| {
        Some(HotRoute::Bedrock {
            operation,
            model_id: model_id.to_owned(),
        })
    };
    let table = [
        ("/bedrock", Some(HotRoute::Spec)),
        ("/prod/bedrock", Some(HotRoute::Spec)),
        ("/model/m/invoke", bedrock(Operation::Invoke, "m")),
        (
            "/prod/model/a%3Ab/invoke-with-response-stream",
            bedrock(Operation::InvokeStream, "a:b"),
        ),
        ("/model/x%2Fy/converse", bedrock(Operation::Converse, "x/y")),
        (
            "/model/m/converse-stream",
            bedrock(Operation::ConverseStream, "m"),
        ),
        ("/model/m/count-tokens", None),
        ("/model/m/invoke/", None),
        ("/model//invoke", None),
        ("/model/%FF/invoke", None),
        ("/prod/prod/bedrock", None),
        ("/prodx/bedrock", None),
        ("/usage", None),
        ("/v1/chat/completions", None),
    ];
    for (path, expected) in table {
        assert_eq!(hot_route(&Method::POST, path), expected, "{path}");
    }
    assert_eq!(hot_route(&Method::GET, "/bedrock"), None);
}
