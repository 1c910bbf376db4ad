//! Limits: the changes an operator asks for (set a cap, lift it, clear a setting), and
//! `update-limits`.

use schemas::{EnforcementMode, LimitKind, Limits};
use serde::Serialize;
use store::Registry;

use crate::audit::{Actor, actions, audit_entry};
use crate::error::{ControlError, Result};
use crate::lookup::{existing_customer, unknown_customer};

/// A cap's new value: a number, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Limit(u64),
    Unlimited,
}

impl Cap {
    /// As stored.
    pub fn as_option(self) -> Option<u64> {
        match self {
            Self::Limit(limit) => Some(limit),
            Self::Unlimited => None,
        }
    }
}

/// A limit setting that can be cleared (removed): the customer becomes unlimited there,
/// or follows the deployment's enforcement mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSetting {
    DailyRequests,
    MonthlyRequests,
    DailyTokens,
    MonthlyTokens,
    RequestsPerMinute,
    AllowedModels,
    Enforcement,
}

impl LimitSetting {
    /// The setting's name as the CLI spells it (`daily-limit`, `rpm`).
    pub fn name(self) -> &'static str {
        match self {
            Self::DailyRequests => "daily-limit",
            Self::MonthlyRequests => "monthly-limit",
            Self::DailyTokens => "daily-token-limit",
            Self::MonthlyTokens => "monthly-token-limit",
            Self::RequestsPerMinute => "rpm",
            Self::AllowedModels => "allowed-models",
            Self::Enforcement => "enforcement",
        }
    }

    fn clear(self, limits: &mut Limits) {
        match self {
            Self::DailyRequests => limits.daily_request_limit = None,
            Self::MonthlyRequests => limits.monthly_request_limit = None,
            Self::DailyTokens => limits.daily_token_limit = None,
            Self::MonthlyTokens => limits.monthly_token_limit = None,
            Self::RequestsPerMinute => limits.requests_per_minute = None,
            Self::AllowedModels => limits.allowed_models = None,
            Self::Enforcement => limits.enforcement = None,
        }
    }
}

/// The limits to set; `None` leaves a setting as it is. All windows are UTC calendar
/// windows; token budgets count input plus output tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitChanges {
    pub daily_request_limit: Option<Cap>,
    pub monthly_request_limit: Option<Cap>,
    pub daily_token_limit: Option<Cap>,
    pub monthly_token_limit: Option<Cap>,
    pub requests_per_minute: Option<Cap>,
    /// `Some(None)`: every model; `Some(Some(list))`: only these ids or `*` patterns.
    pub allowed_models: Option<Option<Vec<String>>>,
    /// `Some(None)`: the deployment's default mode.
    pub enforcement: Option<Option<EnforcementMode>>,
}

impl LimitChanges {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    fn caps(&self) -> [(LimitKind, Option<Cap>, LimitSetting); 5] {
        [
            (
                LimitKind::DailyRequests,
                self.daily_request_limit,
                LimitSetting::DailyRequests,
            ),
            (
                LimitKind::MonthlyRequests,
                self.monthly_request_limit,
                LimitSetting::MonthlyRequests,
            ),
            (
                LimitKind::DailyTokens,
                self.daily_token_limit,
                LimitSetting::DailyTokens,
            ),
            (
                LimitKind::MonthlyTokens,
                self.monthly_token_limit,
                LimitSetting::MonthlyTokens,
            ),
            (
                LimitKind::RequestsPerMinute,
                self.requests_per_minute,
                LimitSetting::RequestsPerMinute,
            ),
        ]
    }

    fn sets(&self, setting: LimitSetting) -> bool {
        match setting {
            LimitSetting::AllowedModels => self.allowed_models.is_some(),
            LimitSetting::Enforcement => self.enforcement.is_some(),
            other => self
                .caps()
                .iter()
                .any(|(_, cap, named)| cap.is_some() && *named == other),
        }
    }

    /// Applies the changes, then removes every cleared setting. Setting and clearing the
    /// same limit is `Invalid`, and then `limits` is left as it was.
    pub fn apply(&self, limits: &mut Limits, clear: &[LimitSetting]) -> Result<()> {
        if let Some(setting) = clear.iter().find(|setting| self.sets(**setting)) {
            let name = setting.name();
            return Err(ControlError::invalid(
                "clear",
                format!("--{name} is both set and cleared; give either --{name} or --clear {name}"),
            ));
        }
        for (kind, cap, _) in self.caps() {
            if let Some(cap) = cap {
                kind.set_cap(limits, cap.as_option());
            }
        }
        if let Some(models) = &self.allowed_models {
            limits.allowed_models = models.clone();
        }
        if let Some(enforcement) = self.enforcement {
            limits.enforcement = enforcement;
        }
        for setting in clear {
            setting.clear(limits);
        }
        Ok(())
    }
}

