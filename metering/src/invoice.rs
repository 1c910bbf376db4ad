//! Invoices: one customer's month, priced under a plan, as JSON, CSV or printable HTML.
//!
//! Deterministic: the same usage, plan and completeness give byte-identical output, and the
//! invoice number is derived from the customer and the period only.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use schemas::plan::Plan;
use schemas::{Customer, UsageCounts};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::rating::{LineItem, PeriodUsage, RatingError, Subtotal, rate};

/// Whether the period's usage is known to be complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Events of the period may still arrive (`complete_through` is before its end).
    Draft,
    /// Every event of the period is counted.
    Final,
}

/// Who is billed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BilledCustomer {
    pub customer_id: String,
    pub name: String,
    pub email: String,
}

/// The plan an invoice was priced with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PricedWith {
    pub plan_id: String,
    pub version: u32,
    pub name: String,
}

/// One invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invoice {
    pub invoice_number: String,
    pub status: InvoiceStatus,
    /// `YYYY-MM`.
    pub period: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub customer: BilledCustomer,
    pub plan: PricedWith,
    pub currency: String,
    pub lines: Vec<LineItem>,
    /// One per charge of the plan that produced lines.
    pub subtotals: Vec<Subtotal>,
    pub total: Decimal,
    pub usage: UsageCounts,
    pub complete_through: Option<DateTime<Utc>>,
    /// The day after the period: when the invoice is issued.
    pub issue_date: NaiveDate,
    /// The issue date plus the seller's payment terms (30 days without a profile).
    pub due_date: NaiveDate,
    /// What the customer quotes with the payment: an ISO 11649 creditor reference
    /// (`RF` and two check digits) over the invoice number.
    pub payment_reference: String,
    /// Who issues the invoice, from the operator's seller profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller: Option<schemas::seller::SellerProfile>,
    /// What Bedrock charged for the usage, and the margin: for the operator only, given
    /// when a price table is (`--model-prices`); never on the HTML or CSV invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_of_goods: Option<crate::cost::CostOfGoods>,
}

/// The first and last day of the month starting at `start`.
pub fn month_bounds(start: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = start.with_day(1).unwrap_or(start);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(first);
    (first, next.pred_opt().unwrap_or(first))
}

/// Parses `YYYY-MM` into the month's first day.
pub fn parse_period(text: &str) -> Option<NaiveDate> {
    let (year, month) = text.trim().split_once('-')?;
    if month.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

/// A stable invoice number: the period and a digest of the customer id.
pub fn invoice_number(customer_id: &str, period_start: NaiveDate) -> String {
    let digest = Sha256::digest(customer_id.as_bytes());
    let short: String = digest
        .iter()
        .take(4)
        .map(|byte| format!("{byte:02X}"))
        .collect();
    format!("TG-{}-{short}", period_start.format("%Y%m"))
}

/// The ISO 11649 creditor reference of `reference` (letters and digits; others dropped):
/// `RF`, two check digits (98 − the number mod 97, letters counting A = 10 … Z = 35, with
/// `RF00` moved to the end), then the reference.
pub fn creditor_reference(reference: &str) -> String {
    let body: String = reference
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|character| character.to_ascii_uppercase())
        .collect();
    let remainder = format!("{body}RF00")
        .chars()
        .fold(0u32, |remainder, character| {
            let value = character.to_digit(36).unwrap_or(0);
            if value >= 10 {
                (remainder * 100 + value) % 97
            } else {
                (remainder * 10 + value) % 97
            }
        });
    format!("RF{:02}{body}", 98 - remainder)
}

impl Invoice {
    /// The invoice issued by `seller`: its details, and the due date by its payment terms.
    pub fn issued_by(mut self, seller: &schemas::seller::SellerProfile) -> Self {
        self.due_date = self
            .issue_date
            .checked_add_days(chrono::Days::new(u64::from(seller.payment_terms_days)))
            .unwrap_or(self.issue_date);
        self.seller = Some(seller.clone());
        self
    }
}

