//! In-memory backends for tests: one `MemoryStore` implements every port, with the same
//! contracts as the durable backends (it passes the same contract suites).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::plan::{Plan, PlanAssignment};
use schemas::quota::Level;
use schemas::usage_counts::{aggregate_events, aggregate_hourly};
use schemas::{
    ApiKey, AuditEntry, CounterKey, Customer, CustomerStatus, DailyUsage, HourlyUsage, KeyStatus,
    Limits, TokenHash, UsageCounts,
};
use uuid::Uuid;

use crate::counters::{ApplyReport, Counters, SourcedEvent};
use crate::dedupe::classify_batch;
use crate::event_log::{AppendResult, EventLog, LogEntry, LogRecord, PartitionInfo, ReadBatch};
use crate::quotas::{QuotaAdjustment, QuotaCharge, Quotas, Reservation};
use crate::registry::{KeyUse, Registry};
use crate::watermarks::{SeqObservation, Watermarks, fold_observations};
use crate::{Result, StoreError};

/// Partition name of the memory log (it has one).
pub const MEMORY_PARTITION: &str = "0";

#[derive(Default)]
struct MemoryState {
    log: Vec<LogRecord>,
    checkpoints: HashMap<(String, String), String>,
    customers: BTreeMap<String, Customer>,
    keys: Vec<ApiKey>,
    dedupe_marks: HashMap<Uuid, String>,
    audit: Vec<AuditEntry>,
    cells: BTreeMap<CounterKey, UsageCounts>,
    hourly: BTreeMap<(String, DateTime<Utc>), UsageCounts>,
    quota_windows: HashMap<(String, String), Level>,
    progress: BTreeMap<String, schemas::watermark::InstanceProgress>,
    plans: BTreeMap<(String, u32), Plan>,
    assignments: BTreeMap<(String, NaiveDate), PlanAssignment>,
    alerts: Vec<schemas::alert::RecordedAlert>,
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

fn format_position(index: usize) -> String {
    format!("{index:020}")
}

fn parse_position(position: &str) -> Result<usize> {
    position
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("invalid memory log position {position:?}")))
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn append(&self, records: &[LogRecord]) -> Result<Vec<AppendResult>> {
        let mut state = self.state()?;
        let mut results = Vec::with_capacity(records.len());
        for record in records {
            state.log.push(record.clone());
            results.push(Ok(format_position(state.log.len())));
        }
        Ok(results)
    }

    async fn partitions(&self) -> Result<Vec<PartitionInfo>> {
        Ok(vec![PartitionInfo {
            id: MEMORY_PARTITION.to_owned(),
            parents: Vec::new(),
        }])
    }

    async fn read(
        &self,
        partition: &str,
        after: Option<&str>,
        max_records: usize,
    ) -> Result<ReadBatch> {
        if partition != MEMORY_PARTITION {
            return Err(StoreError::not_found(format!("partition {partition}")));
        }
        let start = after.map(parse_position).transpose()?.unwrap_or(0);
        let state = self.state()?;
        let entries = state
            .log
            .iter()
            .enumerate()
            .skip(start)
            .take(max_records)
            .map(|(index, record)| LogEntry {
                partition: MEMORY_PARTITION.to_owned(),
                position: format_position(index + 1),
                partition_key: record.partition_key.clone(),
                data: record.data.clone(),
            })
            .collect();
        Ok(ReadBatch {
            entries,
            end_of_partition: false,
        })
    }

    async fn load_checkpoint(&self, consumer: &str, partition: &str) -> Result<Option<String>> {
        Ok(self
            .state()?
            .checkpoints
            .get(&(consumer.to_owned(), partition.to_owned()))
            .cloned())
    }

    async fn commit_checkpoint(
        &self,
        consumer: &str,
        partition: &str,
        position: &str,
    ) -> Result<()> {
        self.state()?.checkpoints.insert(
            (consumer.to_owned(), partition.to_owned()),
            position.to_owned(),
        );
        Ok(())
    }
}

