//! `tollgate usage`: a customer's counters per day and model, with totals.

use control::usage::{COMPLETENESS_ALLOWANCE_MINUTES, UsageQuery, customer_usage};
use schemas::arrow_column::StringEnum;
use schemas::{ApiSurface, UsageCounts};
use store::backend::Ports;

use crate::args::UsageArgs;
use crate::output::{print_json, print_lines, print_table, seconds};

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

/// The `calls by API` line: the admitted calls through each API used, and those from before
/// the API was recorded.
fn by_api_line(totals: &UsageCounts) -> String {
    let mut parts: Vec<String> = ApiSurface::ALL
        .into_iter()
        .filter(|surface| totals.by_api.of(*surface) > 0)
        .map(|surface| format!("{} {}", surface.as_str(), totals.by_api.of(surface)))
        .collect();
    let unrecorded = totals.requests.saturating_sub(totals.by_api.total());
    if unrecorded > 0 {
        parts.push(format!("not recorded {unrecorded}"));
    }
    if parts.is_empty() {
        parts.push("none".into());
    }
    format!("calls by API: {}", parts.join(", "))
}

/// The `complete through` line, saying why it trails the newest event.
fn completeness_line(complete_through: Option<chrono::DateTime<chrono::Utc>>) -> String {
    match complete_through {
        Some(at) => format!(
            "complete through {} (events after that may still arrive: it trails the newest event by {COMPLETENESS_ALLOWANCE_MINUTES} minutes, an allowance for calls still in flight)",
            seconds(&at)
        ),
        None => "complete through: nothing metered yet".into(),
    }
}

/// `tollgate usage`: without dates, the current month to date (UTC).
pub async fn run(ports: &Ports, args: UsageArgs, json: bool) -> anyhow::Result<()> {
    let query = UsageQuery {
        customer_id: args.customer_id,
        start_date: args.start_date,
        end_date: args.end_date,
        granularity: control::usage::Granularity::Day,
    };
    let usage = customer_usage(
        ports.registry.as_ref(),
        ports.counters.as_ref(),
        ports.watermarks.as_ref(),
        &query,
    )
    .await?;
    if json {
        return print_json(&usage);
    }
    print_lines(&[format!(
        "usage of {} from {} to {} (UTC days)",
        usage.customer_id, usage.start_date, usage.end_date
    )]);
    let mut rows: Vec<Vec<String>> = usage
        .days
        .iter()
        .map(|day| counts_row(day.day.to_string(), day.model_id.clone(), &day.counts))
        .collect();
    rows.push(counts_row("total".into(), String::new(), &usage.totals));
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
    print_lines(&[
        by_api_line(&usage.totals),
        completeness_line(usage.complete_through),
    ]);
    for gap in &usage.gaps {
        print_lines(&[format!(
            "gap: proxy instance {} is missing instance_seq {}..={}",
            gap.proxy_instance, gap.first_missing, gap.last_missing
        )]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_by_api_line_names_each_api_used_and_older_calls() {
        let mut totals = UsageCounts {
            requests: 9,
            ..UsageCounts::default()
        };
        assert_eq!(by_api_line(&totals), "calls by API: not recorded 9");
        totals.by_api.openai = 5;
        totals.by_api.spec = 4;
        assert_eq!(by_api_line(&totals), "calls by API: spec 4, openai 5");
        assert_eq!(by_api_line(&UsageCounts::default()), "calls by API: none");
    }

    #[test]
    fn the_completeness_line_explains_the_allowance() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-05T11:50:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            completeness_line(Some(at)),
            "complete through 2026-11-05T11:50:00Z (events after that may still arrive: it trails the newest event by 10 minutes, an allowance for calls still in flight)"
        );
        assert_eq!(
            completeness_line(None),
            "complete through: nothing metered yet"
        );
    }
}
