//! Invoices: `tollgate invoice`, a month of deduplicated usage priced under each
//! customer's plan (or a what-if plan). Rendering (JSON, CSV, HTML) is the adapter's.

use chrono::NaiveDate;
use metering::cost::cost_of_usage;
use metering::invoice::{Invoice, build_invoice, month_bounds};
use metering::rating::PeriodUsage;
use schemas::Customer;
use schemas::model_prices::ModelPriceTable;
use schemas::plan::Plan;
use store::{Counters, Plans, Registry, Watermarks};

use crate::error::{ControlError, Result};
use crate::lookup::existing_customer;
use crate::plans::plan_for_period;
use crate::usage::completeness;

/// Whom to invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceScope {
    /// One customer; `NotFound` when it has no plan for the period.
    Customer(String),
    /// Every customer who has a plan for the period.
    All,
}

/// An invoice run: `invoice`.
#[derive(Debug, Clone)]
pub struct InvoiceRequest {
    pub scope: InvoiceScope,
    /// The first day of the month (UTC).
    pub period: NaiveDate,
    /// Price with this plan instead of the assigned one (what-if; changes nothing).
    pub what_if_plan: Option<Plan>,
    /// Bedrock's prices: each invoice then carries its cost of goods and margin.
    pub model_prices: Option<ModelPriceTable>,
    /// The operator as the seller: its details and payment terms on each invoice.
    pub seller: Option<schemas::seller::SellerProfile>,
}

/// The invoices of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRun {
    /// One per customer priced, in customer order.
    pub invoices: Vec<Invoice>,
    /// Customers left out because no plan prices them for the period.
    pub without_plan: Vec<String>,
}

/// The customer's deduplicated usage of the month, per model.
pub(crate) async fn period_usage(
    counters: &dyn Counters,
    customer_id: &str,
    start: NaiveDate,
) -> Result<PeriodUsage> {
    let (first, last) = month_bounds(start);
    let mut usage = PeriodUsage::default();
    for cell in counters.read_daily(customer_id, first, last).await? {
        usage
            .by_model
            .entry(cell.model_id)
            .or_default()
            .add(&cell.counts);
    }
    Ok(usage)
}

