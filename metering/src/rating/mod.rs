//! Rating: a period's deduplicated usage priced under a plan, as invoice lines. Pure.
//!
//! Arithmetic is exact (`rust_decimal`). Rounding happens once per line: each line's amount
//! is rounded to the currency's minor units, half to even (banker's rounding); subtotals
//! and totals are sums of rounded lines, so an invoice always adds up.

mod charges;
mod tiers;

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use schemas::UsageCounts;
use schemas::plan::{BillableCalls, Charge, Metric, Plan};
use serde::Serialize;

use charges::{UnroundedLine, charge_lines, charge_name, minimum_commitment_line};
pub use tiers::{graduated_amount, volume_amount};

/// One period's usage, per model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodUsage {
    pub by_model: BTreeMap<String, UsageCounts>,
}

impl PeriodUsage {
    /// The total of a metric over every model; requests as `calls` counts them.
    pub fn total(&self, metric: Metric, calls: BillableCalls) -> u64 {
        self.by_model
            .values()
            .map(|counts| match (metric, calls) {
                (Metric::Requests, BillableCalls::Admitted) => counts.requests,
                (Metric::Requests, BillableCalls::Success) => {
                    counts.requests.saturating_sub(counts.errors)
                }
                (Metric::Tokens, _) => counts.total_tokens(),
                (Metric::InputTokens, _) => counts.input_tokens,
                (Metric::OutputTokens, _) => counts.output_tokens,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Admitted calls that failed (a client or upstream error), over every model.
    pub fn failed_calls(&self) -> u64 {
        self.by_model
            .values()
            .map(|counts| counts.errors)
            .fold(0u64, u64::saturating_add)
    }
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineItem {
    pub description: String,
    pub quantity: Decimal,
    pub unit: String,
    pub unit_price: Decimal,
    pub amount: Decimal,
    /// Which of the plan's charges produced the line (its index).
    pub charge: usize,
}

/// The sum of one charge's lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subtotal {
    pub charge: String,
    pub amount: Decimal,
}

/// A priced period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rated {
    pub currency: String,
    pub lines: Vec<LineItem>,
    /// One per charge that produced lines, in plan order.
    pub subtotals: Vec<Subtotal>,
    pub total: Decimal,
}

/// Why usage cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error(
        "model {0} was used but no per_token price in the plan matches it; add a [[charges.models]] pattern for it"
    )]
    UnpricedModel(String),
}

/// Prices `usage` under `plan`: each charge's lines in plan order, each line rounded once,
/// then the minimum commitment's top-up, then a subtotal per charge that produced lines.
pub fn rate(plan: &Plan, usage: &PeriodUsage) -> Result<Rated, RatingError> {
    // Rounded to the currency's minor units and written with all of them ("0.00", not "0").
    let round = |amount: Decimal| {
        let mut rounded =
            amount.round_dp_with_strategy(plan.minor_units, RoundingStrategy::MidpointNearestEven);
        rounded.rescale(plan.minor_units);
        rounded
    };
    let rounded = |line: UnroundedLine, charge: usize| LineItem {
        description: line.description,
        quantity: line.quantity,
        unit: line.unit,
        unit_price: line.unit_price,
        amount: round(line.exact_amount),
        charge,
    };
    let mut lines: Vec<LineItem> = Vec::new();
    for (index, charge) in plan.charges.iter().enumerate() {
        for line in charge_lines(charge, usage)? {
            lines.push(rounded(line, index));
        }
    }
    let subtotal: Decimal = lines.iter().map(|line| line.amount).sum();
    if let Some((
        index,
        Charge::MinimumCommitment {
            description,
            amount,
        },
    )) = plan
        .charges
        .iter()
        .enumerate()
        .rev()
        .find(|(_, charge)| matches!(charge, Charge::MinimumCommitment { .. }))
        && let Some(top_up) = minimum_commitment_line(description, *amount, subtotal, round)
    {
        lines.push(rounded(top_up, index));
    }
    let subtotals = subtotals_per_charge(plan, &lines, round);
    let total = round(lines.iter().map(|line| line.amount).sum());
    Ok(Rated {
        currency: plan.currency.clone(),
        lines,
        subtotals,
        total,
    })
}

/// One subtotal per charge that produced lines, in plan order.
fn subtotals_per_charge(
    plan: &Plan,
    lines: &[LineItem],
    round: impl Fn(Decimal) -> Decimal,
) -> Vec<Subtotal> {
    plan.charges
        .iter()
        .enumerate()
        .filter_map(|(index, charge)| {
            let mut charged = lines.iter().filter(|line| line.charge == index).peekable();
            charged.peek()?;
            Some(Subtotal {
                charge: charge_name(charge),
                amount: round(charged.map(|line| line.amount).sum()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
