//! Rating: a period's deduplicated usage priced under a plan, as invoice lines. Pure.
//!
//! Arithmetic is exact (`rust_decimal`). Rounding happens once per line: each line's amount
//! is rounded to the currency's minor units, half to even (banker's rounding); subtotals
//! and totals are sums of rounded lines, so an invoice always adds up.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use schemas::UsageCounts;
use schemas::plan::{Charge, Metric, Plan, Tier};
use serde::Serialize;

/// One period's usage, per model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodUsage {
    pub by_model: BTreeMap<String, UsageCounts>,
}

impl PeriodUsage {
    /// The total of a metric over every model.
    pub fn total(&self, metric: Metric) -> u64 {
        self.by_model
            .values()
            .map(|counts| match metric {
                Metric::Requests => counts.requests,
                Metric::Tokens => counts.total_tokens(),
                Metric::InputTokens => counts.input_tokens,
                Metric::OutputTokens => counts.output_tokens,
            })
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

/// A charge's name in subtotals.
fn charge_name(charge: &Charge) -> String {
    let (kind, description) = match charge {
        Charge::PerRequest { description, .. } => ("per request", description),
        Charge::PerToken { description, .. } => ("per token", description),
        Charge::Graduated { description, .. } => ("graduated tiers", description),
        Charge::Volume { description, .. } => ("volume tiers", description),
        Charge::Package { description, .. } => ("packages", description),
        Charge::Subscription { description, .. } => ("subscription", description),
        Charge::MinimumCommitment { description, .. } => ("minimum commitment", description),
    };
    description.clone().unwrap_or_else(|| kind.to_owned())
}

/// Why usage cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error(
        "model {0} was used but no per_token price in the plan matches it; add a [[charges.models]] pattern for it"
    )]
    UnpricedModel(String),
}

/// The exact amount of `units` under graduated tiers: each tier's units at its own price.
pub fn graduated_amount(tiers: &[Tier], units: u64) -> Decimal {
    tier_slices(tiers, units)
        .iter()
        .map(|(count, tier)| Decimal::from(*count) * tier.unit_price)
        .sum()
}

/// The exact amount of `units` under volume tiers: every unit at the price of the tier the
/// total falls in.
pub fn volume_amount(tiers: &[Tier], units: u64) -> Decimal {
    Decimal::from(units) * volume_tier(tiers, units).map_or(Decimal::ZERO, |tier| tier.unit_price)
}

fn volume_tier(tiers: &[Tier], units: u64) -> Option<&Tier> {
    tiers
        .iter()
        .find(|tier| tier.up_to.is_none_or(|up_to| units <= up_to))
        .or_else(|| tiers.last())
}

/// How many of `units` fall in each tier, in order (tiers with none are left out).
fn tier_slices(tiers: &[Tier], units: u64) -> Vec<(u64, &Tier)> {
    let mut slices = Vec::new();
    let mut below = 0u64;
    for tier in tiers {
        if below >= units {
            break;
        }
        let top = tier.up_to.map_or(units, |up_to| up_to.min(units));
        if top > below {
            slices.push((top - below, tier));
        }
        below = top.max(below);
    }
    slices
}

