//! A future that runs in place while its caller waits for it, and carries on as a task of
//! its own if the caller goes away (a client that disconnects drops the request's future).
//!
//! The forwarding stage needs its work to finish even when the client leaves, so the
//! event is written. Spawning a task for every call costs a hand-off (and often a wake-up
//! of another worker thread) on every call; this spawns only for the calls whose client
//! left, or whose work outlives the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;

/// Forwardings carried on as tasks whose client left and that have not finished yet, in
/// this process; shutdown waits for them ([`wait_for_detached`]) so their calls are metered.
static DETACHED: AtomicUsize = AtomicUsize::new(0);
static DETACHED_DONE: Notify = Notify::const_new();

/// Counts one detached forwarding from its spawn until it finishes or is dropped.
struct DetachedGuard;

impl DetachedGuard {
    fn new() -> Self {
        DETACHED.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for DetachedGuard {
    fn drop(&mut self) {
        if DETACHED.fetch_sub(1, Ordering::SeqCst) == 1 {
            DETACHED_DONE.notify_waiters();
        }
    }
}

/// Forwardings of this process still running as tasks after their client left.
pub fn detached_in_flight() -> usize {
    DETACHED.load(Ordering::SeqCst)
}

/// Waits, at most `limit`, until no forwarding of this process runs detached; returns how
/// many still do. Shutdown calls it before the runtimes that run them stop.
pub async fn wait_for_detached(limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let done = DETACHED_DONE.notified();
        let left = detached_in_flight();
        if left == 0 {
            return 0;
        }
        if tokio::time::timeout_at(deadline, done).await.is_err() {
            return detached_in_flight();
        }
    }
}

/// Runs `F` when polled; when dropped before `F` finished, spawns the rest of `F` on the
/// current tokio runtime.
pub struct DetachOnDrop<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    inner: Option<Pin<Box<F>>>,
}

impl<F> DetachOnDrop<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    pub fn new(future: F) -> Self {
        Self {
            inner: Some(Box::pin(future)),
        }
    }

    /// Whether `F` has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_none()
    }
}

impl<F> Future for DetachOnDrop<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(());
        };
        match inner.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.inner = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> Drop for DetachOnDrop<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    fn drop(&mut self) {
        if let Some(rest) = self.inner.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let guard = DetachedGuard::new();
                    runtime.spawn(async move {
                        rest.await;
                        drop(guard);
                    });
                }
                // Outside a runtime (the process is shutting down): nothing can run it.
                Err(_) => tracing::error!(
                    "a call's forwarding work was dropped outside the async runtime"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn a_future_polled_to_the_end_runs_in_place() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let detached = DetachOnDrop::new(async move {
            tokio::task::yield_now().await;
            flag.store(true, Ordering::SeqCst);
        });
        let mut detached = detached;
        (&mut detached).await;
        assert!(detached.is_finished());
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_future_dropped_half_way_finishes_as_a_task() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let (started_sender, started) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut detached = DetachOnDrop::new(async move {
            let _ = started_sender.send(());
            let _ = released.await;
            flag.store(true, Ordering::SeqCst);
        });
        // Run it until it waits, then drop it, as a handler is dropped when its client leaves.
        tokio::select! {
            () = &mut detached => panic!("it waits for the release"),
            _ = started => {}
        }
        assert!(!detached.is_finished());
        drop(detached);
        release.send(()).unwrap();
        for _ in 0..100 {
            if done.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the rest of the future did not run after the drop");
    }

    #[tokio::test]
    async fn shutdown_waits_for_detached_work_to_finish() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (started_sender, started) = tokio::sync::oneshot::channel();
        let mut detached = DetachOnDrop::new(async move {
            let _ = started_sender.send(());
            let _ = released.await;
        });
        tokio::select! {
            () = &mut detached => panic!("it waits for the release"),
            _ = started => {}
        }
        drop(detached);
        // Still running: the wait gives up at its limit and says so.
        assert!(wait_for_detached(Duration::from_millis(50)).await >= 1);
        release.send(()).unwrap();
        assert_eq!(wait_for_detached(Duration::from_secs(5)).await, 0);
    }
}
