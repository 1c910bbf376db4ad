//! The `ModelRuntime` on Amazon Bedrock, through `aws-sdk-bedrockruntime` InvokeModel.
//!
//! Credentials come from the standard AWS chain; region and endpoint are configurable (the
//! endpoint override is how tests point it at the fake Bedrock). SDK retries are off: the
//! proxy passes Bedrock's throttling and errors straight back, and clients retry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::SdkError;
use aws_sdk_bedrockruntime::operation::RequestId;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use schemas::bedrock_usage::{
    INPUT_TOKEN_HEADER, OUTPUT_TOKEN_HEADER, TokenUsage, usage_from_body, usage_from_headers,
};

use crate::model_runtime::{ModelAnswer, ModelInvocation, ModelRuntime, RuntimeError};

/// Where and how to reach Bedrock.
#[derive(Debug, Clone, Default)]
pub struct BedrockSettings {
    /// AWS region; `None` uses the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint override, for example a VPC endpoint or a test server.
    pub endpoint_url: Option<String>,
    /// Longest wait for a whole answer.
    pub timeout: Duration,
}

/// Bedrock runtime client, built once.
#[derive(Debug, Clone)]
pub struct BedrockRuntime {
    client: Client,
    timeout: Duration,
}

impl BedrockRuntime {
    /// Loads AWS configuration from the standard chain and builds the client.
    pub async fn connect(settings: &BedrockSettings) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(settings.timeout)
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint_url) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint_url);
        }
        let shared_config = loader.load().await;
        Self {
            client: Client::new(&shared_config),
            timeout: settings.timeout,
        }
    }
}

/// Captures Bedrock's token-count headers from the raw response of one call.
#[derive(Debug, Clone, Default)]
struct TokenHeaderCapture {
    captured: Arc<Mutex<Option<TokenUsage>>>,
}

impl TokenHeaderCapture {
    fn take(&self) -> Option<TokenUsage> {
        self.captured.lock().ok().and_then(|mut slot| slot.take())
    }
}

impl Intercept for TokenHeaderCapture {
    fn name(&self) -> &'static str {
        "TokenHeaderCapture"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.response().headers();
        let usage = usage_from_headers(
            headers.get(INPUT_TOKEN_HEADER),
            headers.get(OUTPUT_TOKEN_HEADER),
        );
        if let Ok(mut slot) = self.captured.lock() {
            *slot = usage;
        }
        Ok(())
    }
}

#[async_trait]
impl ModelRuntime for BedrockRuntime {
    async fn invoke(&self, invocation: ModelInvocation) -> Result<ModelAnswer, RuntimeError> {
        let capture = TokenHeaderCapture::default();
        let started = Instant::now();
        let result = self
            .client
            .invoke_model()
            .model_id(&invocation.model_id)
            .content_type(&invocation.content_type)
            .accept(&invocation.accept)
            .body(Blob::new(invocation.body.to_vec()))
            .customize()
            .interceptor(capture.clone())
            .send()
            .await;
        let upstream_latency = started.elapsed();
        match result {
            Ok(output) => {
                let upstream_request_id = output.request_id().map(str::to_owned);
                let body = Bytes::from(output.body.into_inner());
                let usage = capture.take().or_else(|| usage_from_body(&body));
                Ok(ModelAnswer {
                    status: 200,
                    content_type: output.content_type,
                    body,
                    upstream_request_id,
                    error_type: None,
                    usage,
                    upstream_latency,
                })
            }
            Err(SdkError::ServiceError(context)) => {
                let raw = context.raw();
                let headers = raw.headers();
                let body = Bytes::copy_from_slice(raw.body().bytes().unwrap_or_default());
                Ok(ModelAnswer {
                    status: raw.status().as_u16(),
                    content_type: headers
                        .get("content-type")
                        .unwrap_or("application/json")
                        .to_owned(),
                    upstream_request_id: headers.get("x-amzn-requestid").map(str::to_owned),
                    error_type: headers
                        .get("x-amzn-errortype")
                        .map(|value| value.split(':').next().unwrap_or(value).to_owned()),
                    usage: None,
                    body,
                    upstream_latency,
                })
            }
            Err(SdkError::TimeoutError(_)) => Err(RuntimeError::Timeout(self.timeout)),
            Err(SdkError::DispatchFailure(failure)) => Err(RuntimeError::Unreachable(format!(
                "{:?}",
                failure.as_connector_error()
            ))),
            Err(other) => Err(RuntimeError::Failed(
                aws_smithy_types::error::display::DisplayErrorContext(&other).to_string(),
            )),
        }
    }
}