fn described(description: &Option<String>, fallback: String) -> String {
    description.clone().unwrap_or(fallback)
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Prices `usage` under `plan`.
pub fn rate(plan: &Plan, usage: &PeriodUsage) -> Result<Rated, RatingError> {
    let round = |amount: Decimal| {
        amount.round_dp_with_strategy(plan.minor_units, RoundingStrategy::MidpointNearestEven)
    };
    let mut lines: Vec<LineItem> = Vec::new();
    let current = std::cell::Cell::new(0usize);
    let mut line = |description: String,
                    quantity: Decimal,
                    unit: String,
                    unit_price: Decimal,
                    exact: Decimal| {
        lines.push(LineItem {
            description,
            quantity,
            unit,
            unit_price,
            amount: round(exact),
            charge: current.get(),
        });
    };
    let mut commitment: Option<(&Option<String>, Decimal)> = None;
    for (index, charge) in plan.charges.iter().enumerate() {
        current.set(index);
        match charge {
            Charge::PerRequest {
                description,
                unit_price,
                free_units,
            } => {
                let units = usage.total(Metric::Requests).saturating_sub(*free_units);
                line(
                    described(description, "API requests".into()),
                    Decimal::from(units),
                    "requests".into(),
                    *unit_price,
                    Decimal::from(units) * unit_price,
                );
            }
            Charge::PerToken {
                description,
                models,
            } => {
                for (model_id, counts) in &usage.by_model {
                    let used = counts.input_tokens
                        + counts.output_tokens
                        + counts.cache_read_tokens
                        + counts.cache_write_tokens;
                    if used == 0 {
                        continue;
                    }
                    let price = Plan::model_price(models, model_id)
                        .ok_or_else(|| RatingError::UnpricedModel(model_id.clone()))?;
                    let prefix = described(description, model_id.clone());
                    for (kind, tokens, per_million) in [
                        ("input tokens", counts.input_tokens, price.input_per_million),
                        (
                            "output tokens",
                            counts.output_tokens,
                            price.output_per_million,
                        ),
                        (
                            "cache read tokens",
                            counts.cache_read_tokens,
                            price.cache_read_per_million,
                        ),
                        (
                            "cache write tokens",
                            counts.cache_write_tokens,
                            price.cache_write_per_million,
                        ),
                    ] {
                        if tokens == 0 {
                            continue;
                        }
                        let millions = Decimal::from(tokens) / Decimal::from(1_000_000u64);
                        line(
                            format!("{prefix}: {kind}"),
                            millions,
                            "million tokens".into(),
                            per_million,
                            millions * per_million,
                        );
                    }
                }
            }
            Charge::Graduated {
                description,
                metric,
                tiers,
                free_units,
            } => {
                let units = usage.total(*metric).saturating_sub(*free_units);
                let mut below = 0u64;
                for (count, tier) in tier_slices(tiers, units) {
                    let label = match tier.up_to {
                        Some(up_to) => format!("{} to {}", thousands(below + 1), thousands(up_to)),
                        None => format!("above {}", thousands(below)),
                    };
                    line(
                        format!(
                            "{} ({label})",
                            described(description, metric.unit().to_owned())
                        ),
                        Decimal::from(count),
                        metric.unit().into(),
                        tier.unit_price,
                        Decimal::from(count) * tier.unit_price,
                    );
                    below += count;
                }
            }
            Charge::Volume {
                description,
                metric,
                tiers,
                free_units,
            } => {
                let units = usage.total(*metric).saturating_sub(*free_units);
                let price = volume_tier(tiers, units).map_or(Decimal::ZERO, |tier| tier.unit_price);
                line(
                    described(description, metric.unit().to_owned()),
                    Decimal::from(units),
                    metric.unit().into(),
                    price,
                    volume_amount(tiers, units),
                );
            }
            Charge::Package {
                description,
                metric,
                package_size,
                package_price,
                free_units,
            } => {
                let units = usage.total(*metric).saturating_sub(*free_units);
                let packages = units.div_ceil((*package_size).max(1));
                line(
                    described(
                        description,
                        format!("packages of {} {}", thousands(*package_size), metric.unit()),
                    ),
                    Decimal::from(packages),
                    "packages".into(),
                    *package_price,
                    Decimal::from(packages) * package_price,
                );
            }
            Charge::Subscription {
                description,
                fee,
                metric,
                included_units,
                overage_unit_price,
            } => {
                line(
                    described(
                        description,
                        format!(
                            "subscription, {} {} included",
                            thousands(*included_units),
                            metric.unit()
                        ),
                    ),
                    Decimal::ONE,
                    "month".into(),
                    *fee,
                    *fee,
                );
                let overage = usage.total(*metric).saturating_sub(*included_units);
                if overage > 0 {
                    line(
                        format!(
                            "{} over the included {}",
                            metric.unit(),
                            thousands(*included_units)
                        ),
                        Decimal::from(overage),
                        metric.unit().into(),
                        *overage_unit_price,
                        Decimal::from(overage) * overage_unit_price,
                    );
                }
            }
            Charge::MinimumCommitment {
                description,
                amount,
            } => commitment = Some((description, *amount)),
        }
    }
    let subtotal: Decimal = lines.iter().map(|line| line.amount).sum();
    if let Some((description, minimum)) = commitment
        && subtotal < minimum
    {
        let top_up = round(minimum - subtotal);
        lines.push(LineItem {
            description: described(description, format!("minimum commitment of {minimum}")),
            quantity: Decimal::ONE,
            unit: "month".into(),
            unit_price: top_up,
            amount: top_up,
            charge: plan
                .charges
                .iter()
                .position(|charge| matches!(charge, Charge::MinimumCommitment { .. }))
                .unwrap_or(plan.charges.len()),
        });
    }
    let mut subtotals: Vec<Subtotal> = Vec::new();
    for (index, charge) in plan.charges.iter().enumerate() {
        let charged: Vec<&LineItem> = lines.iter().filter(|line| line.charge == index).collect();
        if !charged.is_empty() {
            subtotals.push(Subtotal {
                charge: charge_name(charge),
                amount: charged.iter().map(|line| line.amount).sum(),
            });
        }
    }
    let total = lines.iter().map(|line| line.amount).sum();
    Ok(Rated {
        currency: plan.currency.clone(),
        lines,
        subtotals,
        total,
    })
}

#[cfg(test)]
#[path = "rating_tests.rs"]
mod tests;
