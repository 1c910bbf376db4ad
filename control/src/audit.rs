//! The audit trail: who acts ([`Actor`]), the entry each change writes in the same atomic
//! change as the change itself, and reading the trail back (`tollgate audit`).

use chrono::{SubsecRound, Utc};
use schemas::AuditEntry;
use store::Registry;

use crate::error::Result;
use crate::lookup::existing_customer;

/// Who performs an administrative action, as the audit trail records it. The CLI passes
/// `--actor`, `TOLLGATE_ACTOR` or the OS user; the admin API passes
/// [`Actor::admin_api`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// An operator by name, as given.
    pub fn operator(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// A caller of the admin API, by the name of the credential it presented:
    /// `admin-api:<credential name>`.
    pub fn admin_api(credential_name: &str) -> Self {
        Self(format!("admin-api:{credential_name}"))
    }

    /// The name recorded in audit entries.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `action` names audit entries carry.
pub mod actions {
    pub const CREATE: &str = "create";
    pub const ROTATE: &str = "rotate";
    pub const REVOKE: &str = "revoke";
    pub const LIMITS: &str = "limits";
    pub const ENABLE: &str = "enable";
    pub const DISABLE: &str = "disable";
    pub const DELETE: &str = "delete";
    pub const STORE_PLAN: &str = "plan";
    pub const ASSIGN_PLAN: &str = "assign-plan";
}

/// The audit entry of an administrative action, built before the change: the registry
/// writes it in the same atomic change, so a change is never made without its entry.
/// `subject` is a customer id, or `plan:<id>` for the plan catalogue.
pub(crate) fn audit_entry(
    actor: &Actor,
    action: &str,
    subject: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now().trunc_subsecs(3),
        actor: actor.as_str().to_owned(),
        action: action.to_owned(),
        customer_id: subject.to_owned(),
        before,
        after,
    }
}

/// The audit trail, oldest first: every entry, or one customer's (`NotFound` for an
/// unknown customer).
pub async fn audit_trail(
    registry: &dyn Registry,
    customer_id: Option<&str>,
) -> Result<Vec<AuditEntry>> {
    if let Some(customer_id) = customer_id {
        existing_customer(registry, customer_id).await?;
    }
    Ok(registry.audit_entries(customer_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use store::memory::MemoryStore;

    #[tokio::test]
    async fn each_change_writes_one_entry_with_the_callers_actor() {
        let store = MemoryStore::new();
        let issued = create_customer(
            &store,
            &operator(),
            NewCustomer::named("Acme", "a@acme.example"),
        )
        .await
        .unwrap();
        let api = Actor::admin_api("ops-console");
        crate::customers::disable_customer(&store, &api, &issued.customer_id)
            .await
            .unwrap();
        let trail = audit_trail(&store, Some(&issued.customer_id))
            .await
            .unwrap();
        let summary: Vec<(&str, &str)> = trail
            .iter()
            .map(|entry| (entry.actor.as_str(), entry.action.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("alice", actions::CREATE),
                ("admin-api:ops-console", actions::DISABLE)
            ]
        );
        assert_eq!(audit_trail(&store, None).await.unwrap().len(), 2);
        let unknown = audit_trail(&store, Some("nobody")).await.unwrap_err();
        assert!(matches!(unknown, crate::ControlError::NotFound { .. }));
    }
}
