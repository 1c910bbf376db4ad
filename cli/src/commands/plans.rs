//! `tollgate plan …`.

use anyhow::Context;
use schemas::plan::Plan;
use serde::Serialize;

use chrono::{Datelike, SubsecRound, Utc};
use schemas::AuditEntry;
use schemas::plan::PlanAssignment;
use store::{Plans, Registry, StoreError};

use crate::args::{AssignPlanArgs, PlanCommand};
use crate::exit;
use crate::output::{print_json, print_lines, print_table};

#[derive(Serialize)]
struct Valid<'a> {
    valid: bool,
    id: &'a str,
    version: u32,
    name: &'a str,
    currency: &'a str,
    charges: usize,
}

/// Reads and validates a plan file.
pub fn load_plan(file: &std::path::Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the plan {}", file.display()))?;
    Plan::from_toml(&text).map_err(|error| exit::usage(format!("{}: {error}", file.display())))
}

/// Runs a plan command (no store needed).
pub fn run(command: &PlanCommand, json: bool) -> anyhow::Result<()> {
    match command {
        PlanCommand::Add { .. } | PlanCommand::List => Err(exit::usage(
            "this plan command needs the store; run it through `tollgate plan`",
        )),
        PlanCommand::Validate { file } => {
            let plan = load_plan(file)?;
            let valid = Valid {
                valid: true,
                id: &plan.id,
                version: plan.version,
                name: &plan.name,
                currency: &plan.currency,
                charges: plan.charges.len(),
            };
            if json {
                return print_json(&valid);
            }
            print_lines(&[format!(
                "{} is valid: plan {} version {} ({}), {} charges in {}",
                file.display(),
                plan.id,
                plan.version,
                plan.name,
                plan.charges.len(),
                plan.currency
            )]);
            Ok(())
        }
    }
}

fn audit(
    actor: &str,
    action: &str,
    subject: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        audit_id: uuid::Uuid::now_v7(),
        at: Utc::now().trunc_subsecs(3),
        actor: actor.to_owned(),
        action: action.to_owned(),
        customer_id: subject.to_owned(),
        before,
        after,
    }
}

/// `tollgate plan add` and `tollgate plan list` (and `validate`).
pub async fn run_stored(
    plans: &dyn Plans,
    actor: &str,
    command: &PlanCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        PlanCommand::Validate { .. } => run(command, json),
        PlanCommand::Add { file } => {
            let plan = load_plan(file)?;
            let entry = audit(
                actor,
                "plan",
                &format!("plan:{}", plan.id),
                serde_json::Value::Null,
                serde_json::json!({ "plan_id": &plan.id, "version": plan.version, "plan": &plan }),
            );
            plans
                .put_plan(&plan, &entry)
                .await
                .map_err(|error| match error {
                    StoreError::Conflict(message) => exit::conflict(message),
                    other => anyhow::Error::new(other),
                })?;
            if json {
                return print_json(&plan);
            }
            print_lines(&[format!(
                "stored plan {} version {} ({}); assign it with `tollgate assign-plan --customer-id ID --plan-id {} --effective-from YYYY-MM-01`",
                plan.id, plan.version, plan.name, plan.id
            )]);
            Ok(())
        }
        PlanCommand::List => {
            let stored_plans = plans.plans().await?;
            if json {
                return print_json(&stored_plans);
            }
            if stored_plans.is_empty() {
                print_lines(&["No plans yet. Store one with `tollgate plan add FILE` (examples in docs/plans/).".into()]);
                return Ok(());
            }
            print_table(
                &["plan_id", "version", "name", "currency", "charges"],
                stored_plans
                    .iter()
                    .map(|plan| {
                        vec![
                            plan.id.clone(),
                            plan.version.to_string(),
                            plan.name.clone(),
                            plan.currency.clone(),
                            plan.charges.len().to_string(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
    }
}

/// `tollgate assign-plan`.
pub async fn assign(
    registry: &dyn Registry,
    plans: &dyn Plans,
    actor: &str,
    args: AssignPlanArgs,
    json: bool,
) -> anyhow::Result<()> {
    if args.effective_from.day() != 1 {
        return Err(exit::usage(format!(
            "--effective-from {} is not the first of a month; plan changes take effect at the start of a billing period, such as {}",
            args.effective_from,
            args.effective_from
                .with_day(1)
                .unwrap_or(args.effective_from)
        )));
    }
    super::check_customer_exists(registry, &args.customer_id).await?;
    let version = match args.plan_version {
        Some(version) => version,
        None => plans
            .plans()
            .await?
            .iter()
            .filter(|plan| plan.id == args.plan_id)
            .map(|plan| plan.version)
            .max()
            .ok_or_else(|| {
                exit::not_found(format!(
                    "no plan {:?} is stored; store it with `tollgate plan add FILE` (see `tollgate plan list`)",
                    args.plan_id
                ))
            })?,
    };
    let assignment = PlanAssignment {
        customer_id: args.customer_id.clone(),
        plan_id: args.plan_id.clone(),
        plan_version: version,
        effective_from: args.effective_from,
    };
    let before = plans.plan_assignments(&args.customer_id).await?;
    let entry = audit(
        actor,
        "assign-plan",
        &args.customer_id,
        serde_json::json!(before),
        serde_json::json!(assignment),
    );
    plans
        .assign_plan(&assignment, &entry)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => exit::not_found(format!(
                "plan {} version {version} is not stored; see `tollgate plan list`",
                args.plan_id
            )),
            other => anyhow::Error::new(other),
        })?;
    if json {
        return print_json(&assignment);
    }
    print_lines(&[format!(
        "{} is priced with plan {} version {} from {} on",
        args.customer_id, args.plan_id, version, args.effective_from
    )]);
    Ok(())
}
