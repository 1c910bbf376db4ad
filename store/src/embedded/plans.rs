//! `Plans` on SQLite: the `plans` and `plan_assignments` tables; every change writes its
//! `audit_log` row in its own transaction.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use schemas::AuditEntry;
use schemas::plan::{Plan, PlanAssignment};

use super::EmbeddedStore;
use super::registry::AuditRow;
use crate::plans::Plans;
use crate::{Result, StoreError};

#[async_trait]
impl Plans for EmbeddedStore {
    async fn put_plan(&self, plan: &Plan, audit: &AuditEntry) -> Result<()> {
        let json =
            serde_json::to_string(plan).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let (plan_id, version) = (plan.id.clone(), plan.version);
        let wanted = plan.clone();
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let stored: Option<String> = transaction
                .query_row(
                    "SELECT plan_json FROM plans WHERE plan_id = ?1 AND version = ?2",
                    params![plan_id, version],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(stored) = stored {
                let stored: Plan = serde_json::from_str(&stored)
                    .map_err(|error| StoreError::Corrupt(format!("stored plan: {error}")))?;
                if stored == wanted {
                    return Ok(());
                }
                return Err(StoreError::Conflict(format!(
                    "plan {plan_id} version {version} is stored with other content; raise the version"
                )));
            }
            transaction.execute(
                "INSERT INTO plans (plan_id, version, plan_json) VALUES (?1, ?2, ?3)",
                params![plan_id, version, json],
            )?;
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn plan(&self, plan_id: &str, version: u32) -> Result<Option<Plan>> {
        let plan_id = plan_id.to_owned();
        self.with_connection(move |connection| {
            let stored: Option<String> = connection
                .query_row(
                    "SELECT plan_json FROM plans WHERE plan_id = ?1 AND version = ?2",
                    params![plan_id, version],
                    |row| row.get(0),
                )
                .optional()?;
            stored
                .map(|json| {
                    serde_json::from_str(&json)
                        .map_err(|error| StoreError::Corrupt(format!("stored plan: {error}")))
                })
                .transpose()
        })
        .await
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        self.with_connection(|connection| {
            let mut select = connection
                .prepare_cached("SELECT plan_json FROM plans ORDER BY plan_id, version")?;
            let rows = select.query_map([], |row| row.get::<_, String>(0))?;
            let mut plans = Vec::new();
            for row in rows {
                plans.push(
                    serde_json::from_str(&row?)
                        .map_err(|error| StoreError::Corrupt(format!("stored plan: {error}")))?,
                );
            }
            Ok(plans)
        })
        .await
    }

    async fn assign_plan(&self, assignment: &PlanAssignment, audit: &AuditEntry) -> Result<()> {
        let assignment = assignment.clone();
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let customer: Option<i64> = transaction
                .query_row(
                    "SELECT 1 FROM customers WHERE customer_id = ?1",
                    params![assignment.customer_id],
                    |row| row.get(0),
                )
                .optional()?;
            if customer.is_none() {
                return Err(StoreError::not_found(format!(
                    "customer {}",
                    assignment.customer_id
                )));
            }
            let plan: Option<i64> = transaction
                .query_row(
                    "SELECT 1 FROM plans WHERE plan_id = ?1 AND version = ?2",
                    params![assignment.plan_id, assignment.plan_version],
                    |row| row.get(0),
                )
                .optional()?;
            if plan.is_none() {
                return Err(StoreError::not_found(format!(
                    "plan {} version {}",
                    assignment.plan_id, assignment.plan_version
                )));
            }
            transaction.execute(
                "INSERT INTO plan_assignments (customer_id, effective_from, plan_id, version)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (customer_id, effective_from) DO UPDATE SET
                    plan_id = excluded.plan_id, version = excluded.version",
                params![
                    assignment.customer_id,
                    assignment.effective_from.to_string(),
                    assignment.plan_id,
                    assignment.plan_version
                ],
            )?;
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn plan_assignments(&self, customer_id: &str) -> Result<Vec<PlanAssignment>> {
        let customer_id = customer_id.to_owned();
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT effective_from, plan_id, version FROM plan_assignments
                 WHERE customer_id = ?1 ORDER BY effective_from",
            )?;
            let rows = select.query_map(params![customer_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, u32>(2)?,
                ))
            })?;
            let mut assignments = Vec::new();
            for row in rows {
                let (effective_from, plan_id, plan_version) = row?;
                assignments.push(PlanAssignment {
                    customer_id: customer_id.clone(),
                    plan_id,
                    plan_version,
                    effective_from: effective_from.parse().map_err(|_| {
                        StoreError::Corrupt(format!("plan assignment date {effective_from:?}"))
                    })?,
                });
            }
            Ok(assignments)
        })
        .await
    }
}
