//! The proxy's command-line and environment settings, shared by `tollgate serve` and the
//! standalone `tollgate-proxy` binary, and turned into typed configuration once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schemas::model_names::ModelNames;
use schemas::usage_frame::EventFormat;

use clap::{Args, ValueEnum};

use schemas::EnforcementMode;

use crate::admission::AdmissionSettings;
use crate::config::{ProxyConfig, SpoolConfig, TlsFiles};
use crate::upstream::bedrock::BedrockSetupError;
use crate::upstream::{BedrockRuntime, BedrockSettings, ModelRuntime, SimulatedRuntime};

/// Which model runtime the proxy forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Upstream {
    /// Amazon Bedrock, with credentials from the standard AWS chain.
    Bedrock,
    /// A deterministic local simulation, for trying Tollgate without AWS.
    Simulated,
}

impl Upstream {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bedrock => "bedrock",
            Self::Simulated => "simulated",
        }
    }
}

/// How limits are enforced by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LimitMode {
    /// Counters plus this proxy's own recent requests; no store write per request.
    Eventual,
    /// An atomic reservation in the store before forwarding; never over a limit.
    Strict,
}

impl LimitMode {
    fn mode(self) -> EnforcementMode {
        match self {
            Self::Eventual => EnforcementMode::Eventual,
            Self::Strict => EnforcementMode::Strict,
        }
    }
}

/// Reads and checks a model names file (`--model-names`); the error names the file, the
/// line or field, and the fix.
fn model_names_file(path: &str) -> Result<Arc<ModelNames>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("cannot read {path}: {error}"))?;
    ModelNames::from_toml(&text)
        .map(Arc::new)
        .map_err(|error| format!("{path}: {error} (see docs/model-names.toml)"))
}

