//! `Registry` in memory: customers, keys, limits and the audit trail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};

use super::MemoryStore;
use crate::registry::{KeyUse, Registry};
use crate::{Result, StoreError};

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

    async fn set_profile(
        &self,
        customer_id: &str,
        name: &str,
        email: &str,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut state = self.state()?;
        let customer = state
            .customers
            .get_mut(customer_id)
            .ok_or_else(|| StoreError::not_found(format!("customer {customer_id}")))?;
        name.clone_into(&mut customer.name);
        email.clone_into(&mut customer.email);
        state.audit.push(audit.clone());
        Ok(())
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
