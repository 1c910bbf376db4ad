//! The `ModelRuntime` on Amazon Bedrock: the client's request forwarded byte for byte,
//! SigV4-signed with credentials from the standard AWS chain (`aws-config`, `aws-sigv4`),
//! and the answer passed back as it arrives, event-stream framing included.
//!
//! Forwarding the raw body, instead of rebuilding it through the SDK's typed operations,
//! keeps every field of every model's body and of Converse intact, and lets streams pass
//! through without being decoded and re-encoded. No retries: the proxy passes Bedrock's
//! throttling and errors back, and a retry after a stream started could bill twice.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures::StreamExt;

use crate::model_runtime::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse,
    encode_path_segment, is_streaming, operation_path,
};

/// Where and how to reach Bedrock.
#[derive(Debug, Clone, Default)]
pub struct BedrockSettings {
    /// AWS region; `None` uses the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint override, for example a VPC endpoint or a test server.
    pub endpoint_url: Option<String>,
    /// Longest wait for a whole non-streamed answer, or for a stream's response headers.
    pub timeout: Duration,
    /// Longest wait to connect.
    pub connect_timeout: Duration,
    /// Longest silence between two reads of a streamed answer.
    pub read_timeout: Duration,
}

/// The Bedrock runtime forwarder, built once.
#[derive(Debug, Clone)]
pub struct BedrockRuntime {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: SharedCredentialsProvider,
    timeout: Duration,
}

/// Why the Bedrock runtime could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BedrockSetupError {
    #[error(
        "no AWS region for Bedrock; set --bedrock-region, TOLLGATE_BEDROCK_REGION or AWS_REGION"
    )]
    NoRegion,
    #[error("no AWS credentials provider is available for Bedrock")]
    NoCredentials,
    #[error("cannot build the HTTP client for Bedrock: {0}")]
    Client(String),
}

impl BedrockRuntime {
    /// Loads AWS configuration from the standard chain and builds the HTTP client.
    pub async fn connect(settings: &BedrockSettings) -> Result<Self, BedrockSetupError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let region = shared
            .region()
            .map(|region| region.as_ref().to_owned())
            .ok_or(BedrockSetupError::NoRegion)?;
        let credentials = shared
            .credentials_provider()
            .ok_or(BedrockSetupError::NoCredentials)?;
        let endpoint = settings
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"))
            .trim_end_matches('/')
            .to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(nonzero(settings.connect_timeout, Duration::from_secs(5)))
            .read_timeout(nonzero(settings.read_timeout, Duration::from_secs(300)))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|error| BedrockSetupError::Client(error.to_string()))?;
        Ok(Self {
            http,
            endpoint,
            region,
            credentials,
            timeout: nonzero(settings.timeout, Duration::from_secs(300)),
        })
    }

    fn signed_headers(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        identity: &Identity,
    ) -> Result<Vec<(String, String)>, RuntimeError> {
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name("bedrock")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| RuntimeError::Failed(format!("cannot sign the request: {error}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|error| RuntimeError::Failed(format!("cannot sign the request: {error}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| RuntimeError::Failed(format!("cannot sign the request: {error}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}

fn nonzero(value: Duration, default: Duration) -> Duration {
    if value.is_zero() { default } else { value }
}

fn transport_error(error: &reqwest::Error, timeout: Duration) -> RuntimeError {
    if error.is_timeout() {
        RuntimeError::Timeout(timeout)
    } else if error.is_connect() {
        RuntimeError::Unreachable(error.to_string())
    } else {
        RuntimeError::Failed(error.to_string())
    }
}

#[async_trait]
impl ModelRuntime for BedrockRuntime {
    async fn send(&self, invocation: ModelInvocation) -> Result<UpstreamResponse, RuntimeError> {
        let url = format!(
            "{}/model/{}/{}",
            self.endpoint,
            encode_path_segment(&invocation.model_id),
            operation_path(invocation.operation)
        );
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|parsed| {
                parsed.host_str().map(|host| match parsed.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            })
            .ok_or_else(|| {
                RuntimeError::Failed(format!("invalid Bedrock endpoint {}", self.endpoint))
            })?;
        let mut headers = invocation.headers.clone();
        headers.push(("host".to_owned(), host));
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|error| RuntimeError::Credentials(error.to_string()))?;
        let identity: Identity = credentials.into();
        let signature_headers = self.signed_headers(&url, &headers, &invocation.body, &identity)?;

        let mut request = self.http.post(&url);
        for (name, value) in headers.iter().chain(&signature_headers) {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let started = Instant::now();
        let response =
            tokio::time::timeout(self.timeout, request.body(invocation.body.clone()).send())
                .await
                .map_err(|_| RuntimeError::Timeout(self.timeout))?
                .map_err(|error| transport_error(&error, self.timeout))?;
        let upstream_latency = started.elapsed();
        let status = response.status().as_u16();
        let response_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let timeout = self.timeout;
        let body = if status == 200 && is_streaming(invocation.operation) {
            UpstreamBody::Stream(
                response
                    .bytes_stream()
                    .map(move |chunk| chunk.map_err(|error| transport_error(&error, timeout)))
                    .boxed(),
            )
        } else {
            let remaining = self.timeout.saturating_sub(upstream_latency);
            UpstreamBody::Complete(
                tokio::time::timeout(remaining, response.bytes())
                    .await
                    .map_err(|_| RuntimeError::Timeout(self.timeout))?
                    .map_err(|error| transport_error(&error, self.timeout))?,
            )
        };
        Ok(UpstreamResponse {
            status,
            headers: response_headers,
            body,
            upstream_latency,
        })
    }
}
