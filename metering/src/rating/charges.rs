//! One function per charge model: the lines a charge adds for a period's usage, before
//! rounding. Pure. The minimum commitment is not here: it depends on every other charge's
//! rounded lines, so [`super::rate`] applies it last.

use rust_decimal::Decimal;
use schemas::plan::{BillableCalls, Charge, Metric, ModelPrice, Plan, Tier};

use super::tiers::{thousands, tier_slices, volume_amount, volume_tier};
use super::{PeriodUsage, RatingError};

/// A line as a charge computes it: the amount is exact, not yet rounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnroundedLine {
    pub description: String,
    pub quantity: Decimal,
    pub unit: String,
    pub unit_price: Decimal,
    pub exact_amount: Decimal,
}

impl UnroundedLine {
    /// A line of `quantity` units at `unit_price` each.
    fn priced(description: String, quantity: Decimal, unit: &str, unit_price: Decimal) -> Self {
        Self {
            description,
            quantity,
            unit: unit.to_owned(),
            unit_price,
            exact_amount: quantity * unit_price,
        }
    }
}

fn described(description: &Option<String>, fallback: String) -> String {
    description.clone().unwrap_or(fallback)
}

/// A charge's name in subtotals: its description, else the kind of charge.
pub(super) fn charge_name(charge: &Charge) -> String {
    let (kind, description) = match charge {
        Charge::PerRequest { description, .. } => ("per request", description),
        Charge::PerToken { description, .. } => ("per token", description),
        Charge::Graduated { description, .. } => ("graduated tiers", description),
        Charge::Volume { description, .. } => ("volume tiers", description),
        Charge::Package { description, .. } => ("packages", description),
        Charge::Subscription { description, .. } => ("subscription", description),
        Charge::MinimumCommitment { description, .. } => ("minimum commitment", description),
    };
    described(description, kind.to_owned())
}

/// The zero line of a charge that bills successful calls only, for the calls that failed.
fn not_charged_line(failed: u64) -> UnroundedLine {
    UnroundedLine::priced(
        "calls that failed (client or upstream error), not charged".into(),
        Decimal::from(failed),
        "requests",
        Decimal::ZERO,
    )
}

/// The lines `charge` adds for `usage`; none for the minimum commitment. A charge that
/// bills successful calls adds a zero line for the calls that failed.
pub(super) fn charge_lines(
    charge: &Charge,
    usage: &PeriodUsage,
) -> Result<Vec<UnroundedLine>, RatingError> {
    let calls = charge.billable_calls();
    let mut lines = priced_lines(charge, calls, usage)?;
    if charge.metric() == Some(Metric::Requests)
        && calls == BillableCalls::Success
        && usage.failed_calls() > 0
    {
        lines.push(not_charged_line(usage.failed_calls()));
    }
    Ok(lines)
}

fn priced_lines(
    charge: &Charge,
    calls: BillableCalls,
    usage: &PeriodUsage,
) -> Result<Vec<UnroundedLine>, RatingError> {
    let lines = match charge {
        Charge::PerRequest {
            description,
            unit_price,
            free_units,
            ..
        } => vec![per_request_line(
            description,
            *unit_price,
            *free_units,
            usage.total(Metric::Requests, calls),
        )],
        Charge::PerToken {
            description,
            models,
        } => per_token_lines(description, models, usage)?,
        Charge::Graduated {
            description,
            metric,
            tiers,
            free_units,
            ..
        } => graduated_lines(
            description,
            *metric,
            tiers,
            usage.total(*metric, calls).saturating_sub(*free_units),
        ),
        Charge::Volume {
            description,
            metric,
            tiers,
            free_units,
            ..
        } => vec![volume_line(
            description,
            *metric,
            tiers,
            usage.total(*metric, calls).saturating_sub(*free_units),
        )],
        Charge::Package {
            description,
            metric,
            package_size,
            package_price,
            free_units,
            ..
        } => vec![package_line(
            description,
            *metric,
            *package_size,
            *package_price,
            usage.total(*metric, calls).saturating_sub(*free_units),
        )],
        Charge::Subscription {
            description,
            fee,
            metric,
            included_units,
            overage_unit_price,
            ..
        } => subscription_lines(
            description,
            *fee,
            *metric,
            *included_units,
            *overage_unit_price,
            usage.total(*metric, calls),
        ),
        Charge::MinimumCommitment { .. } => Vec::new(),
    };
    Ok(lines)
}

