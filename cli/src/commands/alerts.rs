//! `tollgate alerts`: the alerts raised recently.

use control::alerts::recent_alerts;
use store::Alerts;

use crate::args::AlertsArgs;
use crate::output::{print_json, print_lines, print_table, seconds};

/// `tollgate alerts`.
pub async fn run(alerts: &dyn Alerts, args: AlertsArgs, json: bool) -> anyhow::Result<()> {
    let alerts = recent_alerts(alerts, args.since, chrono::Utc::now()).await?;
    if json {
        return print_json(&alerts);
    }
    if alerts.is_empty() {
        print_lines(&["no alerts in that time".into()]);
        return Ok(());
    }
    print_table(
        &["raised", "rule", "customer_id", "window", "message"],
        alerts
            .iter()
            .map(|recorded| {
                vec![
                    seconds(&recorded.raised_at),
                    recorded.alert.rule.clone(),
                    recorded.alert.customer_id.clone(),
                    recorded.alert.window.clone(),
                    recorded.alert.message.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}
