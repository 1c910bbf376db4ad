//! `tollgate plan …`.

use anyhow::Context;
use schemas::plan::Plan;
use serde::Serialize;

use crate::args::PlanCommand;
use crate::exit;
use crate::output::{print_json, print_lines};

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
