//! `tollgate audit`.

use control::audit::audit_trail;
use serde::Serialize;
use store::Registry;

use crate::output::{print_json, print_table};

#[derive(Serialize)]
struct AuditRow<'a> {
    at: String,
    actor: &'a str,
    action: &'a str,
    customer_id: &'a str,
    before: &'a serde_json::Value,
    after: &'a serde_json::Value,
}

/// `tollgate audit`: the audit trail, or one customer's.
pub async fn run(
    registry: &dyn Registry,
    customer_id: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let entries = audit_trail(registry, customer_id).await?;
    let rows: Vec<AuditRow<'_>> = entries
        .iter()
        .map(|entry| AuditRow {
            at: entry
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: &entry.actor,
            action: &entry.action,
            customer_id: &entry.customer_id,
            before: &entry.before,
            after: &entry.after,
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    print_table(
        &["at", "actor", "action", "customer_id", "before", "after"],
        rows.iter()
            .map(|row| {
                vec![
                    row.at.clone(),
                    row.actor.to_owned(),
                    row.action.to_owned(),
                    row.customer_id.to_owned(),
                    row.before.to_string(),
                    row.after.to_string(),
                ]
            })
            .collect(),
    );
    Ok(())
}
