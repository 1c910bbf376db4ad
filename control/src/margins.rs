//! Revenue, Bedrock's cost and the gross margin per customer and month: the report's
//! operator-only view (`tollgate report --model-prices`) and the console's figures. Revenue
//! is the invoice's total under the customer's plan (the rating code, through
//! [`invoice_period`]); cost is `metering::cost` over the same month's usage.

use chrono::{Datelike, NaiveDate};
use metering::cost::cost_of_usage;
use metering::report::MarginRow;
use schemas::Customer;
use schemas::model_prices::ModelPriceTable;
use store::{Counters, Plans, Registry, Watermarks};

use crate::error::{ControlError, Result};
use crate::invoices::{InvoiceRequest, InvoiceScope, invoice_period, period_usage};
use crate::lookup::existing_customer;

/// The first day of every month from `start`'s to `end`'s.
fn months(start: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
    let mut month = start.with_day(1).unwrap_or(start);
    let mut months = Vec::new();
    while month <= end {
        months.push(month);
        month = month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX);
    }
    months
}

/// The ports the margin view reads.
pub struct MarginSources<'a> {
    pub registry: &'a dyn Registry,
    pub plans: &'a dyn Plans,
    pub counters: &'a dyn Counters,
    pub watermarks: &'a dyn Watermarks,
}

/// One row per customer and calendar month touched by `start..=end` that has usage or a
/// plan: the whole month's invoice total, its cost under `table`, and the margin.
pub async fn margin_rows(
    sources: &MarginSources<'_>,
    table: &ModelPriceTable,
    start: NaiveDate,
    end: NaiveDate,
    customer_id: Option<&str>,
) -> Result<Vec<MarginRow>> {
    crate::dates::check_date_range(start, end, crate::reports::MAX_REPORT_DAYS)?;
    let customers: Vec<Customer> = match customer_id {
        Some(customer_id) => vec![existing_customer(sources.registry, customer_id).await?],
        None => sources.registry.list_customers().await?,
    };
    let mut rows = Vec::new();
    for customer in &customers {
        for month in months(start, end) {
            let request = InvoiceRequest {
                scope: InvoiceScope::Customer(customer.customer_id.clone()),
                period: month,
                what_if_plan: None,
                model_prices: Some(table.clone()),
                seller: None,
            };
            let invoiced = invoice_period(
                sources.registry,
                sources.plans,
                sources.counters,
                sources.watermarks,
                &request,
            )
            .await;
            let row = match invoiced {
                Ok(run) => run.invoices.into_iter().next().and_then(|invoice| {
                    Some(MarginRow {
                        customer: customer.name.clone(),
                        month: invoice.period.clone(),
                        revenue: Some((invoice.total, invoice.currency.clone())),
                        cost: invoice.cost_of_goods?,
                    })
                }),
                // No plan prices the month: the cost alone, when there was usage.
                Err(ControlError::NotFound { .. }) => {
                    let usage =
                        period_usage(sources.counters, &customer.customer_id, month).await?;
                    (!usage.by_model.is_empty()).then(|| MarginRow {
                        customer: customer.name.clone(),
                        month: month.format("%Y-%m").to_string(),
                        revenue: None,
                        cost: cost_of_usage(table, &usage.by_model),
                    })
                }
                Err(error) => return Err(error),
            };
            rows.extend(row);
        }
    }
    Ok(rows)
}

/// One day's cost of a customer's usage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DayCost {
    pub day: NaiveDate,
    pub cost: metering::cost::CostOfGoods,
}

