//! Last-used times of keys, coalesced: each authenticated call notes its key in memory, and
//! the notes are written to the Registry at most once per flush interval (one write per
//! key used in the interval, never one per request), and on shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemas::ApiKey;
use store::{KeyUse, Registry};

struct Pending {
    uses: HashMap<String, KeyUse>,
    last_flush: Instant,
}

/// Collects key uses and writes them in batches.
pub struct KeyUseRecorder {
    registry: Arc<dyn Registry>,
    interval: Duration,
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for KeyUseRecorder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeyUseRecorder")
            .field("interval", &self.interval)
            .finish()
    }
}

impl KeyUseRecorder {
    /// A recorder writing to `registry` at most once per `interval`.
    pub fn new(registry: Arc<dyn Registry>, interval: Duration) -> Self {
        Self {
            registry,
            interval,
            pending: Mutex::new(Pending {
                uses: HashMap::new(),
                last_flush: Instant::now(),
            }),
        }
    }

    /// Notes that `key` authenticated a call at `at`; starts a background flush when the
    /// interval has passed since the last one.
    pub fn note(self: &Arc<Self>, key: &ApiKey, at: DateTime<Utc>) {
        let due = {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            // A key noted since the last flush is found without copying its id.
            if let Some(entry) = pending.uses.get_mut(&key.key_id) {
                entry.at = entry.at.max(at);
            } else {
                pending.uses.insert(
                    key.key_id.clone(),
                    KeyUse {
                        customer_id: key.customer_id.clone(),
                        key_id: key.key_id.clone(),
                        token_hash: key.token_hash.clone(),
                        at,
                    },
                );
            }
            pending.last_flush.elapsed() >= self.interval
        };
        if due && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let recorder = Arc::clone(self);
            runtime.spawn(async move { recorder.flush().await });
        }
    }

    /// Writes every pending use. A failed write keeps them for the next flush.
    pub async fn flush(&self) {
        let batch: Vec<KeyUse> = {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            pending.last_flush = Instant::now();
            pending.uses.drain().map(|(_, key_use)| key_use).collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(error) = self.registry.record_key_use(&batch).await {
            tracing::warn!(error = %error, keys = batch.len(), "could not record when keys were last used; retrying at the next flush");
            if let Ok(mut pending) = self.pending.lock() {
                for key_use in batch {
                    let entry = pending
                        .uses
                        .entry(key_use.key_id.clone())
                        .or_insert_with(|| key_use.clone());
                    entry.at = entry.at.max(key_use.at);
                }
            }
        }
    }

    /// Flushes every `interval` until the returned task is aborted.
    pub fn start_ticker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let recorder = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(recorder.interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                recorder.flush().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SubsecRound;
    use schemas::{AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};
    use store::memory::MemoryStore;

    #[tokio::test]
    async fn many_uses_become_one_write_per_key_per_flush() {
        let store = Arc::new(MemoryStore::new());
        let customer = Customer {
            customer_id: "c".into(),
            name: "n".into(),
            email: "e@example.com".into(),
            status: CustomerStatus::Active,
            created_at: Utc::now(),
            limits: Limits::default(),
        };
        let key = ApiKey {
            key_id: "key_1".into(),
            customer_id: "c".into(),
            token_hash: TokenHash::of("t"),
            status: KeyStatus::Active,
            created_at: Utc::now(),
            expires_at: None,
            last_used_at: None,
        };
        let audit = AuditEntry {
            audit_id: uuid::Uuid::now_v7(),
            at: Utc::now(),
            actor: "test".into(),
            action: "create".into(),
            customer_id: "c".into(),
            before: serde_json::Value::Null,
            after: serde_json::Value::Null,
        };
        store
            .create_customer(&customer, &key, &audit)
            .await
            .unwrap();
        let recorder = Arc::new(KeyUseRecorder::new(
            store.clone(),
            Duration::from_secs(3600),
        ));
        let latest = Utc::now().trunc_subsecs(3);
        for offset in (0..1_000).rev() {
            recorder.note(&key, latest - chrono::Duration::milliseconds(offset));
        }
        let stored = || async { store.keys_of_customer("c").await.unwrap()[0].last_used_at };
        assert_eq!(stored().await, None, "nothing is written before the flush");
        recorder.flush().await;
        assert_eq!(stored().await, Some(latest));
    }
}
