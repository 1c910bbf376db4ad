//! Tier arithmetic shared by the graduated and volume charges, and the number formatting
//! of line descriptions. Pure.

use rust_decimal::Decimal;
use schemas::plan::Tier;

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

/// The tier a total of `units` falls in (the last tier past every bound).
pub(super) fn volume_tier(tiers: &[Tier], units: u64) -> Option<&Tier> {
    tiers
        .iter()
        .find(|tier| tier.up_to.is_none_or(|up_to| units <= up_to))
        .or_else(|| tiers.last())
}

/// How many of `units` fall in each tier, in order (tiers with none are left out).
pub(super) fn tier_slices(tiers: &[Tier], units: u64) -> Vec<(u64, &Tier)> {
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

/// `1234567` as `1,234,567`.
pub(super) fn thousands(value: u64) -> String {
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
