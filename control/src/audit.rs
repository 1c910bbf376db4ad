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
    pub const PROFILE: &str = "profile";
    pub const ENABLE: &str = "enable";
    pub const DISABLE: &str = "disable";
    pub const DELETE: &str = "delete";
    pub const STORE_PLAN: &str = "plan";
    pub const ASSIGN_PLAN: &str = "assign-plan";
    pub const ADMIN_TOKEN: &str = "admin-token";
    pub const REVOKE_ADMIN_TOKEN: &str = "revoke-admin-token";
}

/// The audit entry of an administrative action, built before the change: the registry
/// writes it in the same atomic change, so a change is never made without its entry.
/// `subject` is a customer id, `plan:<id>` for the plan catalogue, or
/// `admin-credential:<name>` for an admin credential.
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

/// A page of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditPage {
    /// Oldest first.
    pub entries: Vec<AuditEntry>,
    /// Pass it back for the next page; `None` on the last page.
    pub next_token: Option<String>,
}

/// The largest audit page.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// The audit trail a page at a time, oldest first, from the `next_token` of the previous
/// page (the last entry's id: entries are UUIDv7, in time order, and never change).
pub async fn audit_page(
    registry: &dyn Registry,
    customer_id: Option<&str>,
    limit: Option<usize>,
    next_token: Option<&str>,
) -> Result<AuditPage> {
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(crate::ControlError::invalid(
            "limit",
            format!("limit {limit} is out of range; ask for 1 to {MAX_AUDIT_PAGE} entries a page"),
        ));
    }
    let after = next_token
        .map(|token| {
            uuid::Uuid::try_parse(token.trim()).map_err(|_| {
                crate::ControlError::invalid(
                    "next_token",
                    "next_token is not one this API returned; pass the next_token of the previous page unchanged",
                )
            })
        })
        .transpose()?;
    let trail = audit_trail(registry, customer_id).await?;
    let start = after.map_or(0, |after| {
        trail
            .iter()
            .position(|entry| entry.audit_id == after)
            .map_or_else(
                || trail.partition_point(|entry| entry.audit_id <= after),
                |index| index + 1,
            )
    });
    let entries: Vec<AuditEntry> = trail.iter().skip(start).take(limit).cloned().collect();
    let next_token = (start + entries.len() < trail.len())
        .then(|| entries.last().map(|entry| entry.audit_id.to_string()))
        .flatten();
    Ok(AuditPage {
        entries,
        next_token,
    })
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
        let first = audit_page(&store, None, Some(1), None).await.unwrap();
        assert_eq!(first.entries, trail[..1]);
        let second = audit_page(&store, None, Some(1), first.next_token.as_deref())
            .await
            .unwrap();
        assert_eq!(second.entries, trail[1..]);
        assert_eq!(second.next_token, None);
        for (limit, token) in [(Some(0), None), (None, Some("nope"))] {
            let error = audit_page(&store, None, limit, token).await.unwrap_err();
            assert!(
                matches!(error, crate::ControlError::Invalid { .. }),
                "{error}"
            );
        }
        let unknown = audit_trail(&store, Some("nobody")).await.unwrap_err();
        assert!(matches!(unknown, crate::ControlError::NotFound { .. }));
    }
}
