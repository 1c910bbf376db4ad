//! What a plan's (and a price table's) charges must hold beyond their format: tiers in
//! order, prices not negative and within bounds that keep every invoice's arithmetic in
//! `Decimal`'s range.

use rust_decimal::Decimal;

use super::{Charge, Metric, ModelPrice, PlanError, Tier, at};

pub(super) fn check_tiers(path: &str, tiers: &[Tier]) -> Result<(), PlanError> {
    if tiers.is_empty() {
        return Err(at(format!("{path}.tiers"), "give at least one tier"));
    }
    let mut previous: Option<u64> = None;
    for (index, tier) in tiers.iter().enumerate() {
        let tier_path = format!("{path}.tiers[{index}]");
        check_price(
            format!("{tier_path}.unit_price"),
            &tier.unit_price,
            PriceKind::PerUnit,
        )?;
        let last = index + 1 == tiers.len();
        match (tier.up_to, last) {
            (None, false) => {
                return Err(at(
                    format!("{tier_path}.up_to"),
                    "only the last tier may leave up_to out (it is unbounded)",
                ));
            }
            (Some(_), true) => {
                return Err(at(
                    format!("{tier_path}.up_to"),
                    "leave up_to out of the last tier so every unit has a price",
                ));
            }
            (Some(up_to), false) => {
                if previous.is_some_and(|previous| up_to <= previous) || up_to == 0 {
                    return Err(at(
                        format!("{tier_path}.up_to"),
                        "tier bounds must increase, starting above 0",
                    ));
                }
                previous = Some(up_to);
            }
            (None, true) => {}
        }
    }
    Ok(())
}

/// The largest price per unit a plan or a price table may state (per request, per million
/// tokens, per package, per tier unit): a million currency units.
pub const MAX_UNIT_PRICE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// The largest fixed amount (a subscription fee, a minimum commitment): a trillion.
pub const MAX_FIXED_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);
/// The most decimal places a price may have.
pub const MAX_PRICE_DECIMALS: u32 = 12;

/// What a price is multiplied by, which bounds it: with these bounds no invoice's
/// arithmetic can leave `Decimal`'s range (about 7.9 × 10^28), whatever usage a counter
/// holds (at most 2^64 units, times a million, is about 1.8 × 10^25 per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PriceKind {
    /// Multiplied by usage: at most [`MAX_UNIT_PRICE`].
    PerUnit,
    /// Charged once a period: at most [`MAX_FIXED_AMOUNT`].
    Fixed,
}

/// Checks a price: not negative, within its kind's bound, at most [`MAX_PRICE_DECIMALS`]
/// decimal places.
pub(crate) fn check_price(path: String, value: &Decimal, kind: PriceKind) -> Result<(), PlanError> {
    let (bound, what) = match kind {
        PriceKind::PerUnit => (MAX_UNIT_PRICE, "a price per unit is at most 1000000"),
        PriceKind::Fixed => (MAX_FIXED_AMOUNT, "a fixed amount is at most 1000000000000"),
    };
    if value.is_sign_negative() {
        Err(at(path, "an amount cannot be negative"))
    } else if *value > bound {
        Err(at(path, format!("{what}; check the decimal point")))
    } else if value.normalize().scale() > MAX_PRICE_DECIMALS {
        Err(at(
            path,
            format!("a price has at most {MAX_PRICE_DECIMALS} decimal places"),
        ))
    } else {
        Ok(())
    }
}

/// Checks one charge's own fields; `path` names it in errors (`charges[2]`).
pub(super) fn validate_charge(path: &str, charge: &Charge) -> Result<(), PlanError> {
    if charge.metric() != Some(Metric::Requests) && charge.count().is_some() {
        return Err(at(
            format!("{path}.count"),
            "count chooses which calls a requests charge bills; this charge does not count requests: remove count",
        ));
    }
    match charge {
        Charge::PerRequest { unit_price, .. } => {
            check_price(format!("{path}.unit_price"), unit_price, PriceKind::PerUnit)
        }
        Charge::PerToken { models, .. } => validate_model_prices(path, models),
        Charge::Graduated { tiers, .. } | Charge::Volume { tiers, .. } => check_tiers(path, tiers),
        Charge::Package {
            package_size,
            package_price,
            ..
        } => {
            if *package_size == 0 {
                return Err(at(
                    format!("{path}.package_size"),
                    "a package holds at least 1 unit",
                ));
            }
            check_price(
                format!("{path}.package_price"),
                package_price,
                PriceKind::PerUnit,
            )
        }
        Charge::Subscription {
            fee,
            overage_unit_price,
            ..
        } => {
            check_price(format!("{path}.fee"), fee, PriceKind::Fixed)?;
            check_price(
                format!("{path}.overage_unit_price"),
                overage_unit_price,
                PriceKind::PerUnit,
            )
        }
        Charge::MinimumCommitment { amount, .. } => {
            check_price(format!("{path}.amount"), amount, PriceKind::Fixed)
        }
    }
}

/// Checks a per-token charge's model prices: at least one, each with a pattern and no
/// negative price.
fn validate_model_prices(path: &str, models: &[ModelPrice]) -> Result<(), PlanError> {
    if models.is_empty() {
        return Err(at(
            format!("{path}.models"),
            "give at least one model price",
        ));
    }
    for (model_index, model) in models.iter().enumerate() {
        let model_path = format!("{path}.models[{model_index}]");
        if model.pattern.trim().is_empty() {
            return Err(at(
                format!("{model_path}.pattern"),
                "give a model id or a pattern with *",
            ));
        }
        for (field, value) in [
            ("input_per_million", &model.input_per_million),
            ("output_per_million", &model.output_per_million),
            ("cache_read_per_million", &model.cache_read_per_million),
            ("cache_write_per_million", &model.cache_write_per_million),
        ] {
            check_price(format!("{model_path}.{field}"), value, PriceKind::PerUnit)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str, kind: PriceKind) -> Result<(), String> {
        check_price("p".into(), &text.parse().unwrap(), kind).map_err(|error| error.to_string())
    }

    #[test]
    fn prices_are_bounded_by_what_they_multiply() {
        assert_eq!(MAX_UNIT_PRICE, Decimal::from(1_000_000_u64));
        assert_eq!(MAX_FIXED_AMOUNT, Decimal::from(1_000_000_000_000_u64));
        assert_eq!(checked("1000000", PriceKind::PerUnit), Ok(()));
        assert_eq!(checked("0.000000000001", PriceKind::PerUnit), Ok(()));
        assert_eq!(checked("2.500000000000000", PriceKind::PerUnit), Ok(()));
        assert_eq!(checked("1000000000000", PriceKind::Fixed), Ok(()));
        let over = checked("1000000.01", PriceKind::PerUnit).unwrap_err();
        assert!(
            over.contains("at most 1000000; check the decimal point"),
            "{over}"
        );
        let fixed = checked("1000000000000.5", PriceKind::Fixed).unwrap_err();
        assert!(fixed.contains("at most 1000000000000"), "{fixed}");
        let fine = checked("0.0000000000001", PriceKind::PerUnit).unwrap_err();
        assert!(fine.contains("at most 12 decimal places"), "{fine}");
        let negative = checked("-0.01", PriceKind::Fixed).unwrap_err();
        assert!(negative.contains("cannot be negative"), "{negative}");
    }
}
