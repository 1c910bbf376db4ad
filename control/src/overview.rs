//! The console's overview: the business's key figures for today and the month to date
//! (calls, tokens, errors, limit rejections, active customers, revenue under each plan,
//! Bedrock's cost and the gross margin), and the same figures per customer for the month,
//! from which the console ranks its top customers.
//!
//! Revenue is the rating code's (`metering::invoice::build_invoice`, as `invoice`): the
//! month to date is the invoice of the month's usage so far; today's revenue is what today
//! added to it, the month to date less the month through yesterday. Under a tiered or
//! subscription plan that is the honest marginal figure (a subscription fee falls on the
//! month's first day with usage priced). Cost is `metering::cost` under the operator's
//! price table; without one, cost and margin are absent rather than zero.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use metering::cost::cost_of_usage;
use metering::invoice::build_invoice;
use metering::rating::PeriodUsage;
use rust_decimal::Decimal;
use schemas::model_prices::ModelPriceTable;
use schemas::quota::month_start;
use schemas::usage_counts::total_counts;
use schemas::{Customer, CustomerStatus, DailyUsage, UsageCounts};
use serde::Serialize;

use crate::error::{Result, WhileDoing};
use crate::margins::MarginSources;
use crate::plans::plan_for_period;
use crate::usage::completeness;

/// An amount and its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

/// The key figures of a range of days.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Admitted calls.
    pub calls: u64,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Admitted calls that failed (client or upstream errors).
    pub errors: u64,
    /// Errors as a percentage of calls, to one decimal; `None` without calls.
    pub error_rate_percent: Option<Decimal>,
    /// Calls refused for limits.
    pub rejected: u64,
    /// Customers with at least one call, admitted or refused.
    pub active_customers: usize,
    /// Revenue under the customers' plans, one amount per currency.
    pub revenue: Vec<Money>,
    /// Bedrock's cost of the priced models; `None` without a price table.
    pub cost: Option<Money>,
    /// Models used that the price table does not price: never counted as free.
    pub unpriced_models: Vec<String>,
    /// Customers whose plan cannot price their usage (the rating error, naming the
    /// customer): their revenue is left out, and no margin is stated.
    pub revenue_errors: Vec<String>,
    /// Revenue less cost; `None` when it cannot be stated (see `margin_note`).
    pub gross_margin: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin_note: Option<String>,
}

/// One customer's month to date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerFigures {
    pub customer_id: String,
    pub name: String,
    pub status: CustomerStatus,
    pub calls: u64,
    pub tokens: u64,
    pub errors: u64,
    pub rejected: u64,
    /// `None` when no plan prices the month, or the plan cannot price it.
    pub revenue: Option<Money>,
    /// Why the plan cannot price the month, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_error: Option<String>,
    pub cost: Option<Money>,
    /// `None` without revenue, without prices, with unpriced models, or across currencies.
    pub gross_margin: Option<Money>,
}

/// The overview as of `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub as_of: DateTime<Utc>,
    pub today: NaiveDate,
    pub month_start: NaiveDate,
    #[serde(rename = "today_figures")]
    pub today_figures: Figures,
    pub month_to_date: Figures,
    /// Customers with usage or revenue this month, in registry order.
    pub customers: Vec<CustomerFigures>,
    /// Whether the server has Bedrock's prices (`--model-prices`).
    pub prices_configured: bool,
    pub complete_through: Option<DateTime<Utc>>,
}

/// What one customer adds to a range's figures.
#[derive(Debug, Clone, Default)]
struct Contribution {
    counts: UsageCounts,
    revenue: Option<Money>,
    revenue_error: Option<String>,
    cost: Option<metering::cost::CostOfGoods>,
}

fn usage_of<'a>(cells: impl Iterator<Item = &'a DailyUsage>) -> PeriodUsage {
    let mut usage = PeriodUsage::default();
    for cell in cells {
        usage
            .by_model
            .entry(cell.model_id.clone())
            .or_default()
            .add(&cell.counts);
    }
    usage
}

