//! `IdempotencyKeys` in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::idempotency::{Claim, IdempotencyKeys, IdempotencyRecord, expired};
use crate::{Result, StoreError};

#[async_trait]
impl IdempotencyKeys for MemoryStore {
    async fn claim(&self, lookup: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim> {
        let mut state = self.state()?;
        if let Some(record) = state.idempotency.get(lookup)
            && !expired(record.created_at, now)
        {
            return Ok(Claim::Existing(record.clone()));
        }
        state.idempotency.insert(
            lookup.to_owned(),
            IdempotencyRecord {
                lookup: lookup.to_owned(),
                request_hash: request_hash.to_owned(),
                created_at: now,
                answer: None,
            },
        );
        Ok(Claim::Claimed)
    }

    async fn complete(&self, lookup: &str, status: u16, sealed: &[u8]) -> Result<()> {
        let mut state = self.state()?;
        match state.idempotency.get_mut(lookup) {
            Some(record) if record.answer.is_none() => {
                record.answer = Some((status, sealed.to_vec()));
                Ok(())
            }
            _ => Err(StoreError::not_found(format!("idempotency claim {lookup}"))),
        }
    }

    async fn release(&self, lookup: &str) -> Result<()> {
        let mut state = self.state()?;
        if state
            .idempotency
            .get(lookup)
            .is_some_and(|record| record.answer.is_none())
        {
            state.idempotency.remove(lookup);
        }
        Ok(())
    }
}
