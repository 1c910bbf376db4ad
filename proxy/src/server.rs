//! The proxy server: accept loop (plain or TLS), timeouts, graceful shutdown and the
//! final flush of usage events.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use store::backend::Ports;
use store::spool::{FileSpool, SpoolSlot};
use store::{Counters, EventAppender, Quotas, Registry};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::accept::{Balance, Edge, Lane, serve_on_io_threads};
use crate::admission::Limiter;
use crate::auth::AuthCache;
use crate::config::{ProxyConfig, SpoolConfig};
use crate::emitter::{Durability, EventEmitter, SpoolSetup};
use crate::header_cap::with_header_cap;
use crate::hot_routes::Routes;
use crate::key_use::KeyUseRecorder;
use crate::router::build_router;
use crate::state::{ProxyState, SharedState};
use crate::tls::load_server_config;
use crate::upstream::ModelRuntime;

/// The ports the proxy uses.
#[derive(Clone)]
pub struct ProxyPorts {
    pub registry: Arc<dyn Registry>,
    pub counters: Arc<dyn Counters>,
    /// Strict-mode limit windows.
    pub quotas: Arc<dyn Quotas>,
    /// The producer side of the event log: the proxy can append, never read or checkpoint.
    pub event_appender: Arc<dyn EventAppender>,
    pub runtime: Arc<dyn ModelRuntime>,
}

impl ProxyPorts {
    /// The proxy's ports out of a backend's, with the model runtime it forwards to. The one
    /// place the proxy's ports are assembled (the binaries and `tollgate serve` use it).
    pub fn from_backend(ports: &Ports, runtime: Arc<dyn ModelRuntime>) -> Self {
        Self {
            registry: ports.registry.clone(),
            counters: ports.counters.clone(),
            quotas: ports.quotas.clone(),
            event_appender: ports.event_appender.clone(),
            runtime,
        }
    }
}

impl std::fmt::Debug for ProxyPorts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ProxyPorts")
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {reason}; choose another address with --listen")]
    Listen { address: SocketAddr, reason: String },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    #[error("cannot use the spool: {0}")]
    Spool(String),
}

/// A running proxy.
pub struct RunningProxy {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    stats: Arc<crate::emitter::EmitterStats>,
    spool: Option<Arc<dyn store::Spool>>,
    auth: Arc<AuthCache>,
    /// The I/O threads' connections; `None` when serving on the caller's runtime.
    balance: Option<Arc<Balance>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RunningProxy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunningProxy")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl RunningProxy {
    /// The proxy's metrics, for `--metrics-listen`.
    pub fn samples(&self) -> Vec<telemetry::metrics::Sample> {
        (self.sample_source())()
    }

    /// A source of the proxy's metrics that outlives this handle.
    pub fn sample_source(&self) -> telemetry::metrics::SampleSource {
        let (stats, spool, auth, balance) = (
            Arc::clone(&self.stats),
            self.spool.clone(),
            Arc::clone(&self.auth),
            self.balance.clone(),
        );
        Arc::new(move || {
            let mut samples = crate::emitter::emitter_samples(&stats, spool.as_deref());
            samples.extend(auth.samples());
            if let Some(balance) = &balance {
                samples.extend(balance.samples());
            }
            samples
        })
    }

    /// Client connections open on each I/O thread, in thread order (empty when the proxy
    /// serves on the caller's runtime).
    pub fn connections_by_io_thread(&self) -> Vec<usize> {
        self.balance
            .as_ref()
            .map(|balance| balance.open_by_thread())
            .unwrap_or_default()
    }

    /// Stops accepting, drains in-flight requests, flushes usage events, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        if let Err(error) = self.task.await {
            tracing::error!(error = %error, "proxy task failed");
        }
    }

    /// Runs until `signal` completes, then shuts down as [`RunningProxy::shutdown`] does.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        tracing::info!("shutdown requested; draining in-flight requests");
        self.shutdown().await;
    }
}

pub use telemetry::process::shutdown_signal;

/// A name for this proxy process, unique across restarts.
pub fn new_instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "proxy".into());
    format!("{host}-{}", uuid::Uuid::now_v7().simple())
}

/// Claims this process's spool slot and the slots stopped proxies left with records.
fn open_spool(config: &SpoolConfig) -> Result<SpoolSetup, StartError> {
    let slot = FileSpool::claim_slot(&config.directory)
        .map_err(|error| StartError::Spool(format!("{error}; check --spool-dir")))?;
    let orphans = FileSpool::orphaned_slots(&config.directory)
        .map_err(|error| StartError::Spool(error.to_string()))?;
    let left = slot.spool.level().records
        + orphans
            .iter()
            .map(|orphan| orphan.spool.level().records)
            .sum::<u64>();
    if left > 0 {
        tracing::info!(records = left, spool = %config.directory.display(), "sending usage events left in the spool by an earlier run");
    }
    Ok(SpoolSetup {
        spool: slot.port(),
        orphans: orphans.iter().map(SpoolSlot::port).collect(),
        limit_bytes: config.limit_bytes,
        location: slot.directory.display().to_string(),
    })
}

