//! Accepting connections and serving them: on the caller's runtime, or on I/O threads
//! that each run a single-threaded runtime, as nginx's workers do.
//!
//! Every I/O thread accepts from its copy of the listening socket, so at low load a new
//! connection costs no hand-off. Which thread the kernel wakes for a connection is not
//! balanced, though: a burst of new connections (a client pool opening 64 at once) could
//! land two to one on one thread, which then saturated while the other idled. So an I/O
//! thread serves a connection it accepts only when no other thread has fewer open; else
//! it hands the socket to the least busy thread ([`Balance`]). Connections live for many
//! calls, so the hand-off is paid once per connection, never per call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use telemetry::metrics::Sample;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::call;
use crate::hot_routes::Routes;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What serves accepted connections: the routes, the connection settings and TLS.
#[derive(Clone)]
pub(crate) struct Edge {
    pub(crate) routes: Routes,
    pub(crate) builder: auto::Builder<TokioExecutor>,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) grace: Duration,
}

/// A connection handed from the I/O thread that accepted it to the one that serves it.
type HandedOver = (std::net::TcpStream, SocketAddr);

/// The I/O threads' open connections, and how to hand one to another thread.
#[derive(Debug)]
pub struct Balance {
    /// Open connections per I/O thread.
    open: Box<[AtomicUsize]>,
    /// Each thread's inbox of connections handed to it.
    inboxes: Box<[mpsc::UnboundedSender<HandedOver>]>,
    /// Connections served by another thread than the one that accepted them.
    handed_over: AtomicU64,
}

/// One I/O thread's place in the [`Balance`]: its index and its inbox.
pub(crate) struct Lane {
    index: usize,
    balance: Arc<Balance>,
    inbox: mpsc::UnboundedReceiver<HandedOver>,
}

/// The thread that should serve a connection accepted by thread `here`, given each
/// thread's open connections: the one with the fewest, `here` when it has no more than
/// any other (so a balanced load never hands anything over).
pub fn least_busy(open: &[usize], here: usize) -> usize {
    let mut chosen = here;
    let mut fewest = open.get(here).copied().unwrap_or(usize::MAX);
    for (index, &count) in open.iter().enumerate() {
        if count < fewest {
            (chosen, fewest) = (index, count);
        }
    }
    chosen
}

impl Balance {
    /// A balance over `threads` I/O threads, with each thread's lane.
    pub(crate) fn new(threads: usize) -> (Arc<Self>, Vec<Lane>) {
        let (inboxes, receivers): (Vec<_>, Vec<_>) =
            (0..threads).map(|_| mpsc::unbounded_channel()).unzip();
        let balance = Arc::new(Self {
            open: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
            inboxes: inboxes.into_boxed_slice(),
            handed_over: AtomicU64::new(0),
        });
        let lanes = receivers
            .into_iter()
            .enumerate()
            .map(|(index, inbox)| Lane {
                index,
                balance: Arc::clone(&balance),
                inbox,
            })
            .collect();
        (balance, lanes)
    }

    /// Open connections per I/O thread, in thread order.
    pub fn open_by_thread(&self) -> Vec<usize> {
        self.open
            .iter()
            .map(|open| open.load(Ordering::Relaxed))
            .collect()
    }

    /// The balance's metrics.
    pub fn samples(&self) -> Vec<Sample> {
        let open = self.open_by_thread();
        vec![
            Sample {
                name: "tollgate_proxy_connections_open",
                help: "Client connections open on the proxy's I/O threads.",
                counter: false,
                value: open.iter().sum::<usize>() as f64,
            },
            Sample {
                name: "tollgate_proxy_connections_busiest_thread",
                help: "Client connections open on the I/O thread that has the most.",
                counter: false,
                value: open.iter().copied().max().unwrap_or(0) as f64,
            },
            Sample {
                name: "tollgate_proxy_connections_handed_over_total",
                help: "Client connections an I/O thread accepted and handed to a less busy one.",
                counter: true,
                value: self.handed_over.load(Ordering::Relaxed) as f64,
            },
        ]
    }

