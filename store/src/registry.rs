//! The `Registry` port: customers, their keys, their limits and the audit trail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::{ApiKey, AuditEntry, Customer, CustomerStatus, Limits, TokenHash};

use crate::Result;

/// Customers, keys, limits and the audit trail (plans are the [`crate::Plans`] port).
///
/// Contracts every backend keeps:
/// - Token hashes are unique across all keys of all customers; a duplicate is `Conflict`.
/// - `create_customer` writes the customer and its first key atomically.
/// - Every audited change (`create_customer`, `replace_keys`, `revoke_key`,
///   `set_customer_status`, `set_limits`) takes its `AuditEntry` and writes it in the same
///   atomic change: if the change fails, no entry is written.
/// - Lookups return `Ok(None)` when the record is absent; mutations of an absent customer
///   return `NotFound`.
/// - `list_customers` orders by creation time, then id.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Creates a customer with its first key. `Conflict` if the id or token hash exists.
    ///
    /// The audit entry is written in the same atomic change; if the change fails, no entry
    /// is written.
    async fn create_customer(
        &self,
        customer: &Customer,
        first_key: &ApiKey,
        audit: &AuditEntry,
    ) -> Result<()>;

    /// One customer, or `None`.
    async fn customer(&self, customer_id: &str) -> Result<Option<Customer>>;

    /// Every customer.
    async fn list_customers(&self) -> Result<Vec<Customer>>;

    /// The key with this token hash, whatever its status, or `None`.
    async fn key_by_token_hash(&self, token_hash: &TokenHash) -> Result<Option<ApiKey>>;

    /// Every key of a customer, oldest first.
    async fn keys_of_customer(&self, customer_id: &str) -> Result<Vec<ApiKey>>;

    /// Adds `new_key` and retires every other active key of its customer, atomically:
    /// revoked at once when `retire_old_keys_at` is `None`, otherwise left active until that
    /// time (an earlier expiry is kept). `NotFound` if the customer is absent, `Conflict`
    /// if the token hash is in use.
    ///
    /// The audit entry is written in the same atomic change; if the change fails, no entry
    /// is written.
    async fn replace_keys(
        &self,
        new_key: &ApiKey,
        retire_old_keys_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
    ) -> Result<()>;

    /// Revokes one key of a customer and returns it as stored now. `NotFound` if the
    /// customer has no key with that id. Revoking a revoked key changes nothing (but its
    /// audit entry is still written).
    ///
    /// The audit entry is written in the same atomic change; if the change fails, no entry
    /// is written.
    async fn revoke_key(
        &self,
        customer_id: &str,
        key_id: &str,
        audit: &AuditEntry,
    ) -> Result<ApiKey>;

    /// Sets a customer's status. Setting `Deleted` also revokes every key of the customer;
    /// the customer record and its usage stay. `NotFound` if the customer is absent.
    ///
    /// The audit entry is written in the same atomic change; if the change fails, no entry
    /// is written.
    async fn set_customer_status(
        &self,
        customer_id: &str,
        status: CustomerStatus,
        audit: &AuditEntry,
    ) -> Result<()>;

    /// Records an administrative action on its own. Entries are never changed or removed.
    /// Audited changes take their entry themselves; this is for actions that change nothing
    /// else.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;

    /// The audit trail, oldest first; only one customer's when `customer_id` is given.
    async fn audit_entries(&self, customer_id: Option<&str>) -> Result<Vec<AuditEntry>>;

    /// Replaces a customer's limits. `NotFound` if the customer is absent.
    ///
    /// The audit entry is written in the same atomic change; if the change fails, no entry
    /// is written.
    async fn set_limits(
        &self,
        customer_id: &str,
        limits: &Limits,
        audit: &AuditEntry,
    ) -> Result<()>;

    /// Replaces a customer's name and email. `NotFound` if the customer is absent.
    ///
    /// The audit entry is written in the same atomic change; if the change fails, no entry
    /// is written.
    async fn set_profile(
        &self,
        customer_id: &str,
        name: &str,
        email: &str,
        audit: &AuditEntry,
    ) -> Result<()>;

    /// Records when keys were last used. A key's `last_used_at` only moves forward (an
    /// older time than the stored one changes nothing); unknown keys are skipped.
    async fn record_key_use(&self, uses: &[KeyUse]) -> Result<()>;
}

/// One key's most recent use, as the proxy reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub customer_id: String,
    pub key_id: String,
    pub token_hash: TokenHash,
    pub at: DateTime<Utc>,
}
