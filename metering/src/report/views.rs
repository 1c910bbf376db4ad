//! The report's views, one function each, from the customers' counters. Pure.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use schemas::{ApiSurface, UsageCounts};

use super::{CustomerUsage, Table};

fn label(customer: &CustomerUsage) -> String {
    if customer.name.is_empty() {
        customer.customer_id.clone()
    } else {
        customer.name.clone()
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0.0".into()
    } else {
        format!("{:.1}", part as f64 * 100.0 / whole as f64)
    }
}

fn columns<const N: usize>(names: [&str; N]) -> Vec<String> {
    names.map(str::to_owned).to_vec()
}

/// Every customer's counts per day, with a zero row for each day of the range.
pub(super) fn daily_totals(
    days: &[NaiveDate],
    customers: &[CustomerUsage],
) -> BTreeMap<NaiveDate, UsageCounts> {
    let mut daily: BTreeMap<NaiveDate, UsageCounts> = days
        .iter()
        .map(|day| (*day, UsageCounts::default()))
        .collect();
    for cell in customers.iter().flat_map(|customer| &customer.cells) {
        daily.entry(cell.day).or_default().add(&cell.counts);
    }
    daily
}

/// Calls per customer per day: a row per day, a column per customer.
pub(super) fn calls_per_customer_per_day(days: &[NaiveDate], customers: &[CustomerUsage]) -> Table {
    let mut per_day: BTreeMap<(NaiveDate, usize), u64> = BTreeMap::new();
    for (index, customer) in customers.iter().enumerate() {
        for cell in &customer.cells {
            *per_day.entry((cell.day, index)).or_default() += cell.counts.requests;
        }
    }
    Table {
        id: "calls-per-customer-per-day",
        title: "API calls per customer per day",
        columns: std::iter::once("day".to_owned())
            .chain(customers.iter().map(label))
            .collect(),
        rows: days
            .iter()
            .map(|day| {
                std::iter::once(day.to_string())
                    .chain((0..customers.len()).map(|index| {
                        per_day
                            .get(&(*day, index))
                            .copied()
                            .unwrap_or(0)
                            .to_string()
                    }))
                    .collect()
            })
            .collect(),
    }
}

/// Total usage per customer per calendar month.
pub(super) fn monthly_usage_per_customer(customers: &[CustomerUsage]) -> Table {
    let mut monthly: BTreeMap<(String, String), UsageCounts> = BTreeMap::new();
    for customer in customers {
        for cell in &customer.cells {
            monthly
                .entry((cell.day.format("%Y-%m").to_string(), label(customer)))
                .or_default()
                .add(&cell.counts);
        }
    }
    Table {
        id: "monthly-usage-per-customer",
        title: "Total usage by customer per month",
        columns: columns([
            "month",
            "customer",
            "requests",
            "input tokens",
            "output tokens",
        ]),
        rows: monthly
            .iter()
            .map(|((month, customer), counts)| {
                vec![
                    month.clone(),
                    customer.clone(),
                    counts.requests.to_string(),
                    counts.input_tokens.to_string(),
                    counts.output_tokens.to_string(),
                ]
            })
            .collect(),
    }
}

/// Requests and tokens per day, every customer together.
pub(super) fn daily_trend(daily: &BTreeMap<NaiveDate, UsageCounts>) -> Table {
    Table {
        id: "daily-trend",
        title: "Usage trend over time",
        columns: columns(["day", "requests", "tokens"]),
        rows: daily
            .iter()
            .map(|(day, counts)| {
                vec![
                    day.to_string(),
                    counts.requests.to_string(),
                    counts.total_tokens().to_string(),
                ]
            })
            .collect(),
    }
}

