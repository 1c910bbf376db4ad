//! `tollgate replay`: rebuild the counters and Parquet from the raw events into fresh
//! projections.

use control::projections::replay;
use metering::replay::ReplayTarget;
use store::backend::{BackendSettings, Ports};

use crate::args::ReplayArgs;
use crate::output::{print_json, print_lines};

/// `tollgate replay`.
pub async fn run(
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
    let (bar, progress) =
        crate::output::progress_bar("replaying {bar:40} {pos}/{len} events ({eta})");
    let replay_target = ReplayTarget {
        counters: target.counters.clone(),
        objects: target.objects.clone(),
    };
    let report = replay(ports, &replay_target, &progress).await?;
    bar.finish_and_clear();
    if json {
        return print_json(&report);
    }
    print_lines(&super::reconcile::source_lines(&report.source));
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
