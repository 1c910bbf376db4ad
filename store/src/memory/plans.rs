//! `Plans` in memory: plan versions and assignments, checked against the customers.

use async_trait::async_trait;
use schemas::AuditEntry;
use schemas::plan::{Plan, PlanAssignment};

use super::MemoryStore;
use crate::plans::Plans;
use crate::{Result, StoreError};

#[async_trait]
impl Plans for MemoryStore {
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
}