/// Prices one customer's month.
pub fn build_invoice(
    customer: &Customer,
    period_start: NaiveDate,
    plan: &Plan,
    usage: &PeriodUsage,
    complete_through: Option<DateTime<Utc>>,
) -> Result<Invoice, RatingError> {
    let (first, last) = month_bounds(period_start);
    let rated = rate(plan, usage)?;
    let end = last
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|end| Utc.from_utc_datetime(&end));
    let status = match (complete_through, end) {
        (Some(through), Some(end)) if through >= end => InvoiceStatus::Final,
        _ => InvoiceStatus::Draft,
    };
    let issue_date = last.succ_opt().unwrap_or(last);
    let mut totals = UsageCounts::default();
    for counts in usage.by_model.values() {
        totals.add(counts);
    }
    Ok(Invoice {
        invoice_number: invoice_number(&customer.customer_id, first),
        status,
        period: first.format("%Y-%m").to_string(),
        period_start: first,
        period_end: last,
        customer: BilledCustomer {
            customer_id: customer.customer_id.clone(),
            name: customer.name.clone(),
            email: customer.email.clone(),
        },
        plan: PricedWith {
            plan_id: plan.id.clone(),
            version: plan.version,
            name: plan.name.clone(),
        },
        currency: rated.currency,
        lines: rated.lines,
        subtotals: rated.subtotals,
        total: rated.total,
        usage: totals,
        complete_through,
        issue_date,
        due_date: issue_date
            .checked_add_days(chrono::Days::new(u64::from(
                schemas::seller::DEFAULT_PAYMENT_TERMS_DAYS,
            )))
            .unwrap_or(issue_date),
        payment_reference: creditor_reference(&invoice_number(&customer.customer_id, first)),
        seller: None,
        cost_of_goods: None,
    })
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The invoices' lines as CSV, one row per line plus a total row per invoice.
pub fn to_csv(invoices: &[Invoice]) -> String {
    let mut csv = String::from(
        "invoice_number,status,period,customer_id,plan_id,plan_version,currency,description,quantity,unit,unit_price,amount\n",
    );
    for invoice in invoices {
        let prefix = [
            invoice.invoice_number.clone(),
            format!("{:?}", invoice.status).to_lowercase(),
            invoice.period.clone(),
            csv_field(&invoice.customer.customer_id),
            csv_field(&invoice.plan.plan_id),
            invoice.plan.version.to_string(),
            invoice.currency.clone(),
        ]
        .join(",");
        for line in &invoice.lines {
            csv.push_str(&format!(
                "{prefix},{},{},{},{},{}\n",
                csv_field(&line.description),
                line.quantity.normalize(),
                csv_field(&line.unit),
                line.unit_price.normalize(),
                line.amount
            ));
        }
        for subtotal in &invoice.subtotals {
            csv.push_str(&format!(
                "{prefix},{},,,,{}\n",
                csv_field(&format!("subtotal: {}", subtotal.charge)),
                subtotal.amount
            ));
        }
        csv.push_str(&format!("{prefix},total,,,,{}\n", invoice.total));
    }
    csv
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The seller's name, address, tax id and contact, at the top of the page.
fn seller_block(seller: Option<&schemas::seller::SellerProfile>) -> String {
    let Some(seller) = seller else {
        return String::new();
    };
    let mut lines = vec![format!("<strong>{}</strong>", escape(&seller.legal_name))];
    lines.extend(seller.address.iter().map(|line| escape(line)));
    if let Some(tax_id) = &seller.tax_id {
        lines.push(format!("Tax id {}", escape(tax_id)));
    }
    lines.push(escape(&seller.contact_email));
    format!(
        "<address class=\"seller\">{}</address>\n",
        lines.join("<br>")
    )
}

/// The invoice page's stylesheet, inlined so the page needs nothing else.
const INVOICE_STYLE: &str = "@page { size: A4; margin: 18mm; }\n\
body { font-family: Helvetica, Arial, sans-serif; font-size: 10pt; color: #111; max-width: 174mm; margin: 0 auto; }\n\
h1 { font-size: 18pt; margin: 0 0 4mm; }\n\
table { width: 100%; border-collapse: collapse; margin-top: 6mm; }\n\
th, td { padding: 1.5mm 2mm; border-bottom: 0.2mm solid #ccc; text-align: left; vertical-align: top; }\n\
td.n, th.n { text-align: right; white-space: nowrap; }\n\
tfoot td { font-weight: bold; border-top: 0.4mm solid #111; border-bottom: none; }\n\
tfoot tr.subtotal td { font-weight: normal; border-top: none; }\n\
.meta td { border: none; padding: 0.5mm 2mm 0.5mm 0; }\n\
.draft { color: #b00; font-weight: bold; }\n";

/// One table row per invoice line.
fn line_rows(invoice: &Invoice) -> String {
    invoice
        .lines
        .iter()
        .map(|line| {
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
                escape(&line.description),
                line.quantity.normalize(),
                escape(&line.unit),
                line.unit_price.normalize(),
                line.amount
            )
        })
        .collect()
}