/// The proxy's flags.
#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    /// Model names customers know, for the OpenAI- and Anthropic-compatible routes: a TOML
    /// file mapping names to Bedrock model ids (docs/model-names.toml). Names it does not
    /// list go through as Bedrock ids.
    #[arg(long, env = "TOLLGATE_MODEL_NAMES", value_parser = model_names_file)]
    pub model_names: Option<Arc<ModelNames>>,
    /// Address to listen on.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where calls are forwarded.
    #[arg(long, env = "TOLLGATE_UPSTREAM", value_enum, default_value = "bedrock")]
    pub upstream: Upstream,
    /// AWS region of Bedrock [default: from the AWS chain, e.g. AWS_REGION].
    #[arg(long, env = "TOLLGATE_BEDROCK_REGION")]
    pub bedrock_region: Option<String>,
    /// Bedrock runtime endpoint override (a VPC endpoint, or a test server).
    #[arg(long, env = "TOLLGATE_BEDROCK_ENDPOINT_URL")]
    pub bedrock_endpoint_url: Option<String>,
    /// PEM file of the certificate authorities to trust for Bedrock's endpoint instead of
    /// the built-in public roots: a private CA, or an egress proxy that inspects TLS.
    #[arg(long, env = "TOLLGATE_BEDROCK_CA_BUNDLE", value_name = "PEM")]
    pub bedrock_ca_bundle: Option<PathBuf>,
    /// Longest wait for Bedrock's answer, in seconds.
    #[arg(long, env = "TOLLGATE_UPSTREAM_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_timeout_secs: u64,
    /// Longest wait to connect to Bedrock, in seconds.
    #[arg(long, env = "TOLLGATE_UPSTREAM_CONNECT_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_connect_timeout_secs: u64,
    /// Longest silence between two reads of a streamed answer, in seconds.
    #[arg(long, env = "TOLLGATE_UPSTREAM_READ_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_read_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TOLLGATE_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest request header section accepted (request line and all headers), in bytes;
    /// larger ones get 431.
    #[arg(long, env = "TOLLGATE_MAX_HEADER_BYTES", default_value_t = crate::config::DEFAULT_MAX_HEADER_BYTES, value_parser = parse_header_cap)]
    pub max_header_bytes: usize,
    /// How limits are enforced for customers without their own `--enforcement`.
    #[arg(
        long,
        env = "TOLLGATE_LIMIT_MODE",
        value_enum,
        default_value = "eventual"
    )]
    pub limit_mode: LimitMode,
    /// Output tokens a strict token budget reserves for a call whose body names no
    /// `max_tokens` (the reservation is settled to the actual count afterwards).
    #[arg(long, env = "TOLLGATE_DEFAULT_TOKEN_RESERVATION", default_value_t = 4_096, value_parser = clap::value_parser!(u64).range(1..))]
    pub default_token_reservation: u64,
    /// Strict limits: most calls in one block of quota a proxy leases from the store (one
    /// store write per block, shrinking to one call as the quota runs out); 1 reserves
    /// every call in the store.
    #[arg(long, env = "TOLLGATE_STRICT_BLOCK_MAX", default_value_t = crate::admission::DEFAULT_STRICT_BLOCK_MAX, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub strict_block_max: u64,
    /// Longest time, in seconds, between writes of keys' last-used times (one write per
    /// key used in the interval, never one per request).
    #[arg(long, env = "TOLLGATE_KEY_USE_FLUSH_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub key_use_flush_secs: u64,
    /// Answer each call only once its usage event is durable (written to the spool, which
    /// sends it on to the log, or to the log when there is no spool), group-committed with
    /// every call that joined meanwhile: nothing is lost even if the process is killed with
    /// SIGKILL. On by default; `--durable-events=false`
    /// answers first and writes the event right after, which loses the events still in
    /// memory on SIGKILL (a few milliseconds of calls). Always on for Lambda.
    #[arg(
        long,
        env = "TOLLGATE_DURABLE_EVENTS",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_name = "true|false"
    )]
    pub durable_events: bool,
    /// How the event log's records write usage events: `binary` (the default: version 3
    /// frames, binary events with compact ids, compressed with LZ4; the fewest bytes and the
    /// cheapest for the metering consumer to read), `binary-v2` (version 2 frames, with
    /// zstd, read by consumers since binary frames) or `json` (JSON lines, read by every
    /// consumer version). Consumers of this release read all three; choose another than
    /// `binary` only while older consumers still read the log, and upgrade them first.
    #[arg(
        long,
        env = "TOLLGATE_EVENT_FORMAT",
        default_value = "binary",
        value_name = "binary|binary-v2|json"
    )]
    pub event_format: EventFormat,
    /// Directory of the durable spool for usage events the log does not take in time
    /// [default: <data-dir>/spool]. Each proxy process claims its own `slot-N` under it and
    /// drains slots left by stopped proxies.
    #[arg(long, env = "TOLLGATE_SPOOL_DIR", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Most megabytes spooled before new calls are refused with 503 (calls already served
    /// are always spooled).
    #[arg(long, env = "TOLLGATE_SPOOL_MAX_MB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub spool_max_mb: u64,
    /// How long, in milliseconds, a token's key and customer records are reused before they
    /// are refreshed in the background; never used past twice this (0 reads the registry on
    /// every call). A revoked key, a disabled customer or new limits take effect within
    /// this time plus one registry read.
    #[arg(long, env = "TOLLGATE_AUTH_CACHE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=300_000))]
    pub auth_cache_ms: u64,
    /// Threads that serve connections [default: one per CPU]. Each runs a connection's
    /// calls start to end, as nginx's workers do; 0 serves them on the process's shared
    /// runtime instead.
    #[arg(long, env = "TOLLGATE_IO_THREADS", value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub io_threads: Option<u64>,
    /// PEM certificate chain; with --tls-key the server speaks HTTPS only.
    #[arg(long, env = "TOLLGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TOLLGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ProxyArgs {
    /// The HTTP edge's configuration. `data_dir` places the spool when `--spool-dir` is not
    /// given; without either there is no spool.
    pub fn proxy_config(&self, data_dir: Option<&Path>) -> ProxyConfig {
        ProxyConfig {
            durable_events: self.durable_events,
            event_format: self.event_format,
            spool: self
                .spool_dir
                .clone()
                .or_else(|| data_dir.map(|directory| directory.join("spool")))
                .map(|directory| SpoolConfig {
                    directory,
                    limit_bytes: self.spool_max_mb.saturating_mul(1024 * 1024),
                }),
            listen: self.listen,
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(certificate_chain), Some(private_key)) => Some(TlsFiles {
                    certificate_chain: certificate_chain.clone(),
                    private_key: private_key.clone(),
                }),
                _ => None,
            },
            key_use_flush_interval: Duration::from_secs(self.key_use_flush_secs),
            auth_cache_ttl: Duration::from_millis(self.auth_cache_ms),
            model_names: self.model_names.clone().unwrap_or_default(),
            io_threads: self.io_threads.map_or_else(
                || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                |threads| usize::try_from(threads).unwrap_or(1),
            ),
            admission: AdmissionSettings {
                default_mode: self.limit_mode.mode(),
                default_output_reservation: self.default_token_reservation,
                strict_block_max: self.strict_block_max,
                ..AdmissionSettings::default()
            },
            ..ProxyConfig::default()
        }
    }

    /// Builds the model runtime once.
    pub async fn model_runtime(&self) -> Result<Arc<dyn ModelRuntime>, BedrockSetupError> {
        Ok(match self.upstream {
            Upstream::Simulated => Arc::new(SimulatedRuntime),
            Upstream::Bedrock => Arc::new(
                BedrockRuntime::connect(&BedrockSettings {
                    region: self.bedrock_region.clone(),
                    endpoint_url: self.bedrock_endpoint_url.clone(),
                    timeout: Duration::from_secs(self.upstream_timeout_secs),
                    connect_timeout: Duration::from_secs(self.upstream_connect_timeout_secs),
                    read_timeout: Duration::from_secs(self.upstream_read_timeout_secs),
                    ca_bundle: self.bedrock_ca_bundle.clone(),
                })
                .await?,
            ),
        })
    }
}

/// `--max-header-bytes`: at least 4 KiB (a SigV4-signed call's headers are about 1.5 KB),
/// at most 1 MiB.
fn parse_header_cap(text: &str) -> Result<usize, String> {
    let bytes: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of bytes; give e.g. 16384"))?;
    if (4 * 1024..=1024 * 1024).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "{bytes} is outside 4096..=1048576 bytes; the default, 16384, suits every SDK"
        ))
    }
}
