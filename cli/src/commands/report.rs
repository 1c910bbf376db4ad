//! `tollgate report`: a self-contained HTML usage report with charts, and CSV files.

use control::margins::{MarginSources, margin_rows};
use control::reports::{ReportRequest, usage_report};
use store::backend::Ports;

use crate::args::ReportArgs;
use crate::output::{create_directory, print_json, print_lines, write_file};

/// `tollgate report`.
pub async fn run(ports: &Ports, args: ReportArgs, json: bool) -> anyhow::Result<()> {
    let request = ReportRequest {
        start_date: args.start_date,
        end_date: args.end_date,
        customer_id: args.customer_id.clone(),
    };
    let (bar, progress) =
        crate::output::progress_bar("reading usage {bar:40} {pos}/{len} customers");
    let built = usage_report(
        ports.registry.as_ref(),
        ports.counters.as_ref(),
        &request,
        &progress,
    )
    .await?;
    bar.finish_and_clear();
    let mut built = built;
    if let Some(file) = &args.model_prices {
        let table = super::plan::load_model_prices(file)?;
        let sources = MarginSources {
            registry: ports.registry.as_ref(),
            plans: ports.plans.as_ref(),
            counters: ports.counters.as_ref(),
            watermarks: ports.watermarks.as_ref(),
        };
        let rows = margin_rows(
            &sources,
            &table,
            args.start_date,
            args.end_date,
            args.customer_id.as_deref(),
        )
        .await?;
        built.report.revenue_cost_and_margin = Some(metering::report::margin_table(&rows));
    }
    write_file(&args.out, metering::report::to_html(&built.report))?;
    if let Some(directory) = &args.csv {
        create_directory(directory)?;
        for (name, contents) in metering::report::to_csv_files(&built.report) {
            write_file(&directory.join(name), contents)?;
        }
    }
    if json {
        return print_json(&built.report);
    }
    print_lines(&[format!(
        "wrote {} ({} customers, {} to {}){}",
        args.out.display(),
        built.customers,
        args.start_date,
        args.end_date,
        args.csv
            .as_ref()
            .map(|directory| format!(" and CSV files in {}", directory.display()))
            .unwrap_or_default()
    )]);
    Ok(())
}
