//! The `AdminCredentials` port: the operator's named admin credentials (admin API and
//! console), by name and by token hash. Only hashes are stored.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::{AdminCredential, AuditEntry, TokenHash};

use crate::Result;

/// Named admin credentials, each with a role; several live at once, each revocable.
///
/// Contracts every backend keeps:
/// - A name is unique for ever: creating a name that exists, live or revoked, is
///   `Conflict`, so the audit actor `admin-api:<name>` always names one credential.
/// - A token hash is unique: a second credential with the same hash is `Conflict`.
/// - Every change takes its `AuditEntry` and writes it into the registry's audit trail in
///   the same atomic change: if the change fails, no entry is written.
/// - A revoked credential is still returned by its hash (with `revoked_at` set), so a
///   caller can tell "revoked" from "unknown"; it authenticates nothing.
#[async_trait]
pub trait AdminCredentials: Send + Sync {
    /// Stores a new credential. `Conflict` if the name or the hash exists.
    async fn create_admin_credential(
        &self,
        credential: &AdminCredential,
        audit: &AuditEntry,
    ) -> Result<()>;

    /// The credential with this token hash, live or revoked, or `None`.
    async fn admin_credential_by_hash(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<AdminCredential>>;

    /// Every credential, live and revoked, by name.
    async fn admin_credentials(&self) -> Result<Vec<AdminCredential>>;

    /// Revokes a credential at `at` and returns it as stored now. `NotFound` for an unknown
    /// name. Revoking a revoked credential keeps its first revocation time (the audit entry
    /// is still written).
    async fn revoke_admin_credential(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<AdminCredential>;
}
