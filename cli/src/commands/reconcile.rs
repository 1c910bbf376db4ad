//! `tollgate reconcile`: raw events against the counters and Parquet; exits 6 on drift.

use control::projections::{ReconcileRequest, reconcile};
use metering::raw::{RawSourceKind, RawSourceReport};
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
        print_lines(&source_lines(&found.source));
        if !found.source_covers_range {
            print_lines(&[format!(
                "warning: {} starts before the stream's window, so drift on earlier days is not real; configure the archive to reconcile them",
                request.start_date
            )]);
        }
        print_findings(&request, &found);
    }
    if found.has_drift() {
        let window = if found.source_covers_range {
            ""
        } else {
            " (some of it because the stream no longer holds the range's first days)"
        };
        return Err(exit::drift(format!(
            "{} numbers differ and {} Parquet rows are duplicated{window}; check the metering consumer's log and quarantine for the cause",
            found.drift.len(),
            found.parquet_duplicates
        )));
    }
    Ok(())
}

/// Which raw events were read, in words: the archive, the embedded log, or the stream with
/// the window it holds and how to configure the archive.
pub(crate) fn source_lines(source: &RawSourceReport) -> Vec<String> {
    match source.kind {
        RawSourceKind::Archive => vec![format!("raw events: the archive at {}", source.location)],
        RawSourceKind::EventLog | RawSourceKind::ArchiveAndEventLog => {
            vec![format!("raw events: {}", source.location)]
        }
        RawSourceKind::KinesisStream => {
            let since = source.holds_events_since.map_or_else(
                || "its retention".to_owned(),
                |since| since.format("%Y-%m-%d %H:%M UTC").to_string(),
            );
            vec![
                format!(
                    "raw events: the Kinesis stream {}, because no archive is configured; it keeps {} hours, so it holds only events that arrived since {since}",
                    source.location,
                    source.retention_hours.unwrap_or_default()
                ),
                "to read the archive, set TOLLGATE_ARCHIVE_BUCKET (and TOLLGATE_ARCHIVE_PREFIX unless it is `archive`) to where its Firehose delivers".into(),
            ]
        }
    }
}

fn print_findings(request: &ReconcileRequest, found: &Reconciliation) {
    print_lines(&[format!(
        "{} to {}: {} raw events ({} duplicates dropped, {} not meterable and quarantined); {} Parquet rows ({} duplicated)",
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
