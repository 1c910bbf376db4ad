//! Usage reports: the spec's views (calls per customer per day, monthly usage per customer,
//! trends, most active customers) plus tokens by model and error and rejection rates, as
//! data, as SVG charts and as one self-contained HTML page. Pure: the caller reads the
//! counters.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::NaiveDate;
use schemas::{DailyUsage, UsageCounts};
use serde::Serialize;

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
    pub error_and_rejection_rates: Table,
}

impl Report {
    /// The tables in display order.
    pub fn tables(&self) -> [&Table; 6] {
        [
            &self.calls_per_customer_per_day,
            &self.monthly_usage_per_customer,
            &self.daily_trend,
            &self.most_active_customers,
            &self.tokens_by_model,
            &self.error_and_rejection_rates,
        ]
    }
}

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

/// Builds the report's tables.
pub fn build_report(start: NaiveDate, end: NaiveDate, customers: &[CustomerUsage]) -> Report {
    let days: Vec<NaiveDate> = start.iter_days().take_while(|day| *day <= end).collect();

    // Calls per customer per day: a row per day, a column per customer.
    let mut per_day: BTreeMap<(NaiveDate, usize), u64> = BTreeMap::new();
    for (index, customer) in customers.iter().enumerate() {
        for cell in &customer.cells {
            *per_day.entry((cell.day, index)).or_default() += cell.counts.requests;
        }
    }
    let calls_per_customer_per_day = Table {
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
    };

    // Total usage per customer per month.
    let mut monthly: BTreeMap<(String, String), UsageCounts> = BTreeMap::new();
    for customer in customers {
        for cell in &customer.cells {
            monthly
                .entry((cell.day.format("%Y-%m").to_string(), label(customer)))
                .or_default()
                .add(&cell.counts);
        }
    }
    let monthly_usage_per_customer = Table {
        id: "monthly-usage-per-customer",
        title: "Total usage by customer per month",
        columns: [
            "month",
            "customer",
            "requests",
            "input tokens",
            "output tokens",
        ]
        .map(str::to_owned)
        .to_vec(),
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
    };

    // Trends: everything per day.
    let mut daily: BTreeMap<NaiveDate, UsageCounts> = days
        .iter()
        .map(|day| (*day, UsageCounts::default()))
        .collect();
    let mut by_model: BTreeMap<String, UsageCounts> = BTreeMap::new();
    let mut by_customer: Vec<(String, UsageCounts)> = Vec::new();
    for customer in customers {
        let mut total = UsageCounts::default();
        for cell in &customer.cells {
            daily.entry(cell.day).or_default().add(&cell.counts);
            by_model
                .entry(cell.model_id.clone())
                .or_default()
                .add(&cell.counts);
            total.add(&cell.counts);
        }
        by_customer.push((label(customer), total));
    }
    let daily_trend = Table {
        id: "daily-trend",
        title: "Usage trend over time",
        columns: ["day", "requests", "tokens"].map(str::to_owned).to_vec(),
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
    };
    by_customer.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
    let most_active_customers = Table {
        id: "most-active-customers",
        title: "Most active customers",
        columns: ["customer", "requests", "tokens"]
            .map(str::to_owned)
            .to_vec(),
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
    };
    let tokens_by_model = Table {
        id: "tokens-by-model",
        title: "Tokens by model",
        columns: ["model", "input tokens", "output tokens"]
            .map(str::to_owned)
            .to_vec(),
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
    };
    let error_and_rejection_rates = Table {
        id: "error-and-rejection-rates",
        title: "Error and rejection rates",
        columns: ["day", "error rate %", "rejection rate %"]
            .map(str::to_owned)
            .to_vec(),
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
    };
    Report {
        start,
        end,
        calls_per_customer_per_day,
        monthly_usage_per_customer,
        daily_trend,
        most_active_customers,
        tokens_by_model,
        error_and_rejection_rates,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

fn number(cell: &str) -> f64 {
    cell.parse().unwrap_or(0.0)
}

/// A line chart of the numeric columns `series` against the first column.
fn line_chart(table: &Table, series: &[usize]) -> String {
    let (width, height, left, bottom) = (640.0, 220.0, 48.0, 24.0);
    let max = table
        .rows
        .iter()
        .flat_map(|row| series.iter().map(|column| number(&row[*column])))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let points = table.rows.len().max(2) - 1;
    let x = |index: usize| left + (width - left - 8.0) * index as f64 / points as f64;
    let y = |value: f64| (height - bottom) - (height - bottom - 8.0) * value / max;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"chart-{}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">",
        table.id,
        escape(table.title)
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{width}\" y2=\"{0}\" stroke=\"#999\"/><text x=\"4\" y=\"14\" font-size=\"10\">{1}</text>",
        height - bottom,
        max.round()
    );
    for (color, column) in series.iter().enumerate() {
        let path: Vec<String> = table
            .rows
            .iter()
            .enumerate()
            .map(|(index, row)| format!("{:.1},{:.1}", x(index), y(number(&row[*column]))))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            PALETTE[color % PALETTE.len()],
            path.join(" "),
            escape(&table.columns[*column])
        );
    }
    if let (Some(first), Some(last)) = (table.rows.first(), table.rows.last()) {
        let _ = write!(
            svg,
            "<text x=\"{left}\" y=\"{height}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{height}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            escape(&first[0]),
            width - 8.0,
            escape(&last[0])
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A horizontal bar chart of column `value` labelled by column `name`.
fn bar_chart(table: &Table, name: usize, value: usize) -> String {
    let bar = 18.0;
    let height = (table.rows.len().max(1) as f64) * (bar + 6.0) + 8.0;
    let (width, left) = (640.0, 200.0);
    let max = table
        .rows
        .iter()
        .map(|row| number(&row[value]))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let mut svg = format!(
        "<svg class=\"chart\" id=\"chart-{}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">",
        table.id,
        escape(table.title)
    );
    for (index, row) in table.rows.iter().enumerate() {
        let top = 4.0 + index as f64 * (bar + 6.0);
        let length = (width - left - 60.0) * number(&row[value]) / max;
        let _ = write!(
            svg,
            "<text x=\"{0}\" y=\"{1}\" font-size=\"11\" text-anchor=\"end\">{2}</text><rect x=\"{3}\" y=\"{4}\" width=\"{length:.1}\" height=\"{bar}\" fill=\"{5}\"/><text x=\"{6:.1}\" y=\"{1}\" font-size=\"11\">{7}</text>",
            left - 6.0,
            top + 13.0,
            escape(&row[name]),
            left,
            top,
            PALETTE[index % PALETTE.len()],
            left + length + 4.0,
            escape(&row[value])
        );
    }
    svg.push_str("</svg>");
    svg
}

fn html_table(table: &Table) -> String {
    let mut html = format!("<table id=\"table-{}\"><thead><tr>", table.id);
    for column in &table.columns {
        let _ = write!(html, "<th>{}</th>", escape(column));
    }
    html.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", escape(cell));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

/// The report as one self-contained HTML page: an SVG chart per view with its table
/// beneath. No external assets, so it works offline and can be emailed.
pub fn to_html(report: &Report) -> String {
    let customers = report.calls_per_customer_per_day.columns.len() - 1;
    let sections = [
        (
            &report.calls_per_customer_per_day,
            line_chart(
                &report.calls_per_customer_per_day,
                &(1..=customers).collect::<Vec<_>>(),
            ),
        ),
        (
            &report.monthly_usage_per_customer,
            bar_chart(&report.monthly_usage_per_customer, 1, 2),
        ),
        (
            &report.daily_trend,
            line_chart(&report.daily_trend, &[1, 2]),
        ),
        (
            &report.most_active_customers,
            bar_chart(&report.most_active_customers, 0, 1),
        ),
        (
            &report.tokens_by_model,
            bar_chart(&report.tokens_by_model, 0, 2),
        ),
        (
            &report.error_and_rejection_rates,
            line_chart(&report.error_and_rejection_rates, &[1, 2]),
        ),
    ];
    let mut body = String::new();
    for (table, chart) in sections {
        let _ = writeln!(
            body,
            "<section id=\"{}\"><h2>{}</h2>{chart}{}</section>",
            table.id,
            escape(table.title),
            html_table(table)
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tollgate usage report {start} to {end}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; font-size: 10pt; color: #111; max-width: 680px; margin: 16px auto; }}
h1 {{ font-size: 16pt; }} h2 {{ font-size: 12pt; margin-top: 24px; }}
svg.chart {{ width: 100%; height: auto; border: 1px solid #eee; }}
table {{ border-collapse: collapse; margin-top: 6px; }}
th, td {{ padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style>
</head>
<body>
<h1>Usage report, {start} to {end} (UTC days)</h1>
{body}</body>
</html>
"#,
        start = report.start,
        end = report.end,
        body = body
    )
}

/// The report's tables as CSV files: `(file name, contents)`.
pub fn to_csv_files(report: &Report) -> Vec<(String, String)> {
    let field = |text: &str| {
        if text.contains([',', '"', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    };
    report
        .tables()
        .iter()
        .map(|table| {
            let mut csv = table
                .columns
                .iter()
                .map(|column| field(column))
                .collect::<Vec<_>>()
                .join(",");
            csv.push('\n');
            for row in &table.rows {
                csv.push_str(
                    &row.iter()
                        .map(|cell| field(cell))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                csv.push('\n');
            }
            (format!("{}.csv", table.id), csv)
        })
        .collect()
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
        assert_eq!(files.len(), 6);
        assert!(
            files[0]
                .1
                .starts_with("day,Alpha <A>,Beta\n2026-11-01,10,0\n")
        );
    }
}
