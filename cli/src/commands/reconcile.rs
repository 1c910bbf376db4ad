//! `tollgate reconcile`, `tollgate replay` and `tollgate compact`.

use metering::reconcile::reconcile as run_reconciliation;
use metering::replay::{ReplayTarget, replay as run_replay};
use store::backend::{BackendSettings, Ports};

use crate::args::{CompactArgs, ReconcileArgs, ReplayArgs};
use crate::exit;
use crate::output::{print_json, print_lines, print_table};

/// Longest range one `reconcile` call reads.
const MAX_RANGE_DAYS: i64 = 366;

/// `tollgate reconcile`.
pub async fn reconcile(ports: &Ports, args: ReconcileArgs, json: bool) -> anyhow::Result<()> {
    super::check_date_range(args.start_date, args.end_date, MAX_RANGE_DAYS)?;
    if let Some(customer_id) = &args.customer_id {
        super::check_customer_exists(ports.registry.as_ref(), customer_id).await?;
    }
    let found = run_reconciliation(
        ports,
        args.start_date,
        args.end_date,
        args.customer_id.as_deref(),
    )
    .await?;
    if json {
        print_json(&found)?;
    } else {
        let source = if ports.archive.is_some() {
            "raw archive"
        } else {
            "event log"
        };
        print_lines(&[format!(
            "{} to {}: {} events in the {source} ({} duplicates dropped, {} not meterable and quarantined); {} Parquet rows ({} duplicated)",
            args.start_date,
            args.end_date,
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
    if found.has_drift() {
        return Err(exit::drift(format!(
            "{} numbers differ and {} Parquet rows are duplicated; check the metering consumer's log and quarantine for the cause",
            found.drift.len(),
            found.parquet_duplicates
        )));
    }
    Ok(())
}

/// `tollgate replay`.
pub async fn replay(
    settings: &BackendSettings,
    ports: &Ports,
    args: ReplayArgs,
    json: bool,
) -> anyhow::Result<()> {
    let target = settings
        .open_projections(
            args.to_data_dir.as_deref(),
            args.to_counters_table.as_deref(),
            args.to_prefix.as_deref(),
        )
        .await?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("replaying {bar:40} {pos}/{len} events ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = {
        let bar = bar.clone();
        move |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let report = run_replay(
        ports,
        &ReplayTarget {
            counters: target.counters.clone(),
            objects: target.objects.clone(),
        },
        &progress,
    )
    .await?;
    bar.finish_and_clear();
    if json {
        return print_json(&report);
    }
    print_lines(&[
        format!(
            "replayed {} events into {} ({} counted for the first time; {} duplicates dropped, {} not meterable) over {} days, {} Parquet objects",
            report.events,
            target.description,
            report.newly_counted,
            report.duplicates_dropped,
            report.unmeterable,
            report.days,
            report.parquet_objects
        ),
        "running it again gives the same result; point the live settings at it to switch over"
            .into(),
    ]);
    Ok(())
}

/// `tollgate compact`.
pub async fn compact(
    ports: &Ports,
    args: CompactArgs,
    settle_after: std::time::Duration,
    json: bool,
) -> anyhow::Result<()> {
    let settings = metering::compact::CompactionSettings {
        checkpoints: Some(ports.checkpoints.clone()),
        consumer_name: metering::ConsumerSettings::default().consumer_name,
        settle_after,
        target_file_bytes: metering::compact::TARGET_FILE_BYTES,
    };
    let report = metering::compact::compact_day(&ports.objects, args.date, &settings).await?;
    if json {
        return print_json(&report);
    }
    let mut lines = vec![format!(
        "{}: {} events ({} duplicate rows dropped) from {} files into {} files, {} bytes",
        report.day,
        report.events,
        report.duplicates_dropped,
        report.files_merged,
        report.files_written,
        report.bytes_written
    )];
    if report.files_written == 0 && report.events > 0 {
        lines.push("already compacted: nothing to do".into());
    }
    if report.files_not_settled > 0 {
        lines.push(format!(
            "{} batch files were left for a later run: their batches may still be retried",
            report.files_not_settled
        ));
    }
    print_lines(&lines);
    Ok(())
}
