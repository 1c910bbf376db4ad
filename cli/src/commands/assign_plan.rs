//! `tollgate assign-plan`.

use control::Actor;
use control::plans::{PlanChoice, assign_plan};
use store::{Plans, Registry};

use crate::args::AssignPlanArgs;
use crate::output::{print_json, print_lines};

/// `tollgate assign-plan`: price a customer with a stored plan from a month's start on.
pub async fn run(
    registry: &dyn Registry,
    plans: &dyn Plans,
    actor: &Actor,
    args: AssignPlanArgs,
    json: bool,
) -> anyhow::Result<()> {
    let choice = PlanChoice {
        customer_id: args.customer_id,
        plan_id: args.plan_id,
        plan_version: args.plan_version,
        effective_from: args.effective_from,
    };
    let assignment = assign_plan(registry, plans, actor, &choice).await?;
    if json {
        return print_json(&assignment);
    }
    print_lines(&[format!(
        "{} is priced with plan {} version {} from {} on",
        assignment.customer_id,
        assignment.plan_id,
        assignment.plan_version,
        assignment.effective_from
    )]);
    Ok(())
}