    /// Counts a connection open on thread `index` until the guard is dropped.
    fn open_on(self: &Arc<Self>, index: usize) -> OpenConnection {
        self.open[index].fetch_add(1, Ordering::Relaxed);
        OpenConnection {
            balance: Arc::clone(self),
            index,
        }
    }

    /// Hands `stream` to the least busy thread when that is not `here`. Gives the stream
    /// back when this thread should serve it (or the other thread has stopped).
    fn hand_over(&self, here: usize, stream: TcpStream, peer: SocketAddr) -> Option<TcpStream> {
        let target = least_busy(&self.open_by_thread(), here);
        if target == here {
            return Some(stream);
        }
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%peer, error = %error, "cannot hand a connection over; closing it");
                return None;
            }
        };
        // Counted before it is sent, so the next accept sees it.
        self.open[target].fetch_add(1, Ordering::Relaxed);
        match self.inboxes[target].send((stream, peer)) {
            Ok(()) => {
                self.handed_over.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(mpsc::error::SendError((stream, _))) => {
                self.open[target].fetch_sub(1, Ordering::Relaxed);
                TcpStream::from_std(stream).ok()
            }
        }
    }
}

/// A connection counted as open on an I/O thread, until dropped.
struct OpenConnection {
    balance: Arc<Balance>,
    index: usize,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.balance.open[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Edge {
    /// Accepts connections and serves each as a task of the current runtime until `stop`
    /// turns true; then waits (at most the grace period) for them to finish, and for the
    /// calls whose client left, which run on as tasks of this runtime, so they are metered
    /// before it stops. With a lane (an I/O thread), also serves the connections other
    /// threads hand over, and hands over those another thread should serve.
    async fn accept(
        self,
        listener: TcpListener,
        lane: Option<Lane>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (here, mut inbox) = match lane {
            Some(Lane {
                index,
                balance,
                inbox,
            }) => (Some((index, balance)), Some(inbox)),
            None => (None, None),
        };
        let graceful = GracefulShutdown::new();
        loop {
            let (stream, peer, open) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match &here {
                        None => (stream, peer, None),
                        Some((index, balance)) => match balance.hand_over(*index, stream, peer) {
                            Some(stream) => (stream, peer, Some(balance.open_on(*index))),
                            None => continue,
                        },
                    },
                    Err(error) => {
                        tracing::warn!(error = %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                Some((stream, peer)) = handed_over(&mut inbox) => {
                    let Some((index, balance)) = &here else { continue };
                    // Counted as open here by the thread that handed it over.
                    let open = OpenConnection { balance: Arc::clone(balance), index: *index };
                    match TcpStream::from_std(stream) {
                        Ok(stream) => (stream, peer, Some(open)),
                        Err(error) => {
                            tracing::debug!(%peer, error = %error, "cannot serve a connection handed over");
                            continue;
                        }
                    }
                },
                () = stop_requested(&mut stop) => break,
            };
            let _ = stream.set_nodelay(true);
            let (tls, builder, service, watcher) = (
                self.tls.clone(),
                self.builder.clone(),
                TowerToHyperService::new(self.routes.clone()),
                graceful.watcher(),
            );
            tokio::spawn(async move {
                serve_connection(stream, peer, tls, builder, service, watcher).await;
                drop(open);
            });
        }
        drop(listener);
        // Connections handed over but not yet served are closed unserved, as those still
        // in the listening socket's backlog are.
        drop(inbox);
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?self.grace, "in-flight requests did not finish in time; closing");
        }
        let left = call::detach::wait_for_detached(self.grace).await;
        if left > 0 {
            tracing::error!(
                calls = left,
                "calls whose client left were still running at shutdown; they are not metered"
            );
        }
    }

    /// Serves on the caller's runtime until `stop` turns true.
    pub(crate) async fn serve_here(self, listener: TcpListener, stop: watch::Receiver<bool>) {
        self.accept(listener, None, stop).await;
    }
}

/// The next connection handed to this thread; pending forever without an inbox.
async fn handed_over(
    inbox: &mut Option<mpsc::UnboundedReceiver<HandedOver>>,
) -> Option<HandedOver> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// Returns once `stop` is true (or its sender is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Serves on a thread per lane, each with a single-threaded runtime that accepts from the
/// same listening socket: a connection and its calls stay on the thread that serves it.
/// Returns when every thread has stopped (see [`Edge::accept`]).
pub(crate) async fn serve_on_io_threads(
    lanes: Vec<Lane>,
    listener: TcpListener,
    edge: Edge,
    stop: watch::Receiver<bool>,
) {
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(error = %error, "cannot hand the listening socket to the I/O threads");
            return;
        }
    };
    let mut finished = Vec::with_capacity(lanes.len());
    for lane in lanes {
        let index = lane.index;
        let (done, finished_one) = oneshot::channel::<()>();
        let spawned = listener.try_clone().and_then(|listener| {
            let (edge, stop) = (edge.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("tollgate-io-{index}"))
                .spawn(move || {
                    run_io_thread(listener, edge, lane, stop);
                    let _ = done.send(());
                })
        });
        match spawned {
            Ok(_) => finished.push(finished_one),
            Err(error) => {
                tracing::error!(thread = index, error = %error, "cannot start an I/O thread");
            }
        }
    }
    if finished.is_empty() {
        tracing::error!("no I/O thread started; serving on the shared runtime");
        match TcpListener::from_std(listener) {
            Ok(listener) => edge.serve_here(listener, stop).await,
            Err(error) => tracing::error!(error = %error, "cannot serve the listening socket"),
        }
        return;
    }
    drop(listener);
    for finished_one in finished {
        let _ = finished_one.await;
    }
}

