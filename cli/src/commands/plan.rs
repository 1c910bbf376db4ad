//! `tollgate plan validate`, `tollgate plan add` and `tollgate plan list`.

use anyhow::Context;
use control::Actor;
use control::plans::{list_plans, parse_plan, store_plan};
use schemas::plan::Plan;
use serde::Serialize;
use store::Plans;

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

/// Reads and validates a plan file (TOML, see docs/pricing.md).
pub fn load_plan(file: &std::path::Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the plan {}", file.display()))?;
    Ok(parse_plan(&text, &file.display().to_string())?)
}

/// Reads and checks a model price table file.
pub fn load_model_prices(
    file: &std::path::Path,
) -> anyhow::Result<schemas::model_prices::ModelPriceTable> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the model price table {}", file.display()))?;
    Ok(control::plans::parse_model_prices(
        &text,
        &file.display().to_string(),
    )?)
}

/// Reads and checks the operator's seller profile.
pub fn load_seller_profile(
    file: &std::path::Path,
) -> anyhow::Result<schemas::seller::SellerProfile> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the seller profile {}", file.display()))?;
    Ok(control::plans::parse_seller_profile(
        &text,
        &file.display().to_string(),
    )?)
}

/// `tollgate model-prices validate` (no store needed).
pub fn validate_model_prices(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let table = load_model_prices(file)?;
    if json {
        return print_json(&table);
    }
    print_lines(&[format!(
        "{} is valid: {} prices in {}, read {}",
        file.display(),
        table.prices.len(),
        table.currency,
        table.as_of
    )]);
    Ok(())
}

/// `tollgate plan validate` (no store needed).
pub fn validate(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let plan = load_plan(file)?;
    if json {
        return print_json(&Valid {
            valid: true,
            id: &plan.id,
            version: plan.version,
            name: &plan.name,
            currency: &plan.currency,
            charges: plan.charges.len(),
        });
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

/// `tollgate plan add`.
pub async fn add(
    plans: &dyn Plans,
    actor: &Actor,
    file: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    let plan = load_plan(file)?;
    store_plan(plans, actor, &plan).await?;
    if json {
        return print_json(&plan);
    }
    print_lines(&[format!(
        "stored plan {} version {} ({}); assign it with `tollgate assign-plan --customer-id ID --plan-id {} --effective-from YYYY-MM-01`",
        plan.id, plan.version, plan.name, plan.id
    )]);
    Ok(())
}

/// `tollgate plan list`.
pub async fn list(plans: &dyn Plans, json: bool) -> anyhow::Result<()> {
    let plans = list_plans(plans).await?;
    if json {
        return print_json(&plans);
    }
    if plans.is_empty() {
        print_lines(&[
            "No plans yet. Store one with `tollgate plan add FILE` (examples in docs/plans/)."
                .into(),
        ]);
        return Ok(());
    }
    print_table(
        &["plan_id", "version", "name", "currency", "charges"],
        plans
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
