//! `tollgate update-limits`.

use control::Actor;
use control::limits::{LimitSetting, update_limits};
use schemas::Limits;
use serde::Serialize;
use store::Registry;

use crate::args::UpdateLimitsArgs;
use crate::output::{limit_lines, print_json, print_lines};

#[derive(Serialize)]
struct LimitsChanged<'a> {
    customer_id: &'a str,
    daily_limit: Option<u64>,
    allowed_models: Option<&'a [String]>,
    limits: &'a Limits,
}

/// `tollgate update-limits`.
pub async fn run(
    registry: &dyn Registry,
    actor: &Actor,
    args: UpdateLimitsArgs,
    json: bool,
) -> anyhow::Result<()> {
    let clear: Vec<LimitSetting> = args.clear.iter().copied().map(LimitSetting::from).collect();
    let changed = update_limits(
        registry,
        actor,
        &args.customer_id,
        &args.limits.changes(),
        &clear,
    )
    .await?;
    let limits = &changed.limits;
    if json {
        return print_json(&LimitsChanged {
            customer_id: &changed.customer_id,
            daily_limit: limits.daily_request_limit,
            allowed_models: limits.allowed_models.as_deref(),
            limits,
        });
    }
    let mut lines = vec![format!("limits of {}:", changed.customer_id)];
    lines.extend(
        limit_lines(limits)
            .into_iter()
            .map(|line| format!("  {line}")),
    );
    print_lines(&lines);
    Ok(())
}