fn counts_of(usage: &PeriodUsage) -> UsageCounts {
    total_counts(usage.by_model.values())
}

/// Errors over calls, as a percentage to one decimal.
fn error_rate(errors: u64, calls: u64) -> Option<Decimal> {
    (calls > 0).then(|| {
        let mut rate = (Decimal::from(errors) * Decimal::ONE_HUNDRED / Decimal::from(calls))
            .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        rate.rescale(1);
        rate
    })
}

/// Sums the customers' contributions into one range's figures.
fn figures(contributions: &[Contribution], table: Option<&ModelPriceTable>) -> Figures {
    let counts = total_counts(contributions.iter().map(|part| &part.counts));
    let mut revenue: BTreeMap<String, Decimal> = BTreeMap::new();
    for money in contributions
        .iter()
        .filter_map(|part| part.revenue.as_ref())
    {
        *revenue.entry(money.currency.clone()).or_default() += money.amount;
    }
    let mut unpriced: Vec<String> = contributions
        .iter()
        .filter_map(|part| part.cost.as_ref())
        .flat_map(|cost| cost.unpriced_models.iter().cloned())
        .collect();
    unpriced.sort();
    unpriced.dedup();
    let cost = table.map(|table| Money {
        amount: contributions
            .iter()
            .filter_map(|part| part.cost.as_ref())
            .map(|cost| cost.total)
            .sum(),
        currency: table.currency.clone(),
    });
    let revenue_errors: Vec<String> = contributions
        .iter()
        .filter_map(|part| part.revenue_error.clone())
        .collect();
    let (gross_margin, margin_note) = if revenue_errors.is_empty() {
        margin(&revenue, cost.as_ref(), &unpriced)
    } else {
        (
            None,
            Some(format!(
                "{} customer(s) have a plan that cannot price their usage: fix the plan to state revenue and margin",
                revenue_errors.len()
            )),
        )
    };
    Figures {
        calls: counts.requests,
        tokens: counts.input_tokens + counts.output_tokens,
        errors: counts.errors,
        error_rate_percent: error_rate(counts.errors, counts.requests),
        rejected: counts.rejected,
        active_customers: contributions
            .iter()
            .filter(|part| part.counts.requests + part.counts.rejected > 0)
            .count(),
        revenue: revenue
            .into_iter()
            .map(|(currency, amount)| Money { amount, currency })
            .collect(),
        cost,
        unpriced_models: unpriced,
        revenue_errors,
        gross_margin,
        margin_note,
    }
}

/// Revenue less cost, when both are in one currency and every model is priced.
fn margin(
    revenue: &BTreeMap<String, Decimal>,
    cost: Option<&Money>,
    unpriced: &[String],
) -> (Option<Money>, Option<String>) {
    let Some(cost) = cost else {
        return (
            None,
            Some("no Bedrock prices: start the server with --model-prices FILE".into()),
        );
    };
    if !unpriced.is_empty() {
        return (
            None,
            Some(format!(
                "unpriced models ({}): add them to the price table",
                unpriced.join(", ")
            )),
        );
    }
    if revenue.keys().any(|currency| *currency != cost.currency) {
        return (
            None,
            Some(format!(
                "revenue in other currencies than the prices' {}: no margin without an exchange rate",
                cost.currency
            )),
        );
    }
    let revenue = revenue.get(&cost.currency).copied().unwrap_or_default();
    (
        Some(Money {
            amount: revenue - cost.amount,
            currency: cost.currency.clone(),
        }),
        None,
    )
}

/// A customer's revenue: of the month to date, and what today added to it; `Err` names
/// why the plan cannot price the usage.
type Revenues = std::result::Result<(Option<Money>, Option<Money>), String>;