/// The ten customers with the most requests (ties by name).
pub(super) fn most_active_customers(customers: &[CustomerUsage]) -> Table {
    let mut by_customer: Vec<(String, UsageCounts)> = customers
        .iter()
        .map(|customer| {
            let mut total = UsageCounts::default();
            for cell in &customer.cells {
                total.add(&cell.counts);
            }
            (label(customer), total)
        })
        .collect();
    by_customer.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
    Table {
        id: "most-active-customers",
        title: "Most active customers",
        columns: columns(["customer", "requests", "tokens"]),
        rows: by_customer
            .iter()
            .take(10)
            .map(|(customer, counts)| {
                vec![
                    customer.clone(),
                    counts.requests.to_string(),
                    counts.total_tokens().to_string(),
                ]
            })
            .collect(),
    }
}

/// Input and output tokens per model, every customer together.
pub(super) fn tokens_by_model(customers: &[CustomerUsage]) -> Table {
    let mut by_model: BTreeMap<String, UsageCounts> = BTreeMap::new();
    for cell in customers.iter().flat_map(|customer| &customer.cells) {
        by_model
            .entry(cell.model_id.clone())
            .or_default()
            .add(&cell.counts);
    }
    Table {
        id: "tokens-by-model",
        title: "Tokens by model",
        columns: columns(["model", "input tokens", "output tokens"]),
        rows: by_model
            .iter()
            .map(|(model, counts)| {
                vec![
                    model.clone(),
                    counts.input_tokens.to_string(),
                    counts.output_tokens.to_string(),
                ]
            })
            .collect(),
    }
}

/// Per day, the share of admitted calls that failed and of all calls refused for a limit.
pub(super) fn error_and_rejection_rates(daily: &BTreeMap<NaiveDate, UsageCounts>) -> Table {
    Table {
        id: "error-and-rejection-rates",
        title: "Error and rejection rates",
        columns: columns(["day", "error rate %", "rejection rate %"]),
        rows: daily
            .iter()
            .map(|(day, counts)| {
                vec![
                    day.to_string(),
                    percent(counts.errors, counts.requests),
                    percent(counts.rejected, counts.requests + counts.rejected),
                ]
            })
            .collect(),
    }
}

/// How reports name each API.
pub(super) fn api_label(surface: ApiSurface) -> &'static str {
    match surface {
        ApiSurface::Bedrock => "Bedrock runtime (/model/…)",
        ApiSurface::Spec => "Tollgate spec (POST /prod/bedrock)",
        ApiSurface::Anthropic => "Anthropic Messages (/v1/messages)",
        ApiSurface::OpenAi => "OpenAI Chat Completions (/v1/chat/completions)",
    }
}

/// Admitted calls by the API the customer called, with each API's share and how many
/// customers used it. Calls whose events predate the API being recorded get a row of
/// their own when there are any.
pub(super) fn calls_by_api(customers: &[CustomerUsage]) -> Table {
    let mut calls = [0_u64; ApiSurface::ALL.len()];
    let mut users = [0_usize; ApiSurface::ALL.len()];
    let (mut total, mut unrecorded, mut unrecorded_users) = (0_u64, 0_u64, 0_usize);
    for customer in customers {
        let counts =
            schemas::usage_counts::total_counts(customer.cells.iter().map(|cell| &cell.counts));
        for (index, surface) in ApiSurface::ALL.into_iter().enumerate() {
            let through = counts.by_api.of(surface);
            calls[index] += through;
            users[index] += usize::from(through > 0);
        }
        let missing = counts.requests.saturating_sub(counts.by_api.total());
        unrecorded += missing;
        unrecorded_users += usize::from(missing > 0);
        total += counts.requests;
    }
    let row = |label: &str, calls: u64, users: usize| {
        vec![
            label.to_owned(),
            calls.to_string(),
            percent(calls, total),
            users.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = ApiSurface::ALL
        .into_iter()
        .enumerate()
        .map(|(index, surface)| row(api_label(surface), calls[index], users[index]))
        .collect();
    if unrecorded > 0 {
        rows.push(row(
            "not recorded (older events)",
            unrecorded,
            unrecorded_users,
        ));
    }
    Table {
        id: "calls-by-api",
        title: "Calls by API",
        columns: columns(["API", "calls", "share %", "customers"]),
        rows,
    }
}
