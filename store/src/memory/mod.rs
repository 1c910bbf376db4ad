//! In-memory backends for tests: one `MemoryStore` implements every port, with the same
//! contracts as the durable backends (it passes the same contract suites). One file per
//! port, as in `embedded/` and `aws/`.

mod admin_credentials;
mod alerts;
mod counters;
mod event_log;
mod idempotency;
mod plans;
mod quotas;
mod registry;
mod watermarks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use schemas::alert::RecordedAlert;
use schemas::plan::{Plan, PlanAssignment};
use schemas::quota::Level;
use schemas::watermark::InstanceProgress;
use schemas::{ApiKey, AuditEntry, CounterKey, Customer, UsageCounts};

use crate::event_log::LogRecord;
use crate::{Result, StoreError};

/// Partition name of the memory log (it has one).
pub const MEMORY_PARTITION: &str = "0";

#[derive(Default)]
struct MemoryState {
    log: Vec<LogRecord>,
    checkpoints: HashMap<(String, String), String>,
    customers: BTreeMap<String, Customer>,
    keys: Vec<ApiKey>,
    producer_seqs: HashMap<String, crate::dedupe::SeqRanges>,
    audit: Vec<AuditEntry>,
    cells: BTreeMap<CounterKey, UsageCounts>,
    hourly: BTreeMap<(String, DateTime<Utc>), UsageCounts>,
    quota_windows: HashMap<(String, String), Level>,
    progress: BTreeMap<String, InstanceProgress>,
    plans: BTreeMap<(String, u32), Plan>,
    assignments: BTreeMap<(String, NaiveDate), PlanAssignment>,
    alerts: Vec<RecordedAlert>,
    admin_credentials: BTreeMap<String, schemas::AdminCredential>,
    idempotency: HashMap<String, crate::idempotency::IdempotencyRecord>,
}

/// Every port, in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, MemoryState>> {
        self.state
            .lock()
            .map_err(|_| StoreError::Task("memory store lock poisoned".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[tokio::test]
    async fn memory_event_log_contracts() {
        let store = MemoryStore::new();
        contract::event_appender::run_all(&store).await;
        contract::event_reader::run_all(&store, &store).await;
        contract::checkpoints::run_all(&store, MEMORY_PARTITION).await;
    }

    #[tokio::test]
    async fn memory_registry_contract() {
        contract::registry::run_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_plans_contract() {
        let store = MemoryStore::new();
        contract::plans::run_all(&store, &store).await;
    }

    #[tokio::test]
    async fn memory_admin_credentials_contract() {
        let store = MemoryStore::new();
        contract::admin_credentials::run_all(&store, &store).await;
    }

    #[tokio::test]
    async fn memory_idempotency_contract() {
        contract::idempotency::run_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_alerts_contract() {
        crate::contract::alerts::run_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_watermarks_contract() {
        crate::contract::watermarks::run_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_quotas_contract() {
        crate::contract::quotas::run_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_counters_contract() {
        contract::counters::run_all(&MemoryStore::new()).await;
    }
}