/// One I/O thread: its own runtime, accepting from its copy of the listening socket.
fn run_io_thread(
    listener: std::net::TcpListener,
    edge: Edge,
    lane: Lane,
    stop: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "cannot start an I/O thread's runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let _tick = tokio::spawn(keep_the_timer_wake_near());
        match TcpListener::from_std(listener) {
            Ok(listener) => edge.accept(listener, Some(lane), stop).await,
            Err(error) => {
                tracing::error!(error = %error, "an I/O thread cannot use the listening socket");
            }
        }
    });
}

/// The longest a thread's timer driver plans to sleep while calls set timers.
const TIMER_TICK: Duration = Duration::from_secs(1);

/// Keeps an I/O thread's timer driver waking at least every [`TIMER_TICK`], for as long
/// as the thread runs.
///
/// tokio wakes a runtime's driver (a write to its eventfd, then an early return from
/// `epoll_wait`) whenever a timer is set to fire before the driver's next planned wake-up,
/// even when it is set on the driver's own thread while that thread is running. With no
/// short timer pending, every call's timers (hyper's 30 s header-read timeout on each
/// request, the upstream deadline) were earlier than that plan: about one wasted wake-up
/// for every six calls at saturation. With this tick pending, the plan is never more than
/// a second away, and the calls' timers, all longer, do not wake anything: one wake-up a
/// second instead.
async fn keep_the_timer_wake_near() {
    let mut tick = tokio::time::interval(TIMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// Serves one accepted connection (after its TLS handshake, when there is TLS) until it
/// ends or graceful shutdown closes it.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    builder: auto::Builder<TokioExecutor>,
    service: TowerToHyperService<Routes>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let served = match tls {
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Ok(Err(error)) => {
                    tracing::debug!(%peer, error = %error, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "tls handshake timed out");
                    return;
                }
            }
        }
        None => {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            watcher.watch(connection.into_owned()).await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%peer, error = %error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::least_busy;

    #[test]
    fn a_connection_goes_to_the_thread_with_the_fewest_open() {
        assert_eq!(least_busy(&[3, 1, 2], 0), 1);
        assert_eq!(least_busy(&[3, 1, 1], 0), 1, "the first of the least busy");
        assert_eq!(least_busy(&[0, 0], 0), 0);
    }

    #[test]
    fn the_accepting_thread_keeps_it_when_no_other_has_fewer() {
        assert_eq!(least_busy(&[2, 2, 3], 1), 1);
        assert_eq!(least_busy(&[1, 1], 1), 1);
        assert_eq!(least_busy(&[5], 0), 0);
    }
}