/// One footer row per charge subtotal.
fn subtotal_rows(invoice: &Invoice) -> String {
    invoice
        .subtotals
        .iter()
        .map(|subtotal| {
            format!(
                "<tr class=\"subtotal\"><td colspan=\"4\">Subtotal: {}</td><td class=\"n\">{}</td></tr>\n",
                escape(&subtotal.charge),
                subtotal.amount
            )
        })
        .collect()
}

/// A printable (A4), self-contained HTML invoice: no external assets.
pub fn to_html(invoice: &Invoice) -> String {
    let rows = line_rows(invoice);
    let subtotals = subtotal_rows(invoice);
    let draft = match invoice.status {
        InvoiceStatus::Draft => {
            "<p class=\"draft\">DRAFT: usage of this period may still arrive</p>"
        }
        InvoiceStatus::Final => "",
    };
    let complete = invoice.complete_through.map_or_else(
        || "nothing metered yet".to_owned(),
        |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Invoice {number}</title>
<style>
{style}</style>
</head>
<body>
{seller}<h1>Invoice {number}</h1>
{draft}
<table class="meta">
<tr><td>Customer</td><td>{name} &lt;{email}&gt; ({customer_id})</td></tr>
<tr><td>Issued</td><td>{issue_date}</td></tr>
<tr><td>Due</td><td>{due_date}</td></tr>
<tr><td>Payment reference</td><td>{reference}</td></tr>
<tr><td>Period</td><td>{start} to {end} (UTC)</td></tr>
<tr><td>Plan</td><td>{plan_name} ({plan_id} version {plan_version})</td></tr>
<tr><td>Usage complete through</td><td>{complete}</td></tr>
</table>
<table>
<thead><tr><th>Description</th><th class="n">Quantity</th><th>Unit</th><th class="n">Unit price</th><th class="n">Amount ({currency})</th></tr></thead>
<tbody>
{rows}</tbody>
<tfoot>
{subtotals}<tr><td colspan="4">Total ({currency})</td><td class="n" id="total">{total}</td></tr></tfoot>
</table>
<p>Amounts are net of taxes.</p>
{instructions}</body>
</html>
"#,
        number = escape(&invoice.invoice_number),
        seller = seller_block(invoice.seller.as_ref()),
        issue_date = invoice.issue_date,
        due_date = invoice.due_date,
        reference = escape(&invoice.payment_reference),
        instructions = invoice
            .seller
            .as_ref()
            .and_then(|seller| seller.payment_instructions.as_deref())
            .map(|text| format!(
                "<p class=\"pay\">Payment: {}, quoting {}</p>\n",
                escape(text),
                escape(&invoice.payment_reference)
            ))
            .unwrap_or_default(),
        style = INVOICE_STYLE,
        draft = draft,
        name = escape(&invoice.customer.name),
        email = escape(&invoice.customer.email),
        customer_id = escape(&invoice.customer.customer_id),
        start = invoice.period_start,
        end = invoice.period_end,
        plan_name = escape(&invoice.plan.name),
        plan_id = escape(&invoice.plan.plan_id),
        plan_version = invoice.plan.version,
        complete = complete,
        currency = escape(&invoice.currency),
        rows = rows,
        subtotals = subtotals,
        total = invoice.total,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Customer {
        Customer {
            customer_id: "cust-1".into(),
            name: "Acme <Corp> & Co".into(),
            email: "billing@acme.example".into(),
            status: schemas::CustomerStatus::Active,
            created_at: Utc::now(),
            limits: schemas::Limits::default(),
        }
    }

    fn plan() -> Plan {
        Plan::from_toml(
            "schema_version = 1\nid = \"ppr\"\nversion = 2\nname = \"Pay per request\"\ncurrency = \"USD\"\n\n[[charges]]\ntype = \"per_request\"\nunit_price = \"0.01\"\n",
        )
        .unwrap()
    }

    fn usage(requests: u64) -> PeriodUsage {
        let mut usage = PeriodUsage::default();
        usage.by_model.insert(
            "m".into(),
            UsageCounts {
                requests,
                ..UsageCounts::default()
            },
        );
        usage
    }

    #[test]
    fn periods_and_numbers_are_stable() {
        let november = parse_period("2026-11").unwrap();
        assert_eq!(
            month_bounds(november),
            (
                NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
            )
        );
        assert_eq!(
            month_bounds(parse_period("2026-12").unwrap()).1.to_string(),
            "2026-12-31"
        );
        assert!(parse_period("2026-13").is_none());
        assert!(parse_period("2026-1").is_none());
        assert_eq!(
            invoice_number("cust-1", november),
            invoice_number("cust-1", november)
        );
        assert_ne!(
            invoice_number("cust-1", november),
            invoice_number("cust-2", november)
        );
        assert!(invoice_number("cust-1", november).starts_with("TG-202611-"));
    }

    #[test]
    fn payment_references_are_iso_11649_creditor_references() {
        // The standard's own example.
        assert_eq!(creditor_reference("539007547034"), "RF18539007547034");
        let number = invoice_number("cust-1", parse_period("2026-11").unwrap());
        let reference = creditor_reference(&number);
        assert!(reference.starts_with("RF"));
        assert!(!reference.contains('-'));
        // Valid by the standard's check: moved to the end and read as a number, mod 97 is 1.
        let rotated = format!("{}{}", &reference[4..], &reference[..4]);
        let remainder = rotated.chars().fold(0u32, |remainder, character| {
            let value = character.to_digit(36).unwrap();
            if value >= 10 {
                (remainder * 100 + value) % 97
            } else {
                (remainder * 10 + value) % 97
            }
        });
        assert_eq!(remainder, 1, "{reference}");
    }

    #[test]
    fn an_invoice_is_issued_after_its_period_and_due_by_the_sellers_terms() {
        let november = parse_period("2026-11").unwrap();
        let invoice = build_invoice(&customer(), november, &plan(), &usage(0), None).unwrap();
        assert_eq!(invoice.issue_date.to_string(), "2026-12-01");
        assert_eq!(
            invoice.due_date.to_string(),
            "2026-12-31",
            "30 days without a profile"
        );
        assert_eq!(
            invoice.total.to_string(),
            "0.00",
            "amounts in the currency's minor units"
        );
        assert_eq!(invoice.lines[0].amount.to_string(), "0.00");
        assert!(to_csv(std::slice::from_ref(&invoice)).contains(",total,,,,0.00\n"));
        let seller = schemas::seller::SellerProfile::from_toml(
            "schema_version = 1\nlegal_name = \"Reseller <GmbH>\"\naddress = [\"Hauptstrasse 1\", \"10115 Berlin\"]\ntax_id = \"DE123456789\"\ncontact_email = \"billing@reseller.example\"\npayment_terms_days = 14\npayment_instructions = \"IBAN DE89 3704 0044 0532 0130 00\"\n",
        )
        .unwrap();
        let issued = invoice.issued_by(&seller);
        assert_eq!(issued.due_date.to_string(), "2026-12-15");
        let html = to_html(&issued);
        assert!(html.contains("Reseller &lt;GmbH&gt;"), "escaped");
        assert!(html.contains("10115 Berlin") && html.contains("DE123456789"));
        assert!(html.contains(&issued.payment_reference));
        assert!(html.contains("IBAN DE89"));
        assert!(html.contains("<td>2026-12-15</td>"));
    }

    #[test]
    fn an_invoice_is_draft_until_its_period_is_complete_and_renders_deterministically() {
        let november = parse_period("2026-11").unwrap();
        let during = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap();
        let draft =
            build_invoice(&customer(), november, &plan(), &usage(1_234), Some(during)).unwrap();
        assert_eq!(draft.status, InvoiceStatus::Draft);
        // 1,234 × $0.01 = $12.34.
        assert_eq!(draft.total, "12.34".parse().unwrap());
        let final_invoice =
            build_invoice(&customer(), november, &plan(), &usage(1_234), Some(after)).unwrap();
        assert_eq!(final_invoice.status, InvoiceStatus::Final);

        let html = to_html(&final_invoice);
        assert!(
            html.contains("Acme &lt;Corp&gt; &amp; Co"),
            "names are escaped"
        );
        assert!(html.contains("<td class=\"n\" id=\"total\">12.34</td>"));
        assert!(!html.contains("DRAFT"));
        assert!(to_html(&draft).contains("DRAFT"));
        assert!(!html.contains("http"), "no external assets");
        assert_eq!(to_html(&final_invoice), html, "byte-identical");
        let csv = to_csv(&[final_invoice]);
        assert!(
            csv.lines().last().unwrap().ends_with(",total,,,,12.34"),
            "{csv}"
        );
    }
}
