//! The `ModelRuntime` on Amazon Bedrock: the client's request forwarded byte for byte,
//! SigV4-signed with credentials from the standard AWS chain (`aws-config`, `aws-sigv4`),
//! and the answer passed back as it arrives, event-stream framing included.
//!
//! Forwarding the raw body, instead of rebuilding it through the SDK's typed operations,
//! keeps every field of every model's body and of Converse intact, and lets streams pass
//! through without being decoded and re-encoded. No retries: the proxy passes Bedrock's
//! throttling and errors back, and a retry after a stream started could bill twice.
//!
//! Credentials are cached here: the chain that `aws-config` hands out is not (the SDK's
//! clients cache through their identity cache, which this signer does not use), and on EC2
//! or ECS every call would otherwise fetch them from the instance or container endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use futures::StreamExt;

use super::model_runtime::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse,
    encode_path_segment, is_streaming, operation_path,
};
use super::sigv4::{RequestSigner, SigningCredentials};

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
    /// The endpoint's `host[:port]`, as the `host` header carries it and SigV4 signs it.
    host: String,
    signer: Arc<RequestSigner>,
    credentials: Arc<CachedCredentials>,
    timeout: Duration,
}

/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Credentials without an expiry (static keys, a profile) are read again this often.
const REFRESH_WITHOUT_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// How long credentials read at `now` may be used before they are read again: until
/// [`REFRESH_BEFORE_EXPIRY`] before their expiry, or half their remaining life when they
/// are closer to it than that.
pub fn credentials_refresh_after(expiry: Option<SystemTime>, now: SystemTime) -> Duration {
    match expiry {
        None => REFRESH_WITHOUT_EXPIRY,
        Some(expiry) => {
            let remaining = expiry.duration_since(now).unwrap_or(Duration::ZERO);
            match remaining.checked_sub(REFRESH_BEFORE_EXPIRY) {
                Some(early) if !early.is_zero() => early,
                _ => remaining / 2,
            }
        }
    }
}

/// A credentials provider with the last credentials it gave, reused until they are due
/// for refresh. When a refresh fails and the old credentials have not expired, they are
/// used and the refresh is tried again on the next call.
#[derive(Debug)]
pub struct CachedCredentials {
    provider: SharedCredentialsProvider,
    current: tokio::sync::RwLock<Option<(Credentials, Instant)>>,
}

impl CachedCredentials {
    /// Wraps a provider.
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            current: tokio::sync::RwLock::new(None),
        }
    }

    /// The credentials to sign with now.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        if let Some((credentials, refresh_at)) = self.current.read().await.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(credentials.clone());
        }
        let mut current = self.current.write().await;
        // Another call may have refreshed while this one waited for the lock.
        if let Some((credentials, refresh_at)) = current.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(credentials.clone());
        }
        match self.provider.provide_credentials().await {
            Ok(fresh) => {
                let refresh_at =
                    Instant::now() + credentials_refresh_after(fresh.expiry(), SystemTime::now());
                *current = Some((fresh.clone(), refresh_at));
                Ok(fresh)
            }
            Err(error) => match current.as_ref() {
                Some((old, _)) if old.expiry().is_none_or(|expiry| SystemTime::now() < expiry) => {
                    tracing::warn!(error = %error, "cannot refresh AWS credentials for Bedrock; using the current ones until they expire");
                    Ok(old.clone())
                }
                _ => Err(error),
            },
        }
    }
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
    #[error(
        "invalid Bedrock endpoint {0}: give a URL such as https://bedrock-runtime.us-east-1.amazonaws.com"
    )]
    Endpoint(String),
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
        let host = endpoint_host(&endpoint)
            .ok_or_else(|| BedrockSetupError::Endpoint(endpoint.clone()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(nonzero(settings.connect_timeout, Duration::from_secs(5)))
            .read_timeout(nonzero(settings.read_timeout, Duration::from_secs(300)))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|error| BedrockSetupError::Client(error.to_string()))?;
        Ok(Self {
            http,
            endpoint,
            host,
            signer: Arc::new(RequestSigner::new(region, "bedrock")),
            credentials: Arc::new(CachedCredentials::new(credentials)),
            timeout: nonzero(settings.timeout, Duration::from_secs(300)),
        })
    }
}

