//! `AdminCredentials` on SQLite: the `admin_credentials` table (names and token hashes
//! unique); every change writes its `audit_log` row in its own transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use schemas::{AdminCredential, AdminRole, AuditEntry, TokenHash};

use super::EmbeddedStore;
use super::registry::{AuditRow, corrupt_text, timestamp};
use crate::admin_credentials::AdminCredentials;
use crate::{Result, StoreError};

const COLUMNS: &str = "name, role, token_hash, created_at_ms, revoked_at_ms";

fn credential_from_row(row: &Row<'_>) -> rusqlite::Result<AdminCredential> {
    let role: String = row.get(1)?;
    Ok(AdminCredential {
        name: row.get(0)?,
        role: AdminRole::parse(&role).ok_or_else(|| corrupt_text(1, "admin role", &role))?,
        token_hash: TokenHash::from_stored(row.get(2)?),
        created_at: timestamp(row.get(3)?)?,
        revoked_at: row.get::<_, Option<i64>>(4)?.map(timestamp).transpose()?,
    })
}

#[async_trait]
impl AdminCredentials for EmbeddedStore {
    async fn create_admin_credential(
        &self,
        credential: &AdminCredential,
        audit: &AuditEntry,
    ) -> Result<()> {
        let credential = credential.clone();
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let name_taken: Option<i64> = transaction
                .query_row(
                    "SELECT 1 FROM admin_credentials WHERE name = ?1",
                    params![credential.name],
                    |row| row.get(0),
                )
                .optional()?;
            if name_taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "an admin credential named {} exists; names are never reused, choose another",
                    credential.name
                )));
            }
            let inserted = transaction.execute(
                &format!("INSERT INTO admin_credentials ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    credential.name,
                    credential.role.as_str(),
                    credential.token_hash.as_str(),
                    credential.created_at.timestamp_millis(),
                    credential.revoked_at.map(|at| at.timestamp_millis()),
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(error)
                    if error.sqlite_error_code()
                        == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                {
                    return Err(StoreError::Conflict(
                        "that admin token is already in use; generate another".into(),
                    ));
                }
                Err(error) => return Err(error.into()),
            }
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn admin_credential_by_hash(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<AdminCredential>> {
        let token_hash = token_hash.clone();
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM admin_credentials WHERE token_hash = ?1"
            ))?;
            Ok(select
                .query_row(params![token_hash.as_str()], credential_from_row)
                .optional()?)
        })
        .await
    }

    async fn admin_credentials(&self) -> Result<Vec<AdminCredential>> {
        self.with_connection(|connection| {
            let mut select = connection.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM admin_credentials ORDER BY name"
            ))?;
            let rows = select.query_map([], credential_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn revoke_admin_credential(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<AdminCredential> {
        let name = name.to_owned();
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = transaction.execute(
                "UPDATE admin_credentials SET revoked_at_ms = coalesce(revoked_at_ms, ?2)
                 WHERE name = ?1",
                params![name, at.timestamp_millis()],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found(format!("admin credential {name}")));
            }
            let revoked = transaction.query_row(
                &format!("SELECT {COLUMNS} FROM admin_credentials WHERE name = ?1"),
                params![name],
                credential_from_row,
            )?;
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(revoked)
        })
        .await
    }
}
