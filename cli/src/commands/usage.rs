//! `tollgate usage`: a customer's counters per day and model, with totals.

use anyhow::Context;
use chrono::NaiveDate;
use schemas::usage_counts::total_counts;
use schemas::{DailyUsage, UsageCounts};
use serde::Serialize;
use store::backend::Ports;

use schemas::watermark::{Gap, InstanceProgress, complete_through};

use crate::args::UsageArgs;
use crate::output::{print_json, print_lines, print_table};

/// Longest range one `usage` call reads.
const MAX_RANGE_DAYS: i64 = 3660;

#[derive(Serialize)]
struct UsageReport<'a> {
    customer_id: &'a str,
    start_date: NaiveDate,
    end_date: NaiveDate,
    days: &'a [DailyUsage],
    totals: UsageCounts,
    /// Every event that occurred up to this time is counted (see `docs/exactly-once.md`).
    complete_through: Option<chrono::DateTime<chrono::Utc>>,
    /// `instance_seq` numbers not seen, per proxy instance, across all customers.
    gaps: &'a [Gap],
}

/// How long a call can take between its `occurred_at` and its usage event (body 60 s,
/// upstream 300 s, stream drain 60 s, and margin): events this recent may still arrive.
pub const COMPLETENESS_ALLOWANCE_MINUTES: i64 = 10;

fn counts_row(first: String, second: String, counts: &UsageCounts) -> Vec<String> {
    vec![
        first,
        second,
        counts.requests.to_string(),
        counts.input_tokens.to_string(),
        counts.output_tokens.to_string(),
        counts.errors.to_string(),
        counts.rejected.to_string(),
    ]
}

/// Up to when usage is complete, and the gaps holding it back.
pub async fn completeness(
    ports: &Ports,
) -> anyhow::Result<(Option<chrono::DateTime<chrono::Utc>>, Vec<Gap>)> {
    let progress = ports
        .watermarks
        .progress()
        .await
        .context("cannot read metering progress")?;
    let complete = complete_through(
        &progress,
        chrono::Duration::minutes(COMPLETENESS_ALLOWANCE_MINUTES),
    );
    Ok((
        complete,
        progress.iter().flat_map(InstanceProgress::gaps).collect(),
    ))
}

/// `tollgate usage`.
pub async fn show_usage(ports: &Ports, args: UsageArgs, json: bool) -> anyhow::Result<()> {
    super::check_date_range(args.start_date, args.end_date, MAX_RANGE_DAYS)?;
    super::check_customer_exists(ports.registry.as_ref(), &args.customer_id).await?;
    let days = ports
        .counters
        .read_daily(&args.customer_id, args.start_date, args.end_date)
        .await
        .context("cannot read usage counters")?;
    let totals = total_counts(days.iter().map(|day| &day.counts));
    let (complete, gaps) = completeness(ports).await?;
    if json {
        return print_json(&UsageReport {
            customer_id: &args.customer_id,
            start_date: args.start_date,
            end_date: args.end_date,
            days: &days,
            totals,
            complete_through: complete,
            gaps: &gaps,
        });
    }
    print_lines(&[format!(
        "usage of {} from {} to {} (UTC days)",
        args.customer_id, args.start_date, args.end_date
    )]);
    let mut rows: Vec<Vec<String>> = days
        .iter()
        .map(|day| counts_row(day.day.to_string(), day.model_id.clone(), &day.counts))
        .collect();
    rows.push(counts_row("total".into(), String::new(), &totals));
    print_table(
        &[
            "date",
            "model",
            "requests",
            "input tokens",
            "output tokens",
            "errors",
            "rejected",
        ],
        rows,
    );
    print_lines(&[match complete {
        Some(at) => format!(
            "complete through {} (events after that may still arrive)",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "complete through: nothing metered yet".into(),
    }]);
    for gap in &gaps {
        print_lines(&[format!(
            "gap: proxy instance {} is missing instance_seq {}..={}",
            gap.proxy_instance, gap.first_missing, gap.last_missing
        )]);
    }
    Ok(())
}
