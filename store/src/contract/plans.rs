//! The `Plans` contract suite. Assignments need customers and audit entries are read back
//! from the audit trail, so the suite also takes the registry the backend shares its
//! storage with.

use chrono::NaiveDate;
use schemas::plan::{Plan, PlanAssignment};

use super::registry::{audit_for, new_customer, new_key};
use super::unique;
use crate::StoreError;
use crate::plans::Plans;
use crate::registry::Registry;

/// Runs every scenario against one backend: `plans` and `registry` share its storage.
pub async fn run_all(plans: &dyn Plans, registry: &dyn Registry) {
    plan_versions_are_immutable(plans).await;
    assignments_are_by_date_and_the_same_date_replaces(plans, registry).await;
    refused_assignments_write_no_audit_entry(plans, registry).await;
}

fn plan_with(id: &str, version: u32, price: &str) -> Plan {
    Plan::from_toml(&format!(
        "schema_version = 1\nid = \"{id}\"\nversion = {version}\nname = \"Contract\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"{price}\"\n"
    ))
    .unwrap()
}

async fn plan_versions_are_immutable(plans: &dyn Plans) {
    let id = unique("plan");
    let first = plan_with(&id, 1, "0.002");
    plans
        .put_plan(&first, &audit_for(&id, "plan"))
        .await
        .unwrap();
    // The same content again is a no-op; other content under the same version is refused.
    plans
        .put_plan(&first, &audit_for(&id, "plan"))
        .await
        .unwrap();
    let changed = plan_with(&id, 1, "0.003");
    assert!(matches!(
        plans.put_plan(&changed, &audit_for(&id, "plan")).await,
        Err(StoreError::Conflict(_))
    ));
    let second = plan_with(&id, 2, "0.003");
    plans
        .put_plan(&second, &audit_for(&id, "plan"))
        .await
        .unwrap();
    assert_eq!(plans.plan(&id, 1).await.unwrap(), Some(first.clone()));
    assert_eq!(plans.plan(&id, 3).await.unwrap(), None);
    let listed: Vec<u32> = plans
        .plans()
        .await
        .unwrap()
        .into_iter()
        .filter(|plan| plan.id == id)
        .map(|plan| plan.version)
        .collect();
    assert_eq!(listed, vec![1, 2]);
}

/// A stored plan with versions 1 and 2, and a new customer; returns (plan id, customer id).
async fn plan_and_customer(plans: &dyn Plans, registry: &dyn Registry) -> (String, String) {
    let id = unique("plan");
    for version in [1, 2] {
        plans
            .put_plan(&plan_with(&id, version, "0.002"), &audit_for(&id, "plan"))
            .await
            .unwrap();
    }
    let customer = new_customer();
    registry
        .create_customer(
            &customer,
            &new_key(&customer.customer_id),
            &audit_for(&customer.customer_id, "create"),
        )
        .await
        .unwrap();
    (id, customer.customer_id)
}

fn assignment(customer_id: &str, plan_id: &str, version: u32, month: u32) -> PlanAssignment {
    PlanAssignment {
        customer_id: customer_id.to_owned(),
        plan_id: plan_id.to_owned(),
        plan_version: version,
        effective_from: NaiveDate::from_ymd_opt(2026, month, 1).unwrap(),
    }
}

async fn assignments_are_by_date_and_the_same_date_replaces(
    plans: &dyn Plans,
    registry: &dyn Registry,
) {
    let (plan_id, customer_id) = plan_and_customer(plans, registry).await;
    let assign = |version: u32, month: u32| assignment(&customer_id, &plan_id, version, month);
    for (version, month) in [(2, 5), (1, 3), (2, 3)] {
        plans
            .assign_plan(
                &assign(version, month),
                &audit_for(&customer_id, "assign-plan"),
            )
            .await
            .unwrap();
    }
    // The same date again replaced that assignment.
    assert_eq!(
        plans.plan_assignments(&customer_id).await.unwrap(),
        vec![assign(2, 3), assign(2, 5)]
    );
    assert!(
        plans
            .plan_assignments(&unique("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn refused_assignments_write_no_audit_entry(plans: &dyn Plans, registry: &dyn Registry) {
    let (plan_id, customer_id) = plan_and_customer(plans, registry).await;
    let before = registry
        .audit_entries(Some(&customer_id))
        .await
        .unwrap()
        .len();
    let missing_plan = assignment(&customer_id, &plan_id, 9, 7);
    assert!(matches!(
        plans
            .assign_plan(&missing_plan, &audit_for(&customer_id, "assign-plan"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let missing_customer = assignment(&unique("nobody"), &plan_id, 1, 7);
    assert!(matches!(
        plans
            .assign_plan(&missing_customer, &audit_for("nobody", "assign-plan"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        registry
            .audit_entries(Some(&customer_id))
            .await
            .unwrap()
            .len(),
        before,
        "a refused assignment writes no audit entry"
    );
}