/// The customer's revenue of the month to date, and what today added to it.
fn revenues(
    customer: &Customer,
    month: NaiveDate,
    plan: Option<&schemas::plan::Plan>,
    month_to_date: &PeriodUsage,
    before_today: &PeriodUsage,
) -> Revenues {
    let Some(plan) = plan else {
        return Ok((None, None));
    };
    let total = |usage: &PeriodUsage| {
        build_invoice(customer, month, plan, usage, None)
            .map(|invoice| (invoice.total, invoice.currency))
            .map_err(|error| format!("{} ({}): {error}", customer.name, customer.customer_id))
    };
    let (to_date, currency) = total(month_to_date)?;
    let (before, _) = total(before_today)?;
    Ok((
        Some(Money {
            amount: to_date,
            currency: currency.clone(),
        }),
        Some(Money {
            amount: to_date - before,
            currency,
        }),
    ))
}

/// The key figures for `now`'s day and month (UTC), across every customer.
pub async fn overview(
    sources: &MarginSources<'_>,
    table: Option<&ModelPriceTable>,
    now: DateTime<Utc>,
) -> Result<Overview> {
    let today = now.date_naive();
    let month = month_start(today);
    let customers = sources
        .registry
        .list_customers()
        .await
        .while_doing(|| "cannot list customers".into())?;
    let mut month_parts = Vec::with_capacity(customers.len());
    let mut today_parts = Vec::with_capacity(customers.len());
    let mut rows = Vec::new();
    for customer in &customers {
        let cells = sources
            .counters
            .read_daily(&customer.customer_id, month, today)
            .await
            .while_doing(|| format!("cannot read the usage of {}", customer.customer_id))?;
        let month_usage = usage_of(cells.iter());
        let today_usage = usage_of(cells.iter().filter(|cell| cell.day == today));
        let before_today = usage_of(cells.iter().filter(|cell| cell.day < today));
        let plan = plan_for_period(sources.plans, customer, month, None).await?;
        let priced = revenues(customer, month, plan.as_ref(), &month_usage, &before_today);
        let revenue_error = priced.as_ref().err().cloned();
        let (month_revenue, today_revenue) = priced.unwrap_or_default();
        let month_part = Contribution {
            counts: counts_of(&month_usage),
            revenue: month_revenue,
            revenue_error: revenue_error.clone(),
            cost: table.map(|table| cost_of_usage(table, &month_usage.by_model)),
        };
        today_parts.push(Contribution {
            counts: counts_of(&today_usage),
            revenue: today_revenue,
            revenue_error,
            cost: table.map(|table| cost_of_usage(table, &today_usage.by_model)),
        });
        if let Some(row) = customer_row(customer, &month_part) {
            rows.push(row);
        }
        month_parts.push(month_part);
    }
    Ok(Overview {
        as_of: now,
        today,
        month_start: month,
        today_figures: figures(&today_parts, table),
        month_to_date: figures(&month_parts, table),
        customers: rows,
        prices_configured: table.is_some(),
        complete_through: completeness(sources.watermarks).await?.complete_through,
    })
}

/// The customer's month, when it has usage or revenue.
fn customer_row(customer: &Customer, part: &Contribution) -> Option<CustomerFigures> {
    let used = part.counts.requests + part.counts.rejected > 0;
    let billed = part
        .revenue
        .as_ref()
        .is_some_and(|money| !money.amount.is_zero());
    if !used && !billed {
        return None;
    }
    let cost = part.cost.as_ref().map(|cost| Money {
        amount: cost.total,
        currency: cost.currency.clone(),
    });
    let gross_margin = match (&part.revenue, &part.cost) {
        (Some(revenue), Some(cost)) => cost
            .clone()
            .with_revenue(revenue.amount, &revenue.currency)
            .gross_margin
            .map(|amount| Money {
                amount,
                currency: revenue.currency.clone(),
            }),
        _ => None,
    };
    Some(CustomerFigures {
        customer_id: customer.customer_id.clone(),
        name: customer.name.clone(),
        status: customer.status,
        calls: part.counts.requests,
        tokens: part.counts.input_tokens + part.counts.output_tokens,
        errors: part.counts.errors,
        rejected: part.counts.rejected,
        revenue: part.revenue.clone(),
        revenue_error: part.revenue_error.clone(),
        cost,
        gross_margin,
    })
}

#[cfg(test)]
mod tests;
