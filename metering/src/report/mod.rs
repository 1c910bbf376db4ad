//! Usage reports: the spec's views (calls per customer per day, monthly usage per customer,
//! trends, most active customers) plus tokens by model, calls by API and error and
//! rejection rates, as data, as SVG charts and as one self-contained HTML page. Pure: the
//! caller reads the counters.

mod render;
mod views;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use schemas::DailyUsage;
use serde::Serialize;

pub use render::{to_csv_files, to_html};

/// One customer's counters for the report's range.
#[derive(Debug, Clone)]
pub struct CustomerUsage {
    pub customer_id: String,
    pub name: String,
    pub cells: Vec<DailyUsage>,
}

/// A table: a title, column names and rows of cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub id: &'static str,
    pub title: &'static str,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub calls_per_customer_per_day: Table,
    pub monthly_usage_per_customer: Table,
    pub daily_trend: Table,
    pub most_active_customers: Table,
    pub tokens_by_model: Table,
    pub calls_by_api: Table,
    pub error_and_rejection_rates: Table,
    /// Revenue under each customer's plan, Bedrock's cost and the margin, per customer and
    /// month: only when the operator gives Bedrock's prices (never in a customer's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_cost_and_margin: Option<Table>,
}

/// One customer's month for the margin view: what the plan charged (`None` without a
/// plan), what Bedrock charged (`None` when nothing could be priced), and why a figure is
/// missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginRow {
    pub customer: String,
    /// `YYYY-MM`.
    pub month: String,
    pub revenue: Option<(rust_decimal::Decimal, String)>,
    pub cost: crate::cost::CostOfGoods,
}