/// Every request past the free ones at one price.
fn per_request_line(
    description: &Option<String>,
    unit_price: Decimal,
    free_units: u64,
    requests: u64,
) -> UnroundedLine {
    let units = requests.saturating_sub(free_units);
    UnroundedLine::priced(
        described(description, "API requests".into()),
        Decimal::from(units),
        "requests",
        unit_price,
    )
}

/// Per model that used tokens, a line per kind of token it used, priced per million by the
/// first matching model price. A model with tokens and no price is an error, never free.
fn per_token_lines(
    description: &Option<String>,
    models: &[ModelPrice],
    usage: &PeriodUsage,
) -> Result<Vec<UnroundedLine>, RatingError> {
    let mut lines = Vec::new();
    for (model_id, counts) in &usage.by_model {
        let used = counts.all_tokens();
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
            lines.push(UnroundedLine::priced(
                format!("{prefix}: {kind}"),
                millions,
                "million tokens",
                per_million,
            ));
        }
    }
    Ok(lines)
}

/// A line per tier reached, each tier's units at its own price.
fn graduated_lines(
    description: &Option<String>,
    metric: Metric,
    tiers: &[Tier],
    units: u64,
) -> Vec<UnroundedLine> {
    let mut lines = Vec::new();
    let mut below = 0u64;
    for (count, tier) in tier_slices(tiers, units) {
        let label = match tier.up_to {
            Some(up_to) => format!("{} to {}", thousands(below + 1), thousands(up_to)),
            None => format!("above {}", thousands(below)),
        };
        lines.push(UnroundedLine::priced(
            format!(
                "{} ({label})",
                described(description, metric.unit().to_owned())
            ),
            Decimal::from(count),
            metric.unit(),
            tier.unit_price,
        ));
        below += count;
    }
    lines
}

/// Every unit at the price of the tier the total falls in.
fn volume_line(
    description: &Option<String>,
    metric: Metric,
    tiers: &[Tier],
    units: u64,
) -> UnroundedLine {
    let price = volume_tier(tiers, units).map_or(Decimal::ZERO, |tier| tier.unit_price);
    UnroundedLine {
        description: described(description, metric.unit().to_owned()),
        quantity: Decimal::from(units),
        unit: metric.unit().into(),
        unit_price: price,
        exact_amount: volume_amount(tiers, units),
    }
}

/// Whole packages: a started package is charged in full.
fn package_line(
    description: &Option<String>,
    metric: Metric,
    package_size: u64,
    package_price: Decimal,
    units: u64,
) -> UnroundedLine {
    let packages = units.div_ceil(package_size.max(1));
    UnroundedLine::priced(
        described(
            description,
            format!("packages of {} {}", thousands(package_size), metric.unit()),
        ),
        Decimal::from(packages),
        "packages",
        package_price,
    )
}

/// The monthly fee, and a line for the units past the included ones, if any.
fn subscription_lines(
    description: &Option<String>,
    fee: Decimal,
    metric: Metric,
    included_units: u64,
    overage_unit_price: Decimal,
    used: u64,
) -> Vec<UnroundedLine> {
    let mut lines = vec![UnroundedLine::priced(
        described(
            description,
            format!(
                "subscription, {} {} included",
                thousands(included_units),
                metric.unit()
            ),
        ),
        Decimal::ONE,
        "month",
        fee,
    )];
    let overage = used.saturating_sub(included_units);
    if overage > 0 {
        lines.push(UnroundedLine::priced(
            format!(
                "{} over the included {}",
                metric.unit(),
                thousands(included_units)
            ),
            Decimal::from(overage),
            metric.unit(),
            overage_unit_price,
        ));
    }
    lines
}

/// The top-up that brings a subtotal below the commitment up to it; `None` at or above it.
/// The top-up is rounded like every line.
pub(super) fn minimum_commitment_line(
    description: &Option<String>,
    minimum: Decimal,
    subtotal: Decimal,
    round: impl Fn(Decimal) -> Decimal,
) -> Option<UnroundedLine> {
    if subtotal >= minimum {
        return None;
    }
    let top_up = round(minimum - subtotal);
    Some(UnroundedLine::priced(
        described(description, format!("minimum commitment of {minimum}")),
        Decimal::ONE,
        "month",
        top_up,
    ))
}
