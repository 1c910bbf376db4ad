//! `IdempotencyKeys` on SQLite: the `idempotency_keys` table (schema v11). A claim is one
//! `INSERT … ON CONFLICT DO UPDATE … WHERE expired` in a transaction, so of concurrent
//! claims one inserts and the others read its row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::EmbeddedStore;
use super::registry::timestamp;
use crate::idempotency::{Claim, IDEMPOTENCY_RETENTION_HOURS, IdempotencyKeys, IdempotencyRecord};
use crate::{Result, StoreError};

#[async_trait]
impl IdempotencyKeys for EmbeddedStore {
    async fn claim(&self, lookup: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Claim> {
        let lookup = lookup.to_owned();
        let request_hash = request_hash.to_owned();
        self.with_connection(move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let expired_before =
                (now - chrono::Duration::hours(IDEMPOTENCY_RETENTION_HOURS)).timestamp_millis();
            // Forget what has expired, so the table holds about a day of keys.
            transaction.execute(
                "DELETE FROM idempotency_keys WHERE created_at_ms <= ?1",
                params![expired_before],
            )?;
            let existing = transaction
                .query_row(
                    "SELECT request_hash, created_at_ms, status, answer FROM idempotency_keys WHERE lookup = ?1",
                    params![lookup],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            timestamp(row.get(1)?)?,
                            row.get::<_, Option<u16>>(2)?,
                            row.get::<_, Option<Vec<u8>>>(3)?,
                        ))
                    },
                )
                .optional()?;
            if let Some((request_hash, created_at, status, answer)) = existing {
                return Ok(Claim::Existing(IdempotencyRecord {
                    lookup,
                    request_hash,
                    created_at,
                    answer: status.zip(answer),
                }));
            }
            transaction.execute(
                "INSERT INTO idempotency_keys (lookup, request_hash, created_at_ms) VALUES (?1, ?2, ?3)",
                params![lookup, request_hash, now.timestamp_millis()],
            )?;
            transaction.commit()?;
            Ok(Claim::Claimed)
        })
        .await
    }

    async fn complete(&self, lookup: &str, status: u16, sealed: &[u8]) -> Result<()> {
        let lookup = lookup.to_owned();
        let sealed = sealed.to_vec();
        self.with_connection(move |connection| {
            let changed = connection.execute(
                "UPDATE idempotency_keys SET status = ?2, answer = ?3 WHERE lookup = ?1 AND status IS NULL",
                params![lookup, status, sealed],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found(format!("idempotency claim {lookup}")));
            }
            Ok(())
        })
        .await
    }

    async fn release(&self, lookup: &str) -> Result<()> {
        let lookup = lookup.to_owned();
        self.with_connection(move |connection| {
            connection.execute(
                "DELETE FROM idempotency_keys WHERE lookup = ?1 AND status IS NULL",
                params![lookup],
            )?;
            Ok(())
        })
        .await
    }
}