/// The "revenue, cost and margin by customer" table.
pub fn margin_table(rows: &[MarginRow]) -> Table {
    let money = |amount: rust_decimal::Decimal, currency: &str| format!("{amount:.2} {currency}");
    Table {
        id: "revenue_cost_and_margin",
        title: "Revenue, Bedrock cost and gross margin by customer and month",
        columns: [
            "customer",
            "month",
            "revenue",
            "Bedrock cost",
            "gross margin",
            "note",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: rows
            .iter()
            .map(|row| {
                let revenue = row.revenue.as_ref().map_or_else(
                    || "no plan".to_owned(),
                    |(amount, currency)| money(*amount, currency),
                );
                let cost = if row.cost.complete {
                    money(row.cost.total, &row.cost.currency)
                } else {
                    format!("{} + unpriced", money(row.cost.total, &row.cost.currency))
                };
                let margin = row.cost.gross_margin.map_or_else(
                    || "—".to_owned(),
                    |margin| money(margin, &row.cost.currency),
                );
                let note = match (&row.revenue, &row.cost.margin_note) {
                    (None, _) => "no plan prices this month".to_owned(),
                    (Some(_), Some(note)) => note.clone(),
                    (Some(_), None) => String::new(),
                };
                vec![
                    row.customer.clone(),
                    row.month.clone(),
                    revenue,
                    cost,
                    margin,
                    note,
                ]
            })
            .collect(),
    }
}

impl Report {
    /// The tables in display order.
    pub fn tables(&self) -> Vec<&Table> {
        let mut tables = vec![
            &self.calls_per_customer_per_day,
            &self.monthly_usage_per_customer,
            &self.daily_trend,
            &self.most_active_customers,
            &self.tokens_by_model,
            &self.calls_by_api,
            &self.error_and_rejection_rates,
        ];
        tables.extend(self.revenue_cost_and_margin.as_ref());
        tables
    }
}

/// Builds the report's tables.
pub fn build_report(start: NaiveDate, end: NaiveDate, customers: &[CustomerUsage]) -> Report {
    let days: Vec<NaiveDate> = start.iter_days().take_while(|day| *day <= end).collect();
    let daily = views::daily_totals(&days, customers);
    Report {
        start,
        end,
        calls_per_customer_per_day: views::calls_per_customer_per_day(&days, customers),
        monthly_usage_per_customer: views::monthly_usage_per_customer(customers),
        daily_trend: views::daily_trend(&daily),
        most_active_customers: views::most_active_customers(customers),
        tokens_by_model: views::tokens_by_model(customers),
        calls_by_api: views::calls_by_api(customers),
        error_and_rejection_rates: views::error_and_rejection_rates(&daily),
        revenue_cost_and_margin: None,
    }
}

/// The customers with any usage in the report, for tests and summaries.
pub fn customers_with_usage(customers: &[CustomerUsage]) -> BTreeSet<String> {
    customers
        .iter()
        .filter(|customer| !customer.cells.is_empty())
        .map(|customer| customer.customer_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use schemas::{ApiRequests, UsageCounts};

    use super::*;

    fn cell(day: u32, model: &str, requests: u64, errors: u64, rejected: u64) -> DailyUsage {
        DailyUsage {
            day: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            model_id: model.into(),
            counts: UsageCounts {
                requests,
                errors,
                rejected,
                input_tokens: requests * 10,
                output_tokens: requests * 2,
                // Model m2's calls came through OpenAI's API; m1's through Bedrock's, but
                // for two recorded before the API was.
                by_api: if model == "m2" {
                    ApiRequests {
                        openai: requests,
                        ..ApiRequests::default()
                    }
                } else {
                    ApiRequests {
                        bedrock: requests - 2,
                        ..ApiRequests::default()
                    }
                },
                ..UsageCounts::default()
            },
        }
    }

    fn customers() -> Vec<CustomerUsage> {
        vec![
            CustomerUsage {
                customer_id: "a".into(),
                name: "Alpha <A>".into(),
                cells: vec![cell(1, "m1", 10, 1, 0), cell(2, "m1", 30, 0, 5)],
            },
            CustomerUsage {
                customer_id: "b".into(),
                name: "Beta".into(),
                cells: vec![cell(2, "m2", 5, 0, 0)],
            },
        ]
    }

    #[test]
    fn every_view_is_computed_from_the_counters() {
        let report = build_report(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
            &customers(),
        );
        assert_eq!(
            report.calls_per_customer_per_day.rows,
            vec![
                vec!["2026-11-01", "10", "0"],
                vec!["2026-11-02", "30", "5"],
                vec!["2026-11-03", "0", "0"],
            ]
        );
        assert_eq!(report.most_active_customers.rows[0][0], "Alpha <A>");
        assert_eq!(report.most_active_customers.rows[0][1], "40");
        // Day 2: 35 admitted, 5 rejected: 5 / 40 = 12.5%.
        assert_eq!(
            report.error_and_rejection_rates.rows[1],
            vec!["2026-11-02", "0.0", "12.5"]
        );
        // Day 1: 1 error in 10 admitted = 10.0%.
        assert_eq!(report.error_and_rejection_rates.rows[0][1], "10.0");
        assert_eq!(report.tokens_by_model.rows[1], vec!["m2", "50", "10"]);
        // 45 calls: 36 through Bedrock's routes (customer a), 5 through OpenAI's (customer
        // b), 4 from before the API was recorded (customer a, two on each day).
        assert_eq!(
            report.calls_by_api.rows,
            vec![
                vec!["Bedrock runtime (/model/…)", "36", "80.0", "1"],
                vec!["Tollgate spec (POST /prod/bedrock)", "0", "0.0", "0"],
                vec!["Anthropic Messages (/v1/messages)", "0", "0.0", "0"],
                vec![
                    "OpenAI Chat Completions (/v1/chat/completions)",
                    "5",
                    "11.1",
                    "1"
                ],
                vec!["not recorded (older events)", "4", "8.9", "1"],
            ]
        );
        let html = to_html(&report);
        for table in report.tables() {
            assert!(
                html.contains(&format!("id=\"chart-{}\"", table.id)),
                "{}",
                table.id
            );
            assert!(
                html.contains(&format!("id=\"table-{}\"", table.id)),
                "{}",
                table.id
            );
        }
        assert!(html.contains("Alpha &lt;A&gt;"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "self-contained"
        );
        let files = to_csv_files(&report);
        assert_eq!(files.len(), 7);
        assert!(
            files[0]
                .1
                .starts_with("day,Alpha <A>,Beta\n2026-11-01,10,0\n")
        );
    }
}
