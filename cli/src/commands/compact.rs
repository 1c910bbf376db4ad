//! `tollgate compact`: merge a day's Parquet files into large files of its unique events.

use control::projections::compact;
use store::backend::Ports;

use crate::args::CompactArgs;
use crate::output::{print_json, print_lines};

/// `tollgate compact`; batch files older than `settle_after` can no longer be rewritten.
pub async fn run(
    ports: &Ports,
    args: CompactArgs,
    settle_after: std::time::Duration,
    json: bool,
) -> anyhow::Result<()> {
    let report = compact(ports, args.date, settle_after).await?;
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
