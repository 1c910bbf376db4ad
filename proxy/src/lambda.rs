//! The proxy Lambda (`tollgate-proxy-lambda`): the same axum router as the server, behind API Gateway (REST stage
//! `prod`) through `lambda_http`, with Lambda response streaming: API Gateway invokes it with
//! `InvokeWithResponseStream` (the integration's `ResponseTransferMode: STREAM`), so a
//! Bedrock stream reaches the client as it is produced, and answers are not capped at
//! 10 MB or 29 s. Each response ends only after its usage event is durable in Kinesis
//! (and a strict reservation's settlement is written), since Lambda may freeze the
//! process right after.
//! Configuration comes from the same `TOLLGATE_*` environment variables as every binary.

//! The binary parses [`LambdaArguments`] and calls [`run_lambda`].

use clap::Parser;
use lambda_http::request::RequestContext;

use crate::admission::AdmissionSettings;
use crate::config::ProxyConfig;
use crate::header_cap::with_header_cap;
use crate::router::{build_router, path_without_stage};
use crate::server::{ProxyPorts, build_state};
use crate::settings::ProxyArgs;
use store::backend::{BackendArgs, Ports};

/// Configuration, read from the environment.
#[derive(Debug, Parser)]
#[command(name = "tollgate-proxy-lambda", version)]
pub struct LambdaArguments {
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    proxy: ProxyArgs,
}

/// Routes `/{stage}/…` as `/…` whatever the API Gateway stage is called (the router also
/// knows `/prod/…` for servers behind a `prod` path).
fn strip_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    let stage = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage else {
        return request;
    };
    let uri = request.uri();
    let Some(path) = path_without_stage(uri.path(), &stage) else {
        return request;
    };
    let rewritten = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    if let Ok(uri) = rewritten.parse() {
        *request.uri_mut() = uri;
    }
    request
}

/// Serves API Gateway's requests until the Lambda runtime stops the process, with
/// `extra_routes` (given the backend's ports) merged into the proxy's.
pub async fn run_lambda(
    arguments: LambdaArguments,
    extra_routes: impl FnOnce(&Ports) -> Option<axum::Router>,
) -> Result<(), lambda_http::Error> {
    let ports = arguments.backend.settings()?.open().await?;
    let extra = extra_routes(&ports);
    let base = arguments.proxy.proxy_config(None);
    let config = ProxyConfig {
        durable_events: true,
        tls: None,
        // Lambda answers only once each event is in the log; its disk does not outlive it.
        spool: None,
        // An instance can be frozen between calls and reaped without notice, so it holds no
        // quota lease: strict limits reserve each call in the store.
        admission: AdmissionSettings {
            strict_block_max: 1,
            ..base.admission
        },
        ..base
    };
    let proxy_ports = ProxyPorts::from_backend(&ports, arguments.proxy.model_runtime().await?);
    let max_header_bytes = config.max_header_bytes;
    let (state, _emitter) = build_state(config, proxy_ports)?;
    // The stage is removed before routing (an axum layer would run after it).
    let router = match extra {
        Some(extra) => build_router(state).merge(extra),
        None => build_router(state),
    };
    let router = with_header_cap(router, max_header_bytes);
    let service = tower::ServiceExt::map_request(router, strip_stage);
    lambda_http::run_with_streaming_response(service).await
}