#[async_trait]
impl Registry for MemoryStore {
    async fn create_customer(
        &self,
        customer: &Customer,
        first_key: &ApiKey,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut state = self.state()?;
        if state.customers.contains_key(&customer.customer_id) {
            return Err(StoreError::Conflict(format!(
                "customer {} already exists",
                customer.customer_id
            )));
        }
        if state
            .keys
            .iter()
            .any(|key| key.token_hash == first_key.token_hash)
        {
            return Err(StoreError::Conflict("that token is already in use".into()));
        }
        state
            .customers
            .insert(customer.customer_id.clone(), customer.clone());
        state.keys.push(first_key.clone());
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn customer(&self, customer_id: &str) -> Result<Option<Customer>> {
        Ok(self.state()?.customers.get(customer_id).cloned())
    }

    async fn list_customers(&self) -> Result<Vec<Customer>> {
        let mut customers: Vec<Customer> = self.state()?.customers.values().cloned().collect();
        customers
            .sort_by(|a, b| (a.created_at, &a.customer_id).cmp(&(b.created_at, &b.customer_id)));
        Ok(customers)
    }

    async fn key_by_token_hash(&self, token_hash: &TokenHash) -> Result<Option<ApiKey>> {
        Ok(self
            .state()?
            .keys
            .iter()
            .find(|key| &key.token_hash == token_hash)
            .cloned())
    }

    async fn keys_of_customer(&self, customer_id: &str) -> Result<Vec<ApiKey>> {
        Ok(self
            .state()?
            .keys
            .iter()
            .filter(|key| key.customer_id == customer_id)
            .cloned()
            .collect())
    }

    async fn replace_keys(
        &self,
        new_key: &ApiKey,
        retire_old_keys_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut state = self.state()?;
        if !state.customers.contains_key(&new_key.customer_id) {
            return Err(StoreError::not_found(format!(
                "customer {}",
                new_key.customer_id
            )));
        }
        if state
            .keys
            .iter()
            .any(|key| key.token_hash == new_key.token_hash)
        {
            return Err(StoreError::Conflict("that token is already in use".into()));
        }
        for key in state
            .keys
            .iter_mut()
            .filter(|key| key.customer_id == new_key.customer_id && key.status == KeyStatus::Active)
        {
            *key = key.retired(retire_old_keys_at);
        }
        state.keys.push(new_key.clone());
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn revoke_key(
        &self,
        customer_id: &str,
        key_id: &str,
        audit: &AuditEntry,
    ) -> Result<ApiKey> {
        let mut state = self.state()?;
        let key = state
            .keys
            .iter_mut()
            .find(|key| key.customer_id == customer_id && key.key_id == key_id)
            .ok_or_else(|| {
                StoreError::not_found(format!("key {key_id} of customer {customer_id}"))
            })?;
        *key = key.retired(None);
        let revoked = key.clone();
        state.audit.push(audit.clone());
        Ok(revoked)
    }

    async fn set_customer_status(
        &self,
        customer_id: &str,
        status: CustomerStatus,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut state = self.state()?;
        let customer = state
            .customers
            .get_mut(customer_id)
            .ok_or_else(|| StoreError::not_found(format!("customer {customer_id}")))?;
        customer.status = status;
        if status == CustomerStatus::Deleted {
            for key in state
                .keys
                .iter_mut()
                .filter(|key| key.customer_id == customer_id)
            {
                *key = key.retired(None);
            }
        }
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.state()?.audit.push(entry.clone());
        Ok(())
    }

    async fn audit_entries(&self, customer_id: Option<&str>) -> Result<Vec<AuditEntry>> {
        let mut entries: Vec<AuditEntry> = self
            .state()?
            .audit
            .iter()
            .filter(|entry| customer_id.is_none_or(|customer_id| entry.customer_id == customer_id))
            .cloned()
            .collect();
        entries.sort_by_key(|entry| (entry.at, entry.audit_id));
        Ok(entries)
    }

    async fn set_limits(
        &self,
        customer_id: &str,
        limits: &Limits,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut state = self.state()?;
        let customer = state
            .customers
            .get_mut(customer_id)
            .ok_or_else(|| StoreError::not_found(format!("customer {customer_id}")))?;
        customer.limits = limits.clone();
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn put_plan(&self, plan: &Plan, audit: &AuditEntry) -> Result<()> {
        let mut state = self.state()?;
        let key = (plan.id.clone(), plan.version);
        match state.plans.get(&key) {
            Some(stored) if stored == plan => return Ok(()),
            Some(_) => {
                return Err(StoreError::Conflict(format!(
                    "plan {} version {} is stored with other content; raise the version",
                    plan.id, plan.version
                )));
            }
            None => {}
        }
        state.plans.insert(key, plan.clone());
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn plan(&self, plan_id: &str, version: u32) -> Result<Option<Plan>> {
        Ok(self
            .state()?
            .plans
            .get(&(plan_id.to_owned(), version))
            .cloned())
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        Ok(self.state()?.plans.values().cloned().collect())
    }

    async fn assign_plan(&self, assignment: &PlanAssignment, audit: &AuditEntry) -> Result<()> {
        let mut state = self.state()?;
        if !state.customers.contains_key(&assignment.customer_id) {
            return Err(StoreError::not_found(format!(
                "customer {}",
                assignment.customer_id
            )));
        }
        if !state
            .plans
            .contains_key(&(assignment.plan_id.clone(), assignment.plan_version))
        {
            return Err(StoreError::not_found(format!(
                "plan {} version {}",
                assignment.plan_id, assignment.plan_version
            )));
        }
        state.assignments.insert(
            (assignment.customer_id.clone(), assignment.effective_from),
            assignment.clone(),
        );
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn plan_assignments(&self, customer_id: &str) -> Result<Vec<PlanAssignment>> {
        Ok(self
            .state()?
            .assignments
            .values()
            .filter(|assignment| assignment.customer_id == customer_id)
            .cloned()
            .collect())
    }

    async fn record_key_use(&self, uses: &[KeyUse]) -> Result<()> {
        let mut state = self.state()?;
        for key_use in uses {
            if let Some(api_key) = state.keys.iter_mut().find(|api_key| {
                api_key.key_id == key_use.key_id && api_key.customer_id == key_use.customer_id
            }) && api_key.last_used_at.is_none_or(|last| last < key_use.at)
            {
                api_key.last_used_at = Some(key_use.at);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl crate::alerts::Alerts for MemoryStore {
    async fn record(&self, alert: &schemas::alert::Alert, at: DateTime<Utc>) -> Result<bool> {
        let mut state = self.state()?;
        let key = alert.key();
        if state
            .alerts
            .iter()
            .any(|recorded| recorded.alert.key() == key)
        {
            return Ok(false);
        }
        state.alerts.push(schemas::alert::RecordedAlert {
            raised_at: at,
            alert: alert.clone(),
        });
        Ok(true)
    }

    async fn since(&self, since: DateTime<Utc>) -> Result<Vec<schemas::alert::RecordedAlert>> {
        let mut alerts: Vec<_> = self
            .state()?
            .alerts
            .iter()
            .filter(|recorded| recorded.raised_at >= since)
            .cloned()
            .collect();
        alerts.sort_by_key(|recorded| recorded.raised_at);
        Ok(alerts)
    }
}

#[async_trait]
impl Watermarks for MemoryStore {
    async fn observe(&self, observations: &[SeqObservation]) -> Result<()> {
        let mut state = self.state()?;
        let updated = fold_observations(
            |instance| {
                state
                    .progress
                    .get(instance)
                    .cloned()
                    .unwrap_or_else(|| schemas::watermark::InstanceProgress::new(instance))
            },
            observations,
        );
        for progress in updated {
            state
                .progress
                .insert(progress.proxy_instance.clone(), progress);
        }
        Ok(())
    }

    async fn progress(&self) -> Result<Vec<schemas::watermark::InstanceProgress>> {
        Ok(self.state()?.progress.values().cloned().collect())
    }
}

#[async_trait]
impl Quotas for MemoryStore {
    async fn reserve(&self, customer_id: &str, charges: &[QuotaCharge]) -> Result<Reservation> {
        let mut state = self.state()?;
        let key = |window: &str| (customer_id.to_owned(), window.to_owned());
        let levels: Vec<Level> = charges
            .iter()
            .map(|charge| {
                state
                    .quota_windows
                    .get(&key(&charge.window))
                    .copied()
                    .unwrap_or_default()
            })
            .collect();
        if let Some(refused) = charges
            .iter()
            .zip(&levels)
            .position(|(charge, level)| !charge.fits(*level))
        {
            return Ok(Reservation::Refused { refused, levels });
        }
        let mut after = Vec::with_capacity(charges.len());
        for charge in charges {
            let level = state.quota_windows.entry(key(&charge.window)).or_default();
            level.requests = level.requests.saturating_add(charge.requests);
            level.tokens = level.tokens.saturating_add(charge.tokens);
            after.push(*level);
        }
        Ok(Reservation::Granted(after))
    }

    async fn adjust(&self, customer_id: &str, adjustments: &[QuotaAdjustment]) -> Result<()> {
        let mut state = self.state()?;
        for adjustment in adjustments {
            let level = state
                .quota_windows
                .entry((customer_id.to_owned(), adjustment.window.clone()))
                .or_default();
            level.tokens = level.tokens.saturating_add_signed(adjustment.tokens);
        }
        Ok(())
    }

    async fn levels(&self, customer_id: &str, windows: &[String]) -> Result<Vec<Level>> {
        let state = self.state()?;
        Ok(windows
            .iter()
            .map(|window| {
                state
                    .quota_windows
                    .get(&(customer_id.to_owned(), window.clone()))
                    .copied()
                    .unwrap_or_default()
            })
            .collect())
    }
}

#[async_trait]
impl Counters for MemoryStore {
    async fn apply(&self, events: &[SourcedEvent]) -> Result<ApplyReport> {
        let mut state = self.state()?;
        let classified = classify_batch(events, &state.dedupe_marks);
        for sourced in classified.new_marks() {
            state
                .dedupe_marks
                .insert(sourced.event.event_id, sourced.source.clone());
        }
        for (key, counts) in aggregate_hourly(classified.counted_events()) {
            state.hourly.entry(key).or_default().add(&counts);
        }
        for (key, counts) in aggregate_events(classified.counted_events()) {
            state.cells.entry(key).or_default().add(&counts);
        }
        Ok(classified.report())
    }

    async fn read_daily(
        &self,
        customer_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUsage>> {
        let state = self.state()?;
        let mut usage: Vec<DailyUsage> = state
            .cells
            .iter()
            .filter(|(key, _)| key.customer_id == customer_id && key.day >= from && key.day <= to)
            .map(|(key, counts)| DailyUsage {
                day: key.day,
                model_id: key.model_id.clone(),
                counts: *counts,
            })
            .collect();
        usage.sort_by(|a, b| (a.day, &a.model_id).cmp(&(b.day, &b.model_id)));
        Ok(usage)
    }

    async fn read_hourly(
        &self,
        customer_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlyUsage>> {
        if from > to {
            return Ok(Vec::new());
        }
        let state = self.state()?;
        Ok(state
            .hourly
            .range((customer_id.to_owned(), from)..=(customer_id.to_owned(), to))
            .map(|((_, hour), counts)| HourlyUsage {
                hour: *hour,
                counts: *counts,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[tokio::test]
    async fn memory_event_log_contract() {
        contract::event_log::run_all(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_registry_contract() {
        contract::registry::run_all(&MemoryStore::new()).await;
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
