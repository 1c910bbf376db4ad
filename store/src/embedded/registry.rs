//! `Registry` on SQLite: `customers`, `api_keys` and `audit_log` tables; token hashes are
//! unique, and every audited change writes its `audit_log` row in its own transaction.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, Row, params};
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, KeyStatus, Limits, TokenHash};

use super::EmbeddedStore;
use crate::registry::{KeyUse, Registry};
use crate::{Result, StoreError};

const CUSTOMER_COLUMNS: &str = "customer_id, name, email, status, created_at_ms, limits_json";
const KEY_COLUMNS: &str =
    "key_id, customer_id, token_hash, status, created_at_ms, expires_at_ms, last_used_at_ms";

pub(super) fn timestamp(millis: i64) -> rusqlite::Result<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, millis))
}

pub(super) fn corrupt_text(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    let status: String = row.get(3)?;
    let limits_json: String = row.get(5)?;
    Ok(Customer {
        customer_id: row.get(0)?,
        name: row.get(1)?,
        email: row.get(2)?,
        status: CustomerStatus::parse(&status)
            .ok_or_else(|| corrupt_text(3, "customer status", &status))?,
        created_at: timestamp(row.get(4)?)?,
        limits: serde_json::from_str::<Limits>(&limits_json).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, error.into())
        })?,
    })
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let status: String = row.get(3)?;
    Ok(ApiKey {
        key_id: row.get(0)?,
        customer_id: row.get(1)?,
        token_hash: TokenHash::from_stored(row.get(2)?),
        status: KeyStatus::parse(&status).ok_or_else(|| corrupt_text(3, "key status", &status))?,
        created_at: timestamp(row.get(4)?)?,
        expires_at: row.get::<_, Option<i64>>(5)?.map(timestamp).transpose()?,
        last_used_at: row.get::<_, Option<i64>>(6)?.map(timestamp).transpose()?,
    })
}

