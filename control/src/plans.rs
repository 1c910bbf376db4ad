//! Pricing plans: `plan validate`, `plan add`, `plan list` and `assign-plan`, and the plan
//! that prices a customer's period.

use chrono::{Datelike, NaiveDate};
use schemas::Customer;
use schemas::plan::{Plan, PlanAssignment, assignment_on};
use store::{Plans, Registry, StoreError};

use crate::audit::{Actor, actions, audit_entry};
use crate::error::{ControlError, Result};
use crate::lookup::existing_customer;

/// `plan validate`: parses and checks a plan (TOML, see docs/pricing.md). `Invalid` with
/// the line or field and the fix, prefixed by `source` (the file name).
pub fn parse_plan(text: &str, source: &str) -> Result<Plan> {
    Plan::from_toml(text)
        .map_err(|error| ControlError::invalid("plan", format!("{source}: {error}")))
}

/// `model-prices validate`: parses and checks Bedrock's price table (TOML, see
/// docs/model-prices.toml); `Invalid` with the line or field and the fix, prefixed by
/// `source`.
pub fn parse_model_prices(
    text: &str,
    source: &str,
) -> Result<schemas::model_prices::ModelPriceTable> {
    schemas::model_prices::ModelPriceTable::from_toml(text)
        .map_err(|error| ControlError::invalid("model_prices", format!("{source}: {error}")))
}

/// The operator's seller profile (TOML, see docs/seller.toml); `Invalid` with the line or
/// field and the fix, prefixed by `source`.
pub fn parse_seller_profile(text: &str, source: &str) -> Result<schemas::seller::SellerProfile> {
    schemas::seller::SellerProfile::from_toml(text)
        .map_err(|error| ControlError::invalid("seller", format!("{source}: {error}")))
}

/// A plan sent as JSON (the admin API): the fields of the TOML file, checked the same way.
pub fn parse_plan_json(text: &str, source: &str) -> Result<Plan> {
    let plan: Plan = serde_json::from_str(text).map_err(|error| {
        ControlError::invalid(
            "plan",
            format!("{source}: {error}; see docs/pricing.md for the fields"),
        )
    })?;
    plan.validate()
        .map_err(|error| ControlError::invalid("plan", format!("{source}: {error}")))?;
    Ok(plan)
}

/// `plan add`: stores a plan version with an audit entry (action `plan`, subject
/// `plan:<id>`). Storing the same version again unchanged changes nothing; with other
/// content it is `Conflict` (versions are immutable).
pub async fn store_plan(plans: &dyn Plans, actor: &Actor, plan: &Plan) -> Result<()> {
    let entry = audit_entry(
        actor,
        actions::STORE_PLAN,
        &format!("plan:{}", plan.id),
        serde_json::Value::Null,
        serde_json::json!({ "plan_id": &plan.id, "version": plan.version, "plan": plan }),
    );
    plans
        .put_plan(plan, &entry)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(message) => ControlError::conflict(message),
            other => ControlError::from(other),
        })
}

/// `plan list`: every stored plan version, by id then version.
pub async fn list_plans(plans: &dyn Plans) -> Result<Vec<Plan>> {
    Ok(plans.plans().await?)
}

/// A plan to assign: `assign-plan`.
#[derive(Debug, Clone)]
pub struct PlanChoice {
    pub customer_id: String,
    pub plan_id: String,
    /// The newest stored version when `None`.
    pub plan_version: Option<u32>,
    /// The first day the plan prices: the first of a month.
    pub effective_from: NaiveDate,
}

/// `assign-plan`: prices a customer with a stored plan from the start of a month on, with
/// an audit entry (action `assign-plan`, the assignments before). `Invalid` unless
/// `effective_from` is the first of a month; `NotFound` for an unknown customer or plan.
pub async fn assign_plan(
    registry: &dyn Registry,
    plans: &dyn Plans,
    actor: &Actor,
    choice: &PlanChoice,
) -> Result<PlanAssignment> {
    if choice.effective_from.day() != 1 {
        return Err(ControlError::invalid(
            "effective_from",
            format!(
                "--effective-from {} is not the first of a month; plan changes take effect at the start of a billing period, such as {}",
                choice.effective_from,
                choice
                    .effective_from
                    .with_day(1)
                    .unwrap_or(choice.effective_from)
            ),
        ));
    }
    existing_customer(registry, &choice.customer_id).await?;
    let version = match choice.plan_version {
        Some(version) => version,
        None => newest_version(plans, &choice.plan_id).await?,
    };
    let assignment = PlanAssignment {
        customer_id: choice.customer_id.clone(),
        plan_id: choice.plan_id.clone(),
        plan_version: version,
        effective_from: choice.effective_from,
    };
    let before = plans.plan_assignments(&choice.customer_id).await?;
    let entry = audit_entry(
        actor,
        actions::ASSIGN_PLAN,
        &choice.customer_id,
        serde_json::json!(before),
        serde_json::json!(assignment),
    );
    plans
        .assign_plan(&assignment, &entry)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => ControlError::not_found(format!(
                "plan {} version {version} is not stored; see `tollgate plan list`",
                choice.plan_id
            )),
            other => ControlError::from(other),
        })?;
    Ok(assignment)
}

