//! The report rendered: SVG charts with their tables in one self-contained HTML page, and
//! one CSV file per table. Pure.

use std::fmt::Write as _;

use super::{Report, Table};

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
        (&report.calls_by_api, bar_chart(&report.calls_by_api, 0, 1)),
        (
            &report.error_and_rejection_rates,
            line_chart(&report.error_and_rejection_rates, &[1, 2]),
        ),
    ];
    let margin = report
        .revenue_cost_and_margin
        .as_ref()
        .map(|table| (table, String::new()));
    let mut body = String::new();
    for (table, chart) in sections.into_iter().chain(margin) {
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