/// Builds the shared state and starts the event emitter (also used by the Lambda handler).
pub fn build_state(
    config: ProxyConfig,
    ports: ProxyPorts,
) -> Result<(ProxyState, EventEmitter), StartError> {
    let spool = config.spool.as_ref().map(open_spool).transpose()?;
    let durability = if config.durable_events {
        Durability::BeforeAnswer
    } else {
        Durability::Queued
    };
    let (emitter, emitter_handle) = EventEmitter::start_with(
        ports.event_appender,
        new_instance_name(),
        durability,
        spool,
        config.event_format,
    );
    let state = ProxyState::new(SharedState {
        key_uses: Arc::new(KeyUseRecorder::new(
            ports.registry.clone(),
            config.key_use_flush_interval,
        )),
        registry: ports.registry,
        auth: Arc::new(AuthCache::new(config.auth_cache_ttl)),
        runtime: ports.runtime,
        counters: ports.counters.clone(),
        limiter: Arc::new(Limiter::new(ports.counters, ports.quotas, config.admission)),
        emitter: emitter_handle,
        config: Arc::new(config),
    });
    Ok((state, emitter))
}

/// Binds, starts the event emitter and serves until shut down.
pub async fn start_proxy(
    config: ProxyConfig,
    ports: ProxyPorts,
) -> Result<RunningProxy, StartError> {
    start_proxy_with(config, ports, None).await
}

/// Like [`start_proxy`], with extra routes served next to the proxy's (the operator's
/// console and admin API under `/admin/` in `tollgate serve`). They are merged outside the customers'
/// authentication layer, deliberately: they authenticate on their own (the admin token).
pub async fn start_proxy_with(
    config: ProxyConfig,
    ports: ProxyPorts,
    extra_routes: Option<axum::Router>,
) -> Result<RunningProxy, StartError> {
    let tls = config
        .tls
        .as_ref()
        .map(load_server_config)
        .transpose()?
        .map(TlsAcceptor::from);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| StartError::Listen {
            address: config.listen,
            reason: error.to_string(),
        })?;
    let local_addr = listener.local_addr().map_err(|error| StartError::Listen {
        address: config.listen,
        reason: error.to_string(),
    })?;
    let (balance, lanes) = match config.io_threads {
        0 => (None, Vec::new()),
        threads => {
            let (balance, lanes) = Balance::new(threads);
            (Some(balance), lanes)
        }
    };
    let (state, emitter) = build_state(config, ports)?;
    let stats = Arc::clone(&emitter.stats);
    let spool = state.emitter.spool();
    let auth = Arc::clone(&state.auth);
    let (shutdown_sender, shutdown_receiver) = oneshot::channel();
    let task = tokio::spawn(serve(
        Listening {
            listener,
            tls,
            lanes,
        },
        state,
        emitter,
        shutdown_receiver,
        extra_routes,
    ));
    tracing::info!(address = %local_addr, "proxy listening");
    Ok(RunningProxy {
        local_addr,
        stats,
        spool,
        auth,
        balance,
        shutdown: shutdown_sender,
        task,
    })
}

/// The bound socket and how its connections are served.
struct Listening {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    /// The I/O threads' lanes; none to serve on the caller's runtime.
    lanes: Vec<Lane>,
}

async fn serve(
    Listening {
        listener,
        tls,
        lanes,
    }: Listening,
    state: ProxyState,
    emitter: EventEmitter,
    mut shutdown: oneshot::Receiver<()>,
    extra_routes: Option<axum::Router>,
) {
    let config = Arc::clone(&state.config);
    let key_uses = Arc::clone(&state.key_uses);
    let key_use_ticker = key_uses.start_ticker();
    let limiter = Arc::clone(&state.limiter);
    let lease_sweeper = limiter.start_lease_sweeper();
    let router = match extra_routes {
        Some(extra) => build_router(state.clone()).merge(extra),
        None => build_router(state.clone()),
    };
    let router = with_header_cap(router, config.max_header_bytes);
    let edge = Edge {
        routes: Routes::new(router, state),
        builder: connection_builder(&config),
        tls,
        grace: config.shutdown_grace,
    };
    let (stop, stopped) = watch::channel(false);
    let stop_on_request = async move {
        let _ = (&mut shutdown).await;
        let _ = stop.send(true);
    };
    if lanes.is_empty() {
        tokio::join!(stop_on_request, edge.serve_here(listener, stopped));
    } else {
        tokio::join!(
            stop_on_request,
            serve_on_io_threads(lanes, listener, edge, stopped)
        );
    }
    // Calls have ended: the quota this process leased and did not spend goes back.
    lease_sweeper.abort();
    limiter.give_back_leases().await;
    emitter.finish(config.shutdown_grace).await;
    key_use_ticker.abort();
    key_uses.flush().await;
    tracing::info!("proxy stopped");
}

/// The HTTP/1 and HTTP/2 settings of every served connection.
fn connection_builder(config: &ProxyConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        // A memory bound only (HTTP/2 counts 32 bytes more per field); the cap clients see
        // is `with_header_cap`'s, the same on both protocols.
        .max_header_list_size(
            u32::try_from(config.max_header_bytes.saturating_mul(4)).unwrap_or(u32::MAX),
        );
    builder
}