/// Bedrock's cost of a customer's usage per UTC day and model, over `start..=end`: the
/// console's cost chart. Days without usage are left out. `NotFound` for an unknown
/// customer, `Invalid` for a reversed or overlong range.
pub async fn daily_costs(
    registry: &dyn Registry,
    counters: &dyn Counters,
    table: &ModelPriceTable,
    customer_id: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<DayCost>> {
    crate::dates::check_date_range(start, end, crate::reports::MAX_REPORT_DAYS)?;
    existing_customer(registry, customer_id).await?;
    let cells = counters.read_daily(customer_id, start, end).await?;
    let mut by_day: std::collections::BTreeMap<
        NaiveDate,
        std::collections::BTreeMap<String, schemas::UsageCounts>,
    > = std::collections::BTreeMap::new();
    for cell in cells {
        by_day
            .entry(cell.day)
            .or_default()
            .entry(cell.model_id)
            .or_default()
            .add(&cell.counts);
    }
    Ok(by_day
        .into_iter()
        .map(|(day, usage)| DayCost {
            day,
            cost: cost_of_usage(table, &usage),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::plans::tests::flat_plan;
    use crate::plans::{PlanChoice, assign_plan, store_plan};
    use crate::test_support::operator;
    use rust_decimal::Decimal;
    use schemas::Outcome;
    use store::memory::MemoryStore;

    #[tokio::test]
    async fn costs_per_day_and_model_worked_by_hand() {
        let store = MemoryStore::new();
        three_customers(&store).await;
        let today = chrono::Utc::now().date_naive();
        let planned = store.list_customers().await.unwrap()[0].customer_id.clone();
        let table = ModelPriceTable::from_toml(
            "schema_version = 1\ncurrency = \"USD\"\nas_of = \"2026-12-01\"\n\n[[prices]]\npattern = \"model-a\"\ninput_per_million = \"0.80\"\noutput_per_million = \"4.00\"\nsource = \"https://aws.amazon.com/bedrock/pricing/\"\n",
        )
        .unwrap();
        let days = daily_costs(
            &store,
            &store,
            &table,
            &planned,
            today - chrono::Days::new(3),
            today,
        )
        .await
        .unwrap();
        // One day with usage: 1,000,000 input × 0.80 + 200,000 output × 4.00 = $1.60.
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].day, today);
        assert_eq!(days[0].cost.total, Decimal::new(160, 2));
        assert_eq!(days[0].cost.by_model[0].model_id, "model-a");
        let unknown = daily_costs(&store, &store, &table, "nobody", today, today)
            .await
            .unwrap_err();
        assert!(matches!(unknown, ControlError::NotFound { .. }));
        let reversed = daily_costs(
            &store,
            &store,
            &table,
            &planned,
            today,
            today - chrono::Days::new(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(reversed, ControlError::Invalid { .. }));
    }

    #[test]
    fn months_cover_the_range() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        assert_eq!(
            months(day("2026-11-20"), day("2027-01-03")),
            [day("2026-11-01"), day("2026-12-01"), day("2027-01-01")]
        );
        assert_eq!(
            months(day("2026-12-05"), day("2026-12-09")),
            [day("2026-12-01")]
        );
    }

    /// Planned (4 calls of 250,000 input and 50,000 output tokens of model-a, the flat
    /// plan), Unplanned (1 call of 1,000,000 input tokens of model-b, no plan), Idle.
    async fn three_customers(store: &MemoryStore) {
        let today = chrono::Utc::now().date_naive();
        let month = today.with_day(1).unwrap();
        let mut ids = Vec::new();
        for name in ["Planned", "Unplanned", "Idle"] {
            let issued =
                create_customer(store, &operator(), NewCustomer::named(name, "x@x.example"))
                    .await
                    .unwrap();
            ids.push(issued.customer_id);
        }
        let mut events = Vec::new();
        for _ in 0..4 {
            events.push(store::contract::event_on(
                &ids[0],
                today,
                "model-a",
                Outcome::Success,
                250_000,
                50_000,
            ));
        }
        events.push(store::contract::event_on(
            &ids[1],
            today,
            "model-b",
            Outcome::Success,
            1_000_000,
            0,
        ));
        let sourced: Vec<store::SourcedEvent> = events
            .into_iter()
            .enumerate()
            .map(|(index, event)| store::contract::sourced_at("0", index as u64 + 1, event))
            .collect();
        store.apply(&sourced).await.unwrap();
        store_plan(store, &operator(), &flat_plan(1)).await.unwrap();
        assign_plan(
            store,
            store,
            &operator(),
            &PlanChoice {
                customer_id: ids[0].clone(),
                plan_id: "flat".into(),
                plan_version: None,
                effective_from: month,
            },
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn each_customer_month_shows_revenue_cost_and_margin_worked_by_hand() {
        let store = MemoryStore::new();
        three_customers(&store).await;
        let today = chrono::Utc::now().date_naive();
        let table = ModelPriceTable::from_toml(
            "schema_version = 1\ncurrency = \"USD\"\nas_of = \"2026-12-01\"\n\n[[prices]]\npattern = \"model-a\"\ninput_per_million = \"0.80\"\noutput_per_million = \"4.00\"\nsource = \"https://aws.amazon.com/bedrock/pricing/\"\n",
        )
        .unwrap();
        let sources = MarginSources {
            registry: &store,
            plans: &store,
            counters: &store,
            watermarks: &store,
        };
        let rows = margin_rows(&sources, &table, today, today, None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "the idle customer without a plan has no row");
        // Planned: revenue 4 calls × $0.01 (the flat plan) = $0.04; cost 1,000,000 input ×
        // 0.80 = $0.80 and 200,000 output × 4.00 = $0.80, $1.60 in all: a margin of −$1.56.
        let planned = &rows[0];
        assert_eq!(planned.customer, "Planned");
        assert_eq!(
            planned.revenue,
            Some((Decimal::new(4, 2), "USD".to_owned()))
        );
        assert_eq!(planned.cost.total, Decimal::new(160, 2));
        assert_eq!(planned.cost.gross_margin, Some(Decimal::new(-156, 2)));
        // Unplanned: no revenue, an unpriced model, no margin.
        let unplanned = &rows[1];
        assert_eq!(unplanned.revenue, None);
        assert_eq!(unplanned.cost.unpriced_models, ["model-b"]);
        assert_eq!(unplanned.cost.gross_margin, None);
        let rendered = metering::report::margin_table(&rows);
        assert_eq!(rendered.rows[0][2], "0.04 USD");
        assert_eq!(rendered.rows[0][4], "-1.56 USD");
        assert_eq!(rendered.rows[1][2], "no plan");
        assert_eq!(rendered.rows[1][3], "0.00 USD + unpriced");
    }
}
