//! `tollgate reconcile`: raw events against the counters and Parquet; exits 6 on drift.

use control::projections::{ReconcileRequest, reconcile};
use metering::reconcile::Reconciliation;
use store::backend::Ports;

use crate::args::ReconcileArgs;
use crate::exit;
use crate::output::{print_json, print_lines, print_table};

/// `tollgate reconcile`.
pub async fn run(ports: &Ports, args: ReconcileArgs, json: bool) -> anyhow::Result<()> {
    let request = ReconcileRequest {
        start_date: args.start_date,
        end_date: args.end_date,
        customer_id: args.customer_id,
    };
    let found = reconcile(ports, &request).await?;
    if json {
        print_json(&found)?;
    } else {
        let source = if ports.archive.is_some() {
            "raw archive"
        } else {
            "event log"
        };
        print_findings(&request, &found, source);
    }
    if found.has_drift() {
        return Err(exit::drift(format!(
            "{} numbers differ and {} Parquet rows are duplicated; check the metering consumer's log and quarantine for the cause",
            found.drift.len(),
            found.parquet_duplicates
        )));
    }
    Ok(())
}

fn print_findings(request: &ReconcileRequest, found: &Reconciliation, source: &str) {
    print_lines(&[format!(
        "{} to {}: {} events in the {source} ({} duplicates dropped, {} not meterable and quarantined); {} Parquet rows ({} duplicated)",
        request.start_date,
        request.end_date,
        found.raw_events,
        found.raw_duplicates,
        found.raw_unmeterable,
        found.parquet_rows,
        found.parquet_duplicates
    )]);
    if found.drift.is_empty() {
        print_lines(&["no drift: counters and Parquet match the raw events".into()]);
    } else {
        print_table(
            &["customer_id", "day", "field", "raw", "counters", "parquet"],
            found
                .drift
                .iter()
                .map(|drift| {
                    vec![
                        drift.customer_id.clone(),
                        drift.day.to_string(),
                        drift.field.to_owned(),
                        drift.raw.to_string(),
                        drift.counters.to_string(),
                        drift.parquet.to_string(),
                    ]
                })
                .collect(),
        );
    }
    for gap in &found.gaps {
        print_lines(&[format!(
            "gap: proxy instance {} is missing instance_seq {}..={} (events lost before the log, or still in a spool)",
            gap.proxy_instance, gap.first_missing, gap.last_missing
        )]);
    }
}