fn limits_json(limits: &Limits) -> Result<String> {
    serde_json::to_string(limits).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn insert_key(transaction: &rusqlite::Transaction<'_>, key: &ApiKey) -> Result<()> {
    let inserted = transaction.execute(
        &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            key.key_id,
            key.customer_id,
            key.token_hash.as_str(),
            key.status.as_str(),
            key.created_at.timestamp_millis(),
            key.expires_at.map(|expires| expires.timestamp_millis()),
            key.last_used_at.map(|used| used.timestamp_millis()),
        ],
    );
    match inserted {
        Ok(_) => Ok(()),
        Err(error)
            if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
        {
            Err(StoreError::Conflict(
                "that token or key id is already in use".into(),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// The keys matching `condition` (over `api_keys`, with `values`), read in a transaction.
fn select_keys(
    transaction: &rusqlite::Transaction<'_>,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<ApiKey>> {
    let mut select = transaction.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE {condition} ORDER BY created_at_ms, key_id"
    ))?;
    let rows = select.query_map(values, key_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Retires `keys` as [`ApiKey::retired`] decides (revoked at once when `at` is `None`,
/// otherwise expiring at `at` unless they expire earlier) and writes each back; returns
/// them as stored now.
fn retire_keys(
    transaction: &rusqlite::Transaction<'_>,
    keys: Vec<ApiKey>,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<ApiKey>> {
    let mut update = transaction.prepare_cached(
        "UPDATE api_keys SET status = ?1, expires_at_ms = ?2 WHERE key_id = ?3 AND customer_id = ?4",
    )?;
    let mut retired_keys = Vec::with_capacity(keys.len());
    for key in keys {
        let retired = key.retired(at);
        update.execute(params![
            retired.status.as_str(),
            retired.expires_at.map(|expires| expires.timestamp_millis()),
            retired.key_id,
            retired.customer_id,
        ])?;
        retired_keys.push(retired);
    }
    Ok(retired_keys)
}

/// An audit entry ready for the `audit_log` table: serialized before any connection is used.
pub(super) struct AuditRow {
    audit_id: String,
    at_ms: i64,
    customer_id: String,
    json: String,
}

impl AuditRow {
    pub(super) fn of(entry: &AuditEntry) -> Result<Self> {
        Ok(Self {
            audit_id: entry.audit_id.to_string(),
            at_ms: entry.at.timestamp_millis(),
            customer_id: entry.customer_id.clone(),
            json: serde_json::to_string(entry)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        })
    }

    /// Inserts the entry; inside a transaction, it commits or rolls back with the change.
    pub(super) fn insert(&self, connection: &rusqlite::Connection) -> Result<()> {
        let inserted = connection.execute(
            "INSERT INTO audit_log (audit_id, at_ms, customer_id, entry_json) VALUES (?1, ?2, ?3, ?4)",
            params![self.audit_id, self.at_ms, self.customer_id, self.json],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                Err(StoreError::Conflict(format!(
                    "audit entry {} already exists",
                    self.audit_id
                )))
            }
            Err(error) => Err(error.into()),
        }
    }
}

impl EmbeddedStore {
    /// Runs `statement` (`?1` the customer id, then `values`) on one customer's row with
    /// its audit row, in one transaction. `NotFound` if no row changed.
    async fn update_customer(
        &self,
        customer_id: &str,
        statement: &'static str,
        values: Vec<String>,
        audit: &AuditEntry,
    ) -> Result<()> {
        let customer_id = customer_id.to_owned();
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut parameters: Vec<&dyn rusqlite::ToSql> = vec![&customer_id];
            parameters.extend(values.iter().map(|value| value as &dyn rusqlite::ToSql));
            let updated = transaction.execute(statement, parameters.as_slice())?;
            if updated == 0 {
                return Err(StoreError::not_found(format!("customer {customer_id}")));
            }
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Registry for EmbeddedStore {
    async fn create_customer(
        &self,
        customer: &Customer,
        first_key: &ApiKey,
        audit: &AuditEntry,
    ) -> Result<()> {
        let (customer, first_key) = (customer.clone(), first_key.clone());
        let limits = limits_json(&customer.limits)?;
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let inserted = transaction.execute(
                &format!(
                    "INSERT INTO customers ({CUSTOMER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![
                    customer.customer_id,
                    customer.name,
                    customer.email,
                    customer.status.as_str(),
                    customer.created_at.timestamp_millis(),
                    limits,
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(error)
                    if error.sqlite_error_code()
                        == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                {
                    return Err(StoreError::Conflict(format!(
                        "customer {} already exists",
                        customer.customer_id
                    )));
                }
                Err(error) => return Err(error.into()),
            }
            insert_key(&transaction, &first_key)?;
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn customer(&self, customer_id: &str) -> Result<Option<Customer>> {
        let customer_id = customer_id.to_owned();
        self.with_connection(move |connection| {
            Ok(connection
                .query_row(
                    &format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE customer_id = ?1"),
                    params![customer_id],
                    customer_from_row,
                )
                .optional()?)
        })
        .await
    }

    async fn list_customers(&self) -> Result<Vec<Customer>> {
        self.with_connection(|connection| {
            let mut select = connection.prepare_cached(&format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY created_at_ms, customer_id"
            ))?;
            let rows = select.query_map([], customer_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn key_by_token_hash(&self, token_hash: &TokenHash) -> Result<Option<ApiKey>> {
        let token_hash = token_hash.clone();
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = ?1"
            ))?;
            Ok(select
                .query_row(params![token_hash.as_str()], key_from_row)
                .optional()?)
        })
        .await
    }

    async fn keys_of_customer(&self, customer_id: &str) -> Result<Vec<ApiKey>> {
        let customer_id = customer_id.to_owned();
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE customer_id = ?1 ORDER BY created_at_ms, key_id"
            ))?;
            let rows = select.query_map(params![customer_id], key_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn replace_keys(
        &self,
        new_key: &ApiKey,
        retire_old_keys_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
    ) -> Result<()> {
        let new_key = new_key.clone();
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let exists: Option<i64> = transaction
                .query_row(
                    "SELECT 1 FROM customers WHERE customer_id = ?1",
                    params![new_key.customer_id],
                    |row| row.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::not_found(format!(
                    "customer {}",
                    new_key.customer_id
                )));
            }
            let active_keys = select_keys(
                &transaction,
                "customer_id = ?1 AND status = ?2",
                params![new_key.customer_id, KeyStatus::Active.as_str()],
            )?;
            retire_keys(&transaction, active_keys, retire_old_keys_at)?;
            insert_key(&transaction, &new_key)?;
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn revoke_key(
        &self,
        customer_id: &str,
        key_id: &str,
        audit: &AuditEntry,
    ) -> Result<ApiKey> {
        let (customer_id, key_id) = (customer_id.to_owned(), key_id.to_owned());
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let key = select_keys(
                &transaction,
                "customer_id = ?1 AND key_id = ?2",
                params![customer_id, key_id],
            )?;
            let Some(revoked) = retire_keys(&transaction, key, None)?.pop() else {
                return Err(StoreError::not_found(format!(
                    "key {key_id} of customer {customer_id}"
                )));
            };
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(revoked)
        })
        .await
    }

    async fn set_customer_status(
        &self,
        customer_id: &str,
        status: CustomerStatus,
        audit: &AuditEntry,
    ) -> Result<()> {
        let customer_id = customer_id.to_owned();
        let audit = AuditRow::of(audit)?;
        self.with_connection(move |connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let updated = transaction.execute(
                "UPDATE customers SET status = ?1 WHERE customer_id = ?2",
                params![status.as_str(), customer_id],
            )?;
            if updated == 0 {
                return Err(StoreError::not_found(format!("customer {customer_id}")));
            }
            if status == CustomerStatus::Deleted {
                let keys = select_keys(&transaction, "customer_id = ?1", params![customer_id])?;
                retire_keys(&transaction, keys, None)?;
            }
            audit.insert(&transaction)?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let audit = AuditRow::of(entry)?;
        self.with_connection(move |connection| audit.insert(connection))
            .await
    }

    async fn audit_entries(&self, customer_id: Option<&str>) -> Result<Vec<AuditEntry>> {
        let customer_id = customer_id.map(str::to_owned);
        self.with_connection(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT entry_json FROM audit_log WHERE ?1 IS NULL OR customer_id = ?1 ORDER BY at_ms, audit_id",
            )?;
            let rows = select.query_map(params![customer_id], |row| row.get::<_, String>(0))?;
            let mut entries = Vec::new();
            for row in rows {
                let json = row?;
                entries.push(
                    serde_json::from_str(&json).map_err(|error| StoreError::Corrupt(format!("audit entry: {error}")))?,
                );
            }
            Ok(entries)
        })
        .await
    }

    async fn set_limits(
        &self,
        customer_id: &str,
        limits: &Limits,
        audit: &AuditEntry,
    ) -> Result<()> {
        let limits = limits_json(limits)?;
        self.update_customer(
            customer_id,
            "UPDATE customers SET limits_json = ?2 WHERE customer_id = ?1",
            vec![limits],
            audit,
        )
        .await
    }

    async fn set_profile(
        &self,
        customer_id: &str,
        name: &str,
        email: &str,
        audit: &AuditEntry,
    ) -> Result<()> {
        self.update_customer(
            customer_id,
            "UPDATE customers SET name = ?2, email = ?3 WHERE customer_id = ?1",
            vec![name.to_owned(), email.to_owned()],
            audit,
        )
        .await
    }

    async fn record_key_use(&self, uses: &[KeyUse]) -> Result<()> {
        let uses = uses.to_vec();
        self.with_connection(move |connection| {
            let transaction = connection.transaction()?;
            for key_use in &uses {
                transaction.execute(
                    "UPDATE api_keys SET last_used_at_ms = ?1
                     WHERE key_id = ?2 AND customer_id = ?3
                       AND (last_used_at_ms IS NULL OR last_used_at_ms < ?1)",
                    params![
                        key_use.at.timestamp_millis(),
                        key_use.key_id,
                        key_use.customer_id
                    ],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }
}
