//! The `Plans` port: the plan catalogue (immutable plan versions) and each customer's plan
//! assignments by date.

use async_trait::async_trait;
use schemas::AuditEntry;
use schemas::plan::{Plan, PlanAssignment};

use crate::Result;

/// Pricing plans and their assignment to customers.
///
/// Contracts every backend keeps:
/// - A plan version is immutable: storing the same id and version again with the same
///   content changes nothing; with other content it is `Conflict`.
/// - An assignment names a stored plan version and an existing customer (of the registry
///   the backend shares its storage with); otherwise `NotFound`.
/// - Every change takes its `AuditEntry` and writes it into the registry's audit trail in
///   the same atomic change: if the change fails, no entry is written.
/// - Lookups return `Ok(None)` (or an empty list) when nothing is stored.
#[async_trait]
pub trait Plans: Send + Sync {
    /// Stores a plan version. Storing the same id and version again with the same content
    /// changes nothing; with other content it is `Conflict` (versions are immutable).
    async fn put_plan(&self, plan: &Plan, audit: &AuditEntry) -> Result<()>;

    /// One plan version, or `None`.
    async fn plan(&self, plan_id: &str, version: u32) -> Result<Option<Plan>>;

    /// Every stored plan version, by id then version.
    async fn plans(&self) -> Result<Vec<Plan>>;

    /// Assigns a stored plan to a customer from a date on; replaces an assignment with the
    /// same date. `NotFound` if the customer or the plan version is absent.
    async fn assign_plan(&self, assignment: &PlanAssignment, audit: &AuditEntry) -> Result<()>;

    /// A customer's plan assignments, by effective date.
    async fn plan_assignments(&self, customer_id: &str) -> Result<Vec<PlanAssignment>>;
}