async fn newest_version(plans: &dyn Plans, plan_id: &str) -> Result<u32> {
    plans
        .plans()
        .await?
        .iter()
        .filter(|plan| plan.id == plan_id)
        .map(|plan| plan.version)
        .max()
        .ok_or_else(|| {
            ControlError::not_found(format!(
                "no plan {plan_id:?} is stored; store it with `tollgate plan add FILE` (see `tollgate plan list`)"
            ))
        })
}

/// The plan that prices `customer` for the period starting `start`: the what-if plan, or
/// the assignment in effect on the first day; `None` without either.
pub async fn plan_for_period(
    plans: &dyn Plans,
    customer: &Customer,
    start: NaiveDate,
    what_if: Option<&Plan>,
) -> Result<Option<Plan>> {
    if let Some(plan) = what_if {
        return Ok(Some(plan.clone()));
    }
    let assignments = plans.plan_assignments(&customer.customer_id).await?;
    let Some(assignment) = assignment_on(&assignments, start) else {
        return Ok(None);
    };
    let plan = plans
        .plan(&assignment.plan_id, assignment.plan_version)
        .await?
        .ok_or_else(|| {
            ControlError::internal(format!(
                "plan {} version {} assigned to {} is not stored",
                assignment.plan_id, assignment.plan_version, customer.customer_id
            ))
        })?;
    Ok(Some(plan))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use store::memory::MemoryStore;

    /// The documented flat plan, as a test fixture.
    pub(crate) fn flat_plan(version: u32) -> Plan {
        let text = format!(
            "schema_version = 1\nid = \"flat\"\nversion = {version}\nname = \"Flat\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"0.01\"\n"
        );
        parse_plan(&text, "flat.toml").unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_documented_plans_parse_and_mistakes_name_the_file() {
        let plans = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plans");
        for entry in std::fs::read_dir(plans).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            parse_plan(&text, &path.display().to_string()).unwrap();
        }
        let broken = "schema_version = 1\nid = \"x\"\nversion = 1\nname = \"X\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = 0.002\n";
        let error = parse_plan(broken, "broken.toml").unwrap_err();
        assert!(matches!(error, ControlError::Invalid { field: "plan", .. }));
        assert!(error.to_string().starts_with("broken.toml: "), "{error}");
        assert!(
            error
                .to_string()
                .contains("write amounts and prices as strings")
        );
    }

    #[tokio::test]
    async fn plans_are_stored_once_per_version_and_listed() {
        let store = MemoryStore::new();
        store_plan(&store, &operator(), &flat_plan(1))
            .await
            .unwrap();
        store_plan(&store, &operator(), &flat_plan(1))
            .await
            .unwrap();
        store_plan(&store, &operator(), &flat_plan(2))
            .await
            .unwrap();
        let mut changed = flat_plan(2);
        changed.name = "Changed".into();
        let conflict = store_plan(&store, &operator(), &changed).await.unwrap_err();
        assert!(matches!(conflict, ControlError::Conflict { .. }));
        let versions: Vec<u32> = list_plans(&store)
            .await
            .unwrap()
            .iter()
            .map(|plan| plan.version)
            .collect();
        assert_eq!(versions, [1, 2]);
        let trail = store.audit_entries(Some("plan:flat")).await.unwrap();
        assert!(
            trail
                .iter()
                .all(|entry| entry.action == actions::STORE_PLAN)
        );
    }

    #[tokio::test]
    async fn assignments_start_on_the_first_and_default_to_the_newest_version() {
        let store = MemoryStore::new();
        let issued = create_customer(&store, &operator(), NewCustomer::named("A", "a@a.example"))
            .await
            .unwrap();
        let choice = |plan_id: &str, from: &str| PlanChoice {
            customer_id: issued.customer_id.clone(),
            plan_id: plan_id.into(),
            plan_version: None,
            effective_from: day(from),
        };
        let mid_month = assign_plan(&store, &store, &operator(), &choice("flat", "2026-11-15"))
            .await
            .unwrap_err();
        assert!(
            mid_month.to_string().contains("such as 2026-11-01"),
            "{mid_month}"
        );
        let missing = assign_plan(&store, &store, &operator(), &choice("flat", "2026-11-01"))
            .await
            .unwrap_err();
        assert!(matches!(missing, ControlError::NotFound { .. }));
        store_plan(&store, &operator(), &flat_plan(1))
            .await
            .unwrap();
        store_plan(&store, &operator(), &flat_plan(2))
            .await
            .unwrap();
        let assigned = assign_plan(&store, &store, &operator(), &choice("flat", "2026-11-01"))
            .await
            .unwrap();
        assert_eq!(assigned.plan_version, 2);
        let customer = store.customer(&issued.customer_id).await.unwrap().unwrap();
        let priced = plan_for_period(&store, &customer, day("2026-12-01"), None)
            .await
            .unwrap();
        assert_eq!(priced.map(|plan| plan.version), Some(2));
        let before = plan_for_period(&store, &customer, day("2026-10-01"), None)
            .await
            .unwrap();
        assert!(before.is_none());
        let what_if = flat_plan(1);
        let priced = plan_for_period(&store, &customer, day("2026-10-01"), Some(&what_if))
            .await
            .unwrap();
        assert_eq!(priced.map(|plan| plan.version), Some(1));
        let mut unknown = choice("flat", "2026-11-01");
        unknown.customer_id = "nobody".into();
        let unknown = assign_plan(&store, &store, &operator(), &unknown)
            .await
            .unwrap_err();
        assert!(unknown.to_string().contains("unknown customer id"));
    }
}