/// `host[:port]` of an endpoint URL (the port only when the URL gives one).
fn endpoint_host(endpoint: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(endpoint).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
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
        let path = format!(
            "/model/{}/{}",
            encode_path_segment(&invocation.model_id),
            operation_path(invocation.operation)
        );
        let credentials = self
            .credentials
            .get()
            .await
            .map_err(|error| RuntimeError::Credentials(error.to_string()))?;
        let signature = self.signer.sign(
            &SigningCredentials {
                access_key_id: credentials.access_key_id(),
                secret_access_key: credentials.secret_access_key(),
                session_token: credentials.session_token(),
            },
            SystemTime::now(),
            &self.host,
            &path,
            &invocation.headers,
            &invocation.body,
        );

        let mut request = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .header("authorization", signature.authorization)
            .header("x-amz-date", signature.amz_date);
        if let Some(token) = signature.security_token {
            request = request.header("x-amz-security-token", token);
        }
        for (name, value) in &invocation.headers {
            request = request.header(name, value);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct CountingProvider {
        calls: Arc<AtomicUsize>,
        expiry: Option<SystemTime>,
        fail_after: usize,
    }

    impl ProvideCredentials for CountingProvider {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let result = if call >= self.fail_after {
                Err(CredentialsError::provider_error("endpoint down"))
            } else {
                Ok(Credentials::new(
                    format!("AKID{call}"),
                    "secret",
                    None,
                    self.expiry,
                    "test",
                ))
            };
            aws_credential_types::provider::future::ProvideCredentials::ready(result)
        }
    }

    fn cache(
        expiry: Option<SystemTime>,
        fail_after: usize,
    ) -> (CachedCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = CountingProvider {
            calls: Arc::clone(&calls),
            expiry,
            fail_after,
        };
        (
            CachedCredentials::new(SharedCredentialsProvider::new(provider)),
            calls,
        )
    }

    #[test]
    fn credentials_are_refreshed_five_minutes_before_expiry_or_at_half_life() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(credentials_refresh_after(None, now), REFRESH_WITHOUT_EXPIRY);
        assert_eq!(
            credentials_refresh_after(Some(now + Duration::from_secs(3600)), now),
            Duration::from_secs(3300)
        );
        assert_eq!(
            credentials_refresh_after(Some(now + Duration::from_secs(120)), now),
            Duration::from_secs(60)
        );
        assert_eq!(
            credentials_refresh_after(Some(now - Duration::from_secs(1)), now),
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn the_provider_is_asked_once_while_the_credentials_are_fresh() {
        let (cached, calls) = cache(Some(SystemTime::now() + Duration::from_secs(3600)), 10);
        for _ in 0..100 {
            assert_eq!(cached.get().await.unwrap().access_key_id(), "AKID0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_near_expiry_are_read_again_and_kept_when_the_refresh_fails() {
        // Ten seconds left: refreshed at half life, so the second call is within it.
        let (cached, calls) = cache(Some(SystemTime::now() + Duration::from_secs(10)), 1);
        assert_eq!(cached.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(cached.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Already expired credentials are never reused: a failed refresh is an error.
        let (expired, calls) = cache(Some(SystemTime::now() - Duration::from_secs(1)), 1);
        assert!(expired.get().await.is_ok());
        assert!(expired.get().await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Due for refresh but still valid: the refresh fails, the old ones are used.
        let (stale, calls) = cache(Some(SystemTime::now() + Duration::from_secs(2)), 1);
        assert_eq!(stale.get().await.unwrap().access_key_id(), "AKID0");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(stale.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
