//! `tollgate archive-log`: move the embedded log's settled records into the archive now.

use std::time::Duration;

use control::projections::archive_log;
use store::backend::Ports;

use crate::args::ArchiveLogArgs;
use crate::output::{print_json, print_lines};

/// `tollgate archive-log`.
pub async fn run(ports: &Ports, args: &ArchiveLogArgs, json: bool) -> anyhow::Result<()> {
    let window = Duration::from_secs(args.log_retention_hours * 3600);
    let report = archive_log(ports, window).await?;
    if json {
        return print_json(&report);
    }
    let mut lines = Vec::new();
    for partition in &report.partitions {
        lines.push(format!(
            "partition {}: {} records archived into {} files, {} deleted from the database; archived through {}",
            partition.partition,
            partition.records_archived,
            partition.files_written,
            partition.records_deleted,
            partition.archived_through.as_deref().unwrap_or("nothing yet"),
        ));
        if let Some(reader) = &partition.held_back_by {
            lines.push(format!(
                "  settled through {} (held back by {reader})",
                partition.settled_through.as_deref().unwrap_or("nothing")
            ));
        }
    }
    lines.push(format!(
        "log records {} -> {}; database {} -> {} bytes ({} bytes given back); archive {} bytes",
        report.before.records,
        report.after.records,
        report.before.database_bytes,
        report.after.database_bytes,
        report.bytes_reclaimed,
        report.after.archive_bytes
    ));
    print_lines(&lines);
    Ok(())
}