/// `invoice`: prices the period for the scope's customers. Invoices are drafts until
/// usage is complete through the period's end. `NotFound` for an unknown customer or one
/// without a plan; `Invalid` when a plan cannot price the usage.
pub async fn invoice_period(
    registry: &dyn Registry,
    plans: &dyn Plans,
    counters: &dyn Counters,
    watermarks: &dyn Watermarks,
    request: &InvoiceRequest,
) -> Result<InvoiceRun> {
    let customers: Vec<Customer> = match &request.scope {
        InvoiceScope::Customer(customer_id) => {
            vec![existing_customer(registry, customer_id).await?]
        }
        InvoiceScope::All => registry.list_customers().await?,
    };
    let complete = completeness(watermarks).await?.complete_through;
    let mut run = InvoiceRun {
        invoices: Vec::new(),
        without_plan: Vec::new(),
    };
    for customer in &customers {
        let what_if = request.what_if_plan.as_ref();
        let Some(plan) = plan_for_period(plans, customer, request.period, what_if).await? else {
            run.without_plan.push(customer.customer_id.clone());
            continue;
        };
        let usage = period_usage(counters, &customer.customer_id, request.period).await?;
        let mut invoice = build_invoice(customer, request.period, &plan, &usage, complete)
            .map_err(|error| {
                ControlError::invalid("plan", format!("{}: {error}", customer.customer_id))
            })?;
        if let Some(seller) = &request.seller {
            invoice = invoice.issued_by(seller);
        }
        if let Some(table) = &request.model_prices {
            invoice.cost_of_goods = Some(
                cost_of_usage(table, &usage.by_model)
                    .with_revenue(invoice.total, &invoice.currency),
            );
        }
        run.invoices.push(invoice);
    }
    if let InvoiceScope::Customer(customer_id) = &request.scope
        && run.invoices.is_empty()
    {
        return Err(ControlError::not_found(format!(
            "customer {customer_id} has no plan for {}; assign one with `tollgate assign-plan --customer-id {customer_id} --plan-id ID --effective-from YYYY-MM-01`, or price with --plan FILE",
            request.period.format("%Y-%m"),
        )));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::plans::tests::flat_plan;
    use crate::plans::{PlanChoice, assign_plan, store_plan};
    use crate::test_support::operator;
    use chrono::{Datelike, NaiveDate};
    use schemas::Outcome;
    use store::memory::MemoryStore;

    /// Customers A (five calls of one input and one output token today, the flat plan
    /// from the first of the month) and B (no plan); their ids and the period.
    async fn two_customers_one_with_a_plan(store: &MemoryStore) -> (Vec<String>, NaiveDate) {
        let today = chrono::Utc::now().date_naive();
        let period = today.with_day(1).unwrap();
        let mut ids = Vec::new();
        for name in ["A", "B"] {
            let issued =
                create_customer(store, &operator(), NewCustomer::named(name, "x@x.example"))
                    .await
                    .unwrap();
            ids.push(issued.customer_id);
        }
        let events: Vec<store::SourcedEvent> = (0..5)
            .map(|index| {
                store::contract::sourced_at(
                    "0",
                    index + 1,
                    store::contract::event_on(&ids[0], today, "model-a", Outcome::Success, 1, 1),
                )
            })
            .collect();
        store.apply(&events).await.unwrap();
        store_plan(store, &operator(), &flat_plan(1)).await.unwrap();
        let choice = PlanChoice {
            customer_id: ids[0].clone(),
            plan_id: "flat".into(),
            plan_version: None,
            effective_from: period,
        };
        assign_plan(store, store, &operator(), &choice)
            .await
            .unwrap();
        (ids, period)
    }

    #[tokio::test]
    async fn with_bedrocks_prices_an_invoice_carries_its_cost_and_margin_for_the_operator() {
        let store = MemoryStore::new();
        let (_, period) = two_customers_one_with_a_plan(&store).await;
        // With Bedrock's prices: 5 calls × (1 + 1) tokens at $1,000 per million = $0.01,
        // against $0.05 of revenue: a margin of $0.04.
        let table = schemas::model_prices::ModelPriceTable::from_toml(
            "schema_version = 1\ncurrency = \"USD\"\nas_of = \"2026-12-01\"\n\n[[prices]]\npattern = \"model-*\"\ninput_per_million = \"1000\"\noutput_per_million = \"1000\"\nsource = \"https://aws.amazon.com/bedrock/pricing/\"\n",
        )
        .unwrap();
        let priced = InvoiceRequest {
            model_prices: Some(table),
            ..InvoiceRequest {
                scope: InvoiceScope::All,
                period,
                what_if_plan: None,
                model_prices: None,
                seller: None,
            }
        };
        let run = invoice_period(&store, &store, &store, &store, &priced)
            .await
            .unwrap();
        let cost = run.invoices[0].cost_of_goods.as_ref().unwrap();
        assert_eq!(cost.total.to_string(), "0.01");
        assert_eq!(
            cost.gross_margin.map(|margin| margin.to_string()),
            Some("0.04".into())
        );
        let without_cost = metering::invoice::Invoice {
            cost_of_goods: None,
            ..run.invoices[0].clone()
        };
        assert_eq!(
            metering::invoice::to_html(&run.invoices[0]),
            metering::invoice::to_html(&without_cost),
            "never on the customer's page"
        );
        assert_eq!(
            metering::invoice::to_csv(&run.invoices),
            metering::invoice::to_csv(std::slice::from_ref(&without_cost))
        );
    }

    #[tokio::test]
    async fn invoices_price_customers_with_a_plan_and_name_those_without() {
        let store = MemoryStore::new();
        let (ids, period) = two_customers_one_with_a_plan(&store).await;
        let all = InvoiceRequest {
            scope: InvoiceScope::All,
            period,
            what_if_plan: None,
            model_prices: None,
            seller: None,
        };
        let run = invoice_period(&store, &store, &store, &store, &all)
            .await
            .unwrap();
        assert_eq!(run.invoices.len(), 1);
        assert_eq!(run.invoices[0].usage.requests, 5);
        assert_eq!(run.invoices[0].total.to_string(), "0.05");
        assert_eq!(run.without_plan, [ids[1].clone()]);
        assert_eq!(
            run.invoices[0].cost_of_goods, None,
            "no price table, no cost"
        );

        let without = InvoiceRequest {
            scope: InvoiceScope::Customer(ids[1].clone()),
            period,
            what_if_plan: None,
            model_prices: None,
            seller: None,
        };
        let error = invoice_period(&store, &store, &store, &store, &without)
            .await
            .unwrap_err();
        assert!(matches!(error, ControlError::NotFound { .. }));
        assert!(error.to_string().contains("has no plan for"));
        let what_if = InvoiceRequest {
            what_if_plan: Some(flat_plan(9)),
            ..without
        };
        let run = invoice_period(&store, &store, &store, &store, &what_if)
            .await
            .unwrap();
        assert_eq!(run.invoices[0].plan.version, 9);
        let unknown = InvoiceRequest {
            scope: InvoiceScope::Customer("nobody".into()),
            period,
            what_if_plan: None,
            model_prices: None,
            seller: None,
        };
        assert!(
            invoice_period(&store, &store, &store, &store, &unknown)
                .await
                .is_err()
        );
    }
}
