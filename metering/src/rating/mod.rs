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
    #[error(
        "plan {plan} is not valid under this build ({reason}); store a corrected version with `tollgate plan add FILE` and assign it"
    )]
    InvalidPlan { plan: String, reason: String },
    #[error(
        "the invoice's total is too large to represent ({0} charges at their largest prices and this usage); check the plan's prices and charges"
    )]
    Overflow(usize),
}

/// The sum of amounts, or an error when it leaves `Decimal`'s range. Plans' price bounds
/// (`schemas::plan::MAX_UNIT_PRICE`) keep a line within it; only a plan of thousands of
/// charges at those bounds could reach this.
fn checked_sum(
    mut amounts: impl Iterator<Item = Decimal>,
    charges: usize,
) -> Result<Decimal, RatingError> {
    amounts.try_fold(Decimal::ZERO, |sum, amount| {
        sum.checked_add(amount)
            .ok_or(RatingError::Overflow(charges))
    })
}

/// Prices `usage` under `plan`: each charge's lines in plan order, each line rounded once,
/// then the minimum commitment's top-up, then a subtotal per charge that produced lines.
pub fn rate(plan: &Plan, usage: &PeriodUsage) -> Result<Rated, RatingError> {
    // A plan stored by an older build may hold what this one refuses (a price past the
    // bounds that keep the arithmetic in range): it is named, never priced.
    plan.validate().map_err(|error| RatingError::InvalidPlan {
        plan: format!("{} version {}", plan.id, plan.version),
        reason: error.to_string(),
    })?;
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
    let charges = plan.charges.len();
    let subtotal = checked_sum(lines.iter().map(|line| line.amount), charges)?;
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
    let subtotals = subtotals_per_charge(plan, &lines, round)?;
    let total = round(checked_sum(lines.iter().map(|line| line.amount), charges)?);
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
) -> Result<Vec<Subtotal>, RatingError> {
    let mut subtotals = Vec::new();
    for (index, charge) in plan.charges.iter().enumerate() {
        let mut charged = lines.iter().filter(|line| line.charge == index).peekable();
        if charged.peek().is_none() {
            continue;
        }
        subtotals.push(Subtotal {
            charge: charge_name(charge),
            amount: round(checked_sum(
                charged.map(|line| line.amount),
                plan.charges.len(),
            )?),
        });
    }
    Ok(subtotals)
}

#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod tests;