/// A customer's limits after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitsChanged {
    pub customer_id: String,
    pub limits: Limits,
}

/// `update-limits`: applies `changes`, then clears `clear`, and writes the new limits with
/// their audit entry (action `limits`, before and after). `Invalid` when nothing is asked
/// or a setting is both set and cleared; `NotFound` for an unknown customer.
pub async fn update_limits(
    registry: &dyn Registry,
    actor: &Actor,
    customer_id: &str,
    changes: &LimitChanges,
    clear: &[LimitSetting],
) -> Result<LimitsChanged> {
    if changes.is_empty() && clear.is_empty() {
        return Err(ControlError::invalid(
            "limits",
            "nothing to change; give a limit such as --daily-limit N|none, --monthly-limit, --daily-token-limit, --monthly-token-limit, --rpm, --allowed-models LIST|all or --enforcement, or --clear LIMIT",
        ));
    }
    let limits_before = existing_customer(registry, customer_id).await?.limits;
    let mut limits = limits_before.clone();
    changes.apply(&mut limits, clear)?;
    let entry = audit_entry(
        actor,
        actions::LIMITS,
        customer_id,
        serde_json::json!(limits_before),
        serde_json::json!(limits),
    );
    registry
        .set_limits(customer_id, &limits, &entry)
        .await
        .map_err(|error| unknown_customer(customer_id, error))?;
    Ok(LimitsChanged {
        customer_id: customer_id.to_owned(),
        limits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use store::memory::MemoryStore;

    #[test]
    fn changes_set_and_clear_exactly_what_they_name() {
        let mut limits = Limits {
            daily_request_limit: Some(10),
            requests_per_minute: Some(5),
            allowed_models: Some(vec!["anthropic.*".into()]),
            ..Limits::default()
        };
        let changes = LimitChanges {
            monthly_request_limit: Some(Cap::Limit(300)),
            daily_token_limit: Some(Cap::Limit(50_000)),
            enforcement: Some(Some(EnforcementMode::Strict)),
            ..LimitChanges::default()
        };
        assert!(!changes.is_empty());
        assert!(LimitChanges::default().is_empty());
        changes
            .apply(
                &mut limits,
                &[LimitSetting::RequestsPerMinute, LimitSetting::AllowedModels],
            )
            .unwrap();
        assert_eq!(
            limits,
            Limits {
                daily_request_limit: Some(10),
                monthly_request_limit: Some(300),
                daily_token_limit: Some(50_000),
                enforcement: Some(EnforcementMode::Strict),
                ..Limits::default()
            }
        );
        let before = limits.clone();
        let conflicting = LimitChanges {
            daily_request_limit: Some(Cap::Limit(1)),
            ..LimitChanges::default()
        };
        let error = conflicting
            .apply(&mut limits, &[LimitSetting::DailyRequests])
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("--daily-limit is both set and cleared; give either --daily-limit or --clear daily-limit"),
            "{error}"
        );
        assert_eq!(limits, before, "a refused change changes nothing");
    }

    #[tokio::test]
    async fn update_limits_writes_the_limits_and_an_entry_or_refuses() {
        let store = MemoryStore::new();
        let mut new = NewCustomer::named("Acme", "a@acme.example");
        new.limits.daily_request_limit = Some(Cap::Limit(100));
        let issued = create_customer(&store, &operator(), new).await.unwrap();
        let id = issued.customer_id.as_str();

        let nothing = update_limits(&store, &operator(), id, &LimitChanges::default(), &[])
            .await
            .unwrap_err();
        assert!(nothing.to_string().contains("nothing to change"));

        let changes = LimitChanges {
            requests_per_minute: Some(Cap::Limit(60)),
            allowed_models: Some(Some(vec!["amazon.*".into()])),
            ..LimitChanges::default()
        };
        let changed = update_limits(
            &store,
            &operator(),
            id,
            &changes,
            &[LimitSetting::DailyRequests],
        )
        .await
        .unwrap();
        assert_eq!(changed.limits.requests_per_minute, Some(60));
        assert_eq!(changed.limits.daily_request_limit, None, "cleared");
        let stored = store.customer(id).await.unwrap().unwrap().limits;
        assert_eq!(stored, changed.limits);
        let trail = store.audit_entries(Some(id)).await.unwrap();
        let last = trail.last().unwrap();
        assert_eq!(last.action, actions::LIMITS);
        assert_eq!(last.before["daily_request_limit"], 100);
        assert!(last.after["daily_request_limit"].is_null());

        let unknown = update_limits(&store, &operator(), "nobody", &changes, &[])
            .await
            .unwrap_err();
        assert!(matches!(unknown, ControlError::NotFound { .. }));
        assert!(
            unknown
                .to_string()
                .contains("unknown customer id \"nobody\"")
        );
    }
}
