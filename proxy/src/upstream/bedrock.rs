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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http::{HeaderName, HeaderValue};

use super::https::{PerThreadClient, body_stream, read_body};
use super::model_runtime::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse, is_streaming,
    operation_path, push_percent_encoded,
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
    /// A PEM file of certificate authorities to trust for the endpoint instead of the
    /// public roots (a private CA, or an egress proxy that inspects TLS).
    pub ca_bundle: Option<PathBuf>,
}

/// The Bedrock runtime forwarder, built once.
#[derive(Debug, Clone)]
pub struct BedrockRuntime {
    http: PerThreadClient,
    /// The endpoint's scheme and `host[:port]`, as parsed once: `https://host`.
    origin: String,
    /// The endpoint's path before `/model/…`; empty for a plain endpoint.
    base_path: String,
    /// The endpoint's `host[:port]`, as the `host` header carries it and SigV4 signs it.
    host: String,
    signer: Arc<RequestSigner>,
    credentials: Arc<CachedCredentials>,
    timeout: Duration,
    read_timeout: Duration,
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
    /// Shared, so a call takes them without copying their strings and properties.
    current: tokio::sync::RwLock<Option<(Arc<Credentials>, Instant)>>,
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
    pub async fn get(&self) -> Result<Arc<Credentials>, CredentialsError> {
        if let Some((credentials, refresh_at)) = self.current.read().await.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(Arc::clone(credentials));
        }
        let mut current = self.current.write().await;
        // Another call may have refreshed while this one waited for the lock.
        if let Some((credentials, refresh_at)) = current.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(Arc::clone(credentials));
        }
        match self.provider.provide_credentials().await {
            Ok(fresh) => {
                let refresh_at =
                    Instant::now() + credentials_refresh_after(fresh.expiry(), SystemTime::now());
                let fresh = Arc::new(fresh);
                *current = Some((Arc::clone(&fresh), refresh_at));
                Ok(fresh)
            }
            Err(error) => match current.as_ref() {
                Some((old, _)) if old.expiry().is_none_or(|expiry| SystemTime::now() < expiry) => {
                    tracing::warn!(error = %error, "cannot refresh AWS credentials for Bedrock; using the current ones until they expire");
                    Ok(Arc::clone(old))
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
    #[error(transparent)]
    CaBundle(#[from] crate::tls::CaBundleError),
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
        Self::new(settings, region, credentials)
    }

    /// The runtime for `region`, signing with `credentials` (cached here).
    pub fn new(
        settings: &BedrockSettings,
        region: String,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, BedrockSetupError> {
        let endpoint = settings
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
        let parts = EndpointParts::parse(&endpoint)
            .ok_or_else(|| BedrockSetupError::Endpoint(endpoint.clone()))?;
        let roots = match &settings.ca_bundle {
            Some(path) => crate::tls::load_ca_bundle(path)?,
            None => PerThreadClient::public_roots(),
        };
        let http = PerThreadClient::with_roots(
            roots,
            nonzero(settings.connect_timeout, Duration::from_secs(5)),
            Duration::from_secs(50),
        )
        .map_err(|error| BedrockSetupError::Client(error.to_string()))?;
        Ok(Self {
            http,
            origin: parts.origin,
            base_path: parts.base_path,
            host: parts.host,
            signer: Arc::new(RequestSigner::new(region, "bedrock")),
            credentials: Arc::new(CachedCredentials::new(credentials)),
            timeout: nonzero(settings.timeout, Duration::from_secs(300)),
            read_timeout: nonzero(settings.read_timeout, Duration::from_secs(300)),
        })
    }
}

/// An endpoint URL taken apart once: what requests are sent to and what is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EndpointParts {
    /// `scheme://host[:port]`, the host lower-cased and a default port left out.
    origin: String,
    /// `host[:port]`, as the `host` header carries it.
    host: String,
    /// The path before `/model/…`, without a trailing `/`.
    base_path: String,
}

impl EndpointParts {
    fn parse(endpoint: &str) -> Option<Self> {
        let uri: http::Uri = endpoint.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') || uri.query().is_some() || authority.host().is_empty()
        {
            return None;
        }
        let host = authority.host().to_ascii_lowercase();
        let host = match authority.port_u16() {
            Some(port) if port != default_port => format!("{host}:{port}"),
            _ => host,
        };
        Some(Self {
            origin: format!("{scheme}://{host}"),
            host,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

fn nonzero(value: Duration, default: Duration) -> Duration {
    if value.is_zero() { default } else { value }
}

fn header_value(value: String) -> Result<HeaderValue, RuntimeError> {
    HeaderValue::try_from(value).map_err(|_| {
        RuntimeError::Failed("cannot forward a header value that is not visible ASCII".to_owned())
    })
}

#[async_trait]
impl ModelRuntime for BedrockRuntime {
    async fn send(&self, invocation: ModelInvocation) -> Result<UpstreamResponse, RuntimeError> {
        // The whole URL in one string; the path, which is signed, is its tail.
        let operation = operation_path(invocation.operation);
        let mut url = String::with_capacity(
            self.origin.len() + self.base_path.len() + invocation.model_id.len() * 3 + 40,
        );
        url.push_str(&self.origin);
        url.push_str(&self.base_path);
        url.push_str("/model/");
        push_percent_encoded(&mut url, &invocation.model_id, b"");
        url.push('/');
        url.push_str(operation);
        let path = &url[self.origin.len()..];
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
            path,
            &invocation.headers,
            &invocation.body,
        );

        let mut request = http::Request::post(url)
            .body(invocation.body.clone())
            .map_err(|error| RuntimeError::Failed(format!("cannot build the request: {error}")))?;
        let headers = request.headers_mut();
        let signed = [
            ("authorization", Some(signature.authorization)),
            ("x-amz-date", Some(signature.amz_date)),
            ("x-amz-security-token", signature.security_token),
        ];
        for (name, value) in signed {
            if let Some(value) = value {
                headers.insert(HeaderName::from_static(name), header_value(value)?);
            }
        }
        for (name, value) in &invocation.headers {
            headers.append(name.clone(), value.clone());
        }

        // One deadline for the answer's head and, unless it streams, its whole body.
        let started = Instant::now();
        let streaming = is_streaming(invocation.operation);
        tokio::time::timeout(self.timeout, async {
            let response = self.http.send(request).await?;
            let upstream_latency = started.elapsed();
            let (parts, incoming) = response.into_parts();
            let status = parts.status.as_u16();
            let body = if status == 200 && streaming {
                UpstreamBody::Stream(body_stream(incoming, self.read_timeout))
            } else {
                UpstreamBody::Complete(read_body(incoming).await?)
            };
            Ok(UpstreamResponse {
                status,
                headers: parts.headers,
                body,
                upstream_latency,
            })
        })
        .await
        .map_err(|_| RuntimeError::Timeout(self.timeout))?
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
    fn endpoints_are_taken_apart_once_with_default_ports_left_out() {
        let parts = |endpoint: &str| {
            EndpointParts::parse(endpoint).map(|parts| (parts.origin, parts.host, parts.base_path))
        };
        let owned = |origin: &str, host: &str, base: &str| {
            Some((origin.to_owned(), host.to_owned(), base.to_owned()))
        };
        assert_eq!(
            parts("https://bedrock-runtime.us-east-1.amazonaws.com"),
            owned(
                "https://bedrock-runtime.us-east-1.amazonaws.com",
                "bedrock-runtime.us-east-1.amazonaws.com",
                ""
            )
        );
        assert_eq!(
            parts("HTTPS://VPCE-1.Example.com:443/"),
            owned("https://vpce-1.example.com", "vpce-1.example.com", "")
        );
        assert_eq!(
            parts("http://127.0.0.1:8080/prefix/"),
            owned("http://127.0.0.1:8080", "127.0.0.1:8080", "/prefix")
        );
        for invalid in [
            "bedrock-runtime.us-east-1.amazonaws.com",
            "ftp://example.com",
            "https://user:pass@example.com",
            "https://example.com/?a=b",
            "",
        ] {
            assert_eq!(parts(invalid), None, "{invalid}");
        }
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
