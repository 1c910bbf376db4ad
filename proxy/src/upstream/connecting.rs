//! One upstream connection being set up on a thread, which calls arriving meanwhile wait
//! for instead of each setting up their own.
//!
//! Over HTTP/2 one connection carries many calls. Without this, a burst of calls on a
//! thread with no connection yet (at start, after a restart, after the endpoint closed the
//! idle ones) would each make a TCP connection and a TLS handshake, then use one of them:
//! a thundering herd of handshakes, each a millisecond or more of CPU on both ends, and a
//! latency spike for the whole burst. Calls that arrive while a connection is being set up
//! wait for it instead, up to as many as it can carry. On an origin that answered with
//! HTTP/1.1, where a connection carries one call at a time, no call waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// A connection one call is setting up; it ends, pooled or failed, when its
/// [`SettingUp`] guard drops.
pub(super) struct Connecting {
    done: Arc<Notify>,
    finished: Arc<AtomicBool>,
    /// Calls waiting for it.
    waiting: usize,
}

/// Held by the call setting up the connection; wakes the waiting calls when dropped: once
/// the connection is pooled, or when setting it up failed or the call was cancelled.
pub(super) struct SettingUp {
    done: Arc<Notify>,
    finished: Arc<AtomicBool>,
}

impl Connecting {
    /// A connection a call starts setting up, with the guard that ends it.
    pub(super) fn start() -> (Self, SettingUp) {
        let done = Arc::new(Notify::new());
        let finished = Arc::new(AtomicBool::new(false));
        let guard = SettingUp {
            done: Arc::clone(&done),
            finished: Arc::clone(&finished),
        };
        (
            Self {
                done,
                finished,
                waiting: 0,
            },
            guard,
        )
    }

    /// Whether it is over: the guard dropped, perhaps on another thread of a
    /// multi-threaded runtime.
    pub(super) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// A call joins the wait, if the connection can carry it besides the calls already
    /// waiting and the one setting it up (`carries` calls at once).
    pub(super) fn join(&mut self, carries: usize) -> Option<OwnedNotified> {
        // A notified future hears `notify_waiters` from its creation on, polled or not; made
        // first, it cannot miss the wake of a guard that drops on another thread meanwhile
        // (the guard marks the end before it wakes).
        let notified = Arc::clone(&self.done).notified_owned();
        if self.is_finished() || self.waiting + 2 > carries {
            return None;
        }
        self.waiting += 1;
        Some(notified)
    }
}

impl Drop for SettingUp {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Release);
        self.done.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Connecting;

    #[tokio::test]
    async fn waiting_calls_wake_when_the_guard_drops_and_no_more_join_than_it_carries() {
        let (mut connecting, setting_up) = Connecting::start();
        // It carries 3: the call setting it up and two waiting.
        let first = connecting.join(3).expect("room for a first");
        let second = connecting.join(3).expect("room for a second");
        assert!(
            connecting.join(3).is_none(),
            "a third would be a fourth call"
        );
        let waiting = tokio::spawn(async move {
            first.await;
            second.await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "nothing wakes them before the guard drops"
        );
        // Dropped as when the call setting it up is cancelled, or when its connection is pooled.
        drop(setting_up);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("both woke")
            .unwrap();
        assert!(connecting.is_finished());
        assert!(
            connecting.join(3).is_none(),
            "no call waits for a finished one"
        );
    }
}
