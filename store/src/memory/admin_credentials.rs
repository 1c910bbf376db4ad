//! `AdminCredentials` in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::{AdminCredential, AuditEntry, TokenHash};

use super::MemoryStore;
use crate::admin_credentials::AdminCredentials;
use crate::{Result, StoreError};

#[async_trait]
impl AdminCredentials for MemoryStore {
    async fn create_admin_credential(
        &self,
        credential: &AdminCredential,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut state = self.state()?;
        if state.admin_credentials.contains_key(&credential.name) {
            return Err(StoreError::Conflict(format!(
                "an admin credential named {} exists; names are never reused, choose another",
                credential.name
            )));
        }
        if state
            .admin_credentials
            .values()
            .any(|stored| stored.token_hash == credential.token_hash)
        {
            return Err(StoreError::Conflict(
                "that admin token is already in use; generate another".into(),
            ));
        }
        state
            .admin_credentials
            .insert(credential.name.clone(), credential.clone());
        state.audit.push(audit.clone());
        Ok(())
    }

    async fn admin_credential_by_hash(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<AdminCredential>> {
        Ok(self
            .state()?
            .admin_credentials
            .values()
            .find(|stored| stored.token_hash.matches(token_hash))
            .cloned())
    }

    async fn admin_credentials(&self) -> Result<Vec<AdminCredential>> {
        Ok(self.state()?.admin_credentials.values().cloned().collect())
    }

    async fn revoke_admin_credential(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<AdminCredential> {
        let mut state = self.state()?;
        let Some(stored) = state.admin_credentials.get_mut(name) else {
            return Err(StoreError::not_found(format!("admin credential {name}")));
        };
        stored.revoked_at.get_or_insert(at);
        let revoked = stored.clone();
        state.audit.push(audit.clone());
        Ok(revoked)
    }
}
