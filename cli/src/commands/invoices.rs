//! `tollgate invoice` and `tollgate report`.

use anyhow::Context;
use metering::invoice::{Invoice, build_invoice, month_bounds, to_csv, to_html};
use metering::rating::PeriodUsage;
use schemas::Customer;
use schemas::plan::{Plan, assignment_on};
use store::backend::Ports;

use crate::args::{InvoiceArgs, InvoiceFormat, ReportArgs};
use crate::exit;
use crate::output::{print_lines, print_text};

/// The plan that prices `customer` for the period starting `start`: the what-if plan, or
/// the assignment in effect on the first day.
async fn plan_for(
    ports: &Ports,
    customer: &Customer,
    start: chrono::NaiveDate,
    what_if: Option<&Plan>,
) -> anyhow::Result<Option<Plan>> {
    if let Some(plan) = what_if {
        return Ok(Some(plan.clone()));
    }
    let assignments = ports.plans.plan_assignments(&customer.customer_id).await?;
    let Some(assignment) = assignment_on(&assignments, start) else {
        return Ok(None);
    };
    let plan = ports
        .plans
        .plan(&assignment.plan_id, assignment.plan_version)
        .await?
        .with_context(|| {
            format!(
                "plan {} version {} assigned to {} is not stored",
                assignment.plan_id, assignment.plan_version, customer.customer_id
            )
        })?;
    Ok(Some(plan))
}

/// The customer's deduplicated usage of the month, per model.
async fn period_usage(
    ports: &Ports,
    customer_id: &str,
    start: chrono::NaiveDate,
) -> anyhow::Result<PeriodUsage> {
    let (first, last) = month_bounds(start);
    let mut usage = PeriodUsage::default();
    for cell in ports.counters.read_daily(customer_id, first, last).await? {
        usage
            .by_model
            .entry(cell.model_id)
            .or_default()
            .add(&cell.counts);
    }
    Ok(usage)
}

/// `tollgate invoice`.
pub async fn invoice(ports: &Ports, args: InvoiceArgs, json: bool) -> anyhow::Result<()> {
    let what_if = args
        .plan
        .as_deref()
        .map(super::plans::load_plan)
        .transpose()?;
    let format = if json {
        InvoiceFormat::Json
    } else {
        args.format
    };
    let customers: Vec<Customer> = match &args.customer_id {
        Some(customer_id) => {
            super::check_customer_exists(ports.registry.as_ref(), customer_id).await?;
            ports
                .registry
                .customer(customer_id)
                .await?
                .into_iter()
                .collect()
        }
        None => ports.registry.list_customers().await?,
    };
    let (complete, _) = super::usage::completeness(ports).await?;
    let mut invoices: Vec<Invoice> = Vec::new();
    let mut without_plan = Vec::new();
    for customer in &customers {
        let Some(plan) = plan_for(ports, customer, args.period, what_if.as_ref()).await? else {
            without_plan.push(customer.customer_id.clone());
            continue;
        };
        let usage = period_usage(ports, &customer.customer_id, args.period).await?;
        invoices.push(
            build_invoice(customer, args.period, &plan, &usage, complete)
                .map_err(|error| exit::usage(format!("{}: {error}", customer.customer_id)))?,
        );
    }
    if args.customer_id.is_some() && invoices.is_empty() {
        return Err(exit::not_found(format!(
            "customer {} has no plan for {}; assign one with `tollgate assign-plan --customer-id {} --plan-id ID --effective-from YYYY-MM-01`, or price with --plan FILE",
            customers
                .first()
                .map_or("", |customer| customer.customer_id.as_str()),
            args.period.format("%Y-%m"),
            customers
                .first()
                .map_or("", |customer| customer.customer_id.as_str()),
        )));
    }
    if !without_plan.is_empty() {
        tracing::warn!(customers = ?without_plan, "customers without a plan for the period were not invoiced");
    }
    let rendered = match format {
        InvoiceFormat::Json => {
            let value = if args.all {
                serde_json::to_string_pretty(&invoices)?
            } else {
                serde_json::to_string_pretty(&invoices[0])?
            };
            value + "\n"
        }
        InvoiceFormat::Csv => to_csv(&invoices),
        InvoiceFormat::Html => {
            if args.all {
                let directory = args.out.as_deref().ok_or_else(|| {
                    exit::usage(
                        "--all with --format html writes one file per invoice: give --out DIR",
                    )
                })?;
                std::fs::create_dir_all(directory)
                    .with_context(|| format!("cannot create {}", directory.display()))?;
                for invoice in &invoices {
                    let path = directory.join(format!("{}.html", invoice.invoice_number));
                    std::fs::write(&path, to_html(invoice))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                print_lines(&[format!(
                    "wrote {} invoices to {}",
                    invoices.len(),
                    directory.display()
                )]);
                return Ok(());
            }
            to_html(&invoices[0])
        }
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &rendered)
                .with_context(|| format!("cannot write {}", path.display()))?;
            print_lines(&[format!("wrote {}", path.display())]);
        }
        None => print_text(&rendered),
    }
    Ok(())
}

/// Longest range one report reads.
const MAX_REPORT_DAYS: i64 = 366;

/// `tollgate report`.
pub async fn report(ports: &Ports, args: ReportArgs, json: bool) -> anyhow::Result<()> {
    super::check_date_range(args.start_date, args.end_date, MAX_REPORT_DAYS)?;
    let customers: Vec<Customer> = match &args.customer_id {
        Some(customer_id) => {
            super::check_customer_exists(ports.registry.as_ref(), customer_id).await?;
            ports
                .registry
                .customer(customer_id)
                .await?
                .into_iter()
                .collect()
        }
        None => ports.registry.list_customers().await?,
    };
    let bar = indicatif::ProgressBar::new(customers.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("reading usage {bar:40} {pos}/{len} customers")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut usage = Vec::with_capacity(customers.len());
    for customer in &customers {
        usage.push(metering::report::CustomerUsage {
            customer_id: customer.customer_id.clone(),
            name: customer.name.clone(),
            cells: ports
                .counters
                .read_daily(&customer.customer_id, args.start_date, args.end_date)
                .await?,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = metering::report::build_report(args.start_date, args.end_date, &usage);
    std::fs::write(&args.out, metering::report::to_html(&report))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(directory) = &args.csv {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        for (name, contents) in metering::report::to_csv_files(&report) {
            let path = directory.join(name);
            std::fs::write(&path, contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if json {
        return crate::output::print_json(&report);
    }
    print_lines(&[format!(
        "wrote {} ({} customers, {} to {}){}",
        args.out.display(),
        customers.len(),
        args.start_date,
        args.end_date,
        args.csv
            .as_ref()
            .map(|directory| format!(" and CSV files in {}", directory.display()))
            .unwrap_or_default()
    )]);
    Ok(())
}
