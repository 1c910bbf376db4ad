//! `tollgate quarantine list` and `tollgate quarantine requeue`.

use store::backend::Ports;

use crate::output::{print_json, print_lines};

/// `tollgate quarantine list`.
pub async fn list(ports: &Ports, json: bool) -> anyhow::Result<()> {
    let items = control::quarantine::list(ports).await?;
    if json {
        return print_json(&items);
    }
    if items.is_empty() {
        print_lines(&["nothing is quarantined".to_owned()]);
        return Ok(());
    }
    let mut lines = Vec::with_capacity(items.len() + 1);
    for item in &items {
        let place = match item.line {
            Some(line) => format!("{} event {line}", item.position),
            None => item.position.clone(),
        };
        lines.push(format!(
            "partition {} position {place} ({} bytes): {}",
            item.partition, item.bytes, item.reason
        ));
    }
    lines.push(format!(
        "{} quarantined; fix the cause, then `tollgate quarantine requeue` sends them through the log again",
        items.len()
    ));
    print_lines(&lines);
    Ok(())
}

/// `tollgate quarantine requeue`.
pub async fn requeue(ports: &Ports, json: bool) -> anyhow::Result<()> {
    let report = control::quarantine::requeue(ports).await?;
    if json {
        return print_json(&report);
    }
    let mut lines = vec![format!(
        "{} quarantined records and events appended to the event log again; the metering consumer counts each event once and quarantines again what it still cannot meter",
        report.requeued
    )];
    if report.refused > 0 {
        lines.push(format!(
            "{} the log refused this time stay in quarantine: run `tollgate quarantine requeue` again",
            report.refused
        ));
    }
    print_lines(&lines);
    Ok(())
}
