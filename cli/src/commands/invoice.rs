//! `tollgate invoice`: price a month and write it as JSON, CSV or printable HTML.

use control::invoices::{InvoiceRequest, InvoiceScope, invoice_period};
use metering::invoice::{Invoice, to_csv, to_html};
use store::backend::Ports;

use crate::args::{InvoiceArgs, InvoiceFormat};
use crate::exit;
use crate::output::{create_directory, print_lines, print_text, write_file};

/// `tollgate invoice`.
pub async fn run(ports: &Ports, args: InvoiceArgs, json: bool) -> anyhow::Result<()> {
    let what_if_plan = args
        .plan
        .as_deref()
        .map(super::plan::load_plan)
        .transpose()?;
    let format = if json {
        InvoiceFormat::Json
    } else {
        args.format
    };
    let request = InvoiceRequest {
        scope: match &args.customer_id {
            Some(customer_id) => InvoiceScope::Customer(customer_id.clone()),
            None => InvoiceScope::All,
        },
        period: args.period,
        what_if_plan,
        model_prices: args
            .model_prices
            .as_deref()
            .map(super::plan::load_model_prices)
            .transpose()?,
        seller: args
            .seller
            .as_deref()
            .map(super::plan::load_seller_profile)
            .transpose()?,
    };
    let run = invoice_period(
        ports.registry.as_ref(),
        ports.plans.as_ref(),
        ports.counters.as_ref(),
        ports.watermarks.as_ref(),
        &request,
    )
    .await?;
    if !run.without_plan.is_empty() {
        tracing::warn!(customers = ?run.without_plan, "customers without a plan for the period were not invoiced");
    }
    let invoices = run.invoices;
    let rendered = match format {
        InvoiceFormat::Json if args.all => serde_json::to_string_pretty(&invoices)? + "\n",
        InvoiceFormat::Json => serde_json::to_string_pretty(first(&invoices)?)? + "\n",
        InvoiceFormat::Csv => to_csv(&invoices),
        InvoiceFormat::Html if args.all => return write_html_files(&invoices, &args),
        InvoiceFormat::Html => to_html(first(&invoices)?),
    };
    match &args.out {
        Some(path) => {
            write_file(path, &rendered)?;
            print_lines(&[format!("wrote {}", path.display())]);
        }
        None => print_text(&rendered),
    }
    Ok(())
}

fn first(invoices: &[Invoice]) -> anyhow::Result<&Invoice> {
    invoices
        .first()
        .ok_or_else(|| anyhow::anyhow!("no invoice was priced"))
}

/// `--all --format html`: one file per invoice in `--out DIR`.
fn write_html_files(invoices: &[Invoice], args: &InvoiceArgs) -> anyhow::Result<()> {
    let directory = args.out.as_deref().ok_or_else(|| {
        exit::usage("--all with --format html writes one file per invoice: give --out DIR")
    })?;
    create_directory(directory)?;
    for invoice in invoices {
        let path = directory.join(format!("{}.html", invoice.invoice_number));
        write_file(&path, to_html(invoice))?;
    }
    print_lines(&[format!(
        "wrote {} invoices to {}",
        invoices.len(),
        directory.display()
    )]);
    Ok(())
}
