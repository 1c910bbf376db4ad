//! The proxy's typed configuration, parsed once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use schemas::model_names::ModelNames;
use schemas::usage_frame::EventFormat;

use crate::admission::AdmissionSettings;

/// The default cap on a request's header section: 16 KiB, above API Gateway's 10 KB and
/// far above what any SDK sends (about 1 KB with SigV4 or a bearer token).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// Everything the proxy's HTTP edge needs to know.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Largest request header section accepted (request line and every header); larger
    /// ones get 431 before anything else is done.
    pub max_header_bytes: usize,
    /// Longest wait for a request's headers, and for the next request on an idle
    /// keep-alive connection (HTTP/1).
    pub header_read_timeout: Duration,
    /// Longest wait for a request's whole body once the headers arrived.
    pub body_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
    /// PEM certificate chain and private key; when set the server speaks only HTTPS.
    pub tls: Option<TlsFiles>,
    /// Longest time between writes of keys' last-used times.
    pub key_use_flush_interval: Duration,
    /// The durable spool for events the log does not take in time; `None` (Lambda, tests)
    /// retries in memory instead.
    pub spool: Option<SpoolConfig>,
    /// How limits are enforced.
    pub admission: AdmissionSettings,
    /// Answer only after the call's usage event is durable in the log (the default).
    /// Required on Lambda, where the process may be frozen as soon as the response is sent.
    pub durable_events: bool,
    /// How frames write usage events (`--event-format`): binary (version 3) unless the
    /// consumers reading the log are older than it (`binary-v2`) or than binary frames (`json`).
    pub event_format: EventFormat,
    /// How long the registry's records of a token are reused before a background refresh;
    /// zero reads them on every call. See [`crate::auth::AuthCache`].
    pub auth_cache_ttl: Duration,
    /// Model names customers know (`--model-names`), resolved to Bedrock ids on the
    /// OpenAI- and Anthropic-compatible routes.
    pub model_names: Arc<ModelNames>,
    /// Threads that serve connections, each with a single-threaded runtime of its own
    /// (`--io-threads`): a connection's calls run start to end on one thread, with no
    /// hand-off or wake-up of another. Zero serves on the caller's runtime.
    pub io_threads: usize,
}

/// Where the spool lives and how much it may hold before new calls are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Parent directory; each proxy process claims a `slot-N` under it.
    pub directory: PathBuf,
    /// Above this many bytes spooled, new calls get 503.
    pub limit_bytes: u64,
}

/// Paths of a PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate_chain: PathBuf,
    pub private_key: PathBuf,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 6 * 1024 * 1024,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            tls: None,
            admission: AdmissionSettings::default(),
            key_use_flush_interval: Duration::from_secs(60),
            spool: None,
            durable_events: true,
            event_format: EventFormat::default(),
            auth_cache_ttl: Duration::from_secs(5),
            model_names: Arc::new(ModelNames::default()),
            io_threads: 0,
        }
    }
}
