//! Pricing plans: a versioned TOML document, parsed and validated here (pure); the rating
//! itself lives in `metering::rating`.
//!
//! Money and unit prices are exact decimals, written as strings (`"0.002"`), never floats.
//! See `docs/pricing.md` for the format and a worked example of every charge.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::customer::wildcard_match;

mod checks;

use checks::validate_charge;
pub use checks::{MAX_FIXED_AMOUNT, MAX_PRICE_DECIMALS, MAX_UNIT_PRICE};
pub(crate) use checks::{PriceKind, check_price};

/// The plan format this build reads.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// What a metered charge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Admitted calls.
    Requests,
    /// Input plus output tokens.
    Tokens,
    InputTokens,
    OutputTokens,
}

impl Metric {
    /// The unit's name on an invoice line.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::InputTokens => "input tokens",
            Self::OutputTokens => "output tokens",
        }
    }
}

/// Which calls a request-counting charge bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillableCalls {
    /// Calls that succeeded: a call that failed (a client or upstream error) is not
    /// charged. The default of every plan version stored from now on.
    Success,
    /// Every admitted call, failed ones included: what plan versions stored before `count`
    /// existed bill, so their invoices stay as they were.
    Admitted,
}

/// One tier: units up to `up_to` (inclusive, counted from the start) at `unit_price`;
/// the last tier has no `up_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub up_to: Option<u64>,
    pub unit_price: Decimal,
}

/// Token prices of the models matching `pattern` (`*` matches anything), per million.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub pattern: String,
    pub input_per_million: Decimal,
    pub output_per_million: Decimal,
    #[serde(default)]
    pub cache_read_per_million: Decimal,
    #[serde(default)]
    pub cache_write_per_million: Decimal,
}

/// One charge of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Charge {
    /// A price per unit.
    PerRequest {
        description: Option<String>,
        unit_price: Decimal,
        #[serde(default)]
        free_units: u64,
        /// Which calls count; `None` only in plan versions stored before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<BillableCalls>,
    },
    /// Tokens priced per model; the first matching pattern prices a model.
    PerToken {
        description: Option<String>,
        models: Vec<ModelPrice>,
    },
    /// Each tier's units at that tier's price.
    Graduated {
        description: Option<String>,
        metric: Metric,
        tiers: Vec<Tier>,
        #[serde(default)]
        free_units: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<BillableCalls>,
    },
    /// Every unit at the price of the tier the total reaches.
    Volume {
        description: Option<String>,
        metric: Metric,
        tiers: Vec<Tier>,
        #[serde(default)]
        free_units: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<BillableCalls>,
    },
    /// A price per started block of `package_size` units.
    Package {
        description: Option<String>,
        metric: Metric,
        package_size: u64,
        package_price: Decimal,
        #[serde(default)]
        free_units: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<BillableCalls>,
    },
    /// A fixed fee that includes some units; the rest at the overage price.
    Subscription {
        description: Option<String>,
        fee: Decimal,
        metric: Metric,
        #[serde(default)]
        included_units: u64,
        overage_unit_price: Decimal,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<BillableCalls>,
    },
    /// The period's total is at least this amount.
    MinimumCommitment {
        description: Option<String>,
        amount: Decimal,
    },
}

impl Charge {
    /// What the charge counts; `None` for per-token prices and the minimum commitment.
    pub fn metric(&self) -> Option<Metric> {
        match self {
            Self::PerRequest { .. } => Some(Metric::Requests),
            Self::Graduated { metric, .. }
            | Self::Volume { metric, .. }
            | Self::Package { metric, .. }
            | Self::Subscription { metric, .. } => Some(*metric),
            Self::PerToken { .. } | Self::MinimumCommitment { .. } => None,
        }
    }

    /// The charge's `count` as written.
    pub fn count(&self) -> Option<BillableCalls> {
        match self {
            Self::PerRequest { count, .. }
            | Self::Graduated { count, .. }
            | Self::Volume { count, .. }
            | Self::Package { count, .. }
            | Self::Subscription { count, .. } => *count,
            Self::PerToken { .. } | Self::MinimumCommitment { .. } => None,
        }
    }

    /// The charge's `count`, when it counts requests.
    fn count_mut(&mut self) -> Option<&mut Option<BillableCalls>> {
        if self.metric() != Some(Metric::Requests) {
            return None;
        }
        match self {
            Self::PerRequest { count, .. }
            | Self::Graduated { count, .. }
            | Self::Volume { count, .. }
            | Self::Package { count, .. }
            | Self::Subscription { count, .. } => Some(count),
            Self::PerToken { .. } | Self::MinimumCommitment { .. } => None,
        }
    }

    /// Which calls the charge bills: its `count`, or every admitted call for a version
    /// stored before `count` existed.
    pub fn billable_calls(&self) -> BillableCalls {
        self.count().unwrap_or(BillableCalls::Admitted)
    }
}

/// A pricing plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub schema_version: u32,
    /// Stable id; with `version` it names what an invoice was priced with.
    pub id: String,
    pub version: u32,
    pub name: String,
    /// ISO 4217 code, such as `USD` or `EUR`.
    pub currency: String,
    /// Digits after the decimal point of the currency (2 for USD and EUR, 0 for JPY).
    #[serde(default = "two")]
    pub minor_units: u32,
    pub charges: Vec<Charge>,
}

fn two() -> u32 {
    2
}

/// Which plan prices a customer from a date on (the first day of a month: a plan change
/// takes effect at the start of a billing period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanAssignment {
    pub customer_id: String,
    pub plan_id: String,
    pub plan_version: u32,
    pub effective_from: chrono::NaiveDate,
}

/// The assignment in effect on `day`: the latest one effective on or before it.
pub fn assignment_on(
    assignments: &[PlanAssignment],
    day: chrono::NaiveDate,
) -> Option<&PlanAssignment> {
    assignments
        .iter()
        .filter(|assignment| assignment.effective_from <= day)
        .max_by_key(|assignment| assignment.effective_from)
}

/// Why a plan is unusable: where, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct PlanError {
    /// `line L, column C`, or the field path (`charges[2].tiers[1].up_to`).
    pub location: String,
    pub message: String,
}

pub(crate) fn at(location: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        location: location.into(),
        message: message.into(),
    }
}

/// Reads one of the operator's TOML files (`what` names it when no line can be given):
/// a syntax or type error names its line and column, and a float where an exact amount
/// belongs gets the advice to write it as a string.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, PlanError> {
    toml::from_str(text).map_err(|error| {
        let location = error
            .span()
            .map_or_else(|| what.to_owned(), |span| line_and_column(text, span.start));
        let mut message = error.message().trim().to_owned();
        if message.contains("floating point") {
            message.push_str(
                "; write amounts and prices as strings, such as \"49.00\", so they stay exact",
            );
        }
        at(location, message)
    })
}

fn line_and_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    format!("line {line}, column {column}")
}

impl Plan {
    /// Parses and validates a plan; errors name the line or field and the fix.
    pub fn from_toml(text: &str) -> Result<Self, PlanError> {
        let plan: Self = parse_toml(text, "the plan")?;
        plan.validate()?;
        Ok(plan.with_current_defaults())
    }

    /// The plan as a new version is stored: a request-counting charge without `count`
    /// bills successful calls. (Versions stored before `count` existed have none, and bill
    /// every admitted call: [`Charge::billable_calls`].)
    pub fn with_current_defaults(mut self) -> Self {
        for charge in &mut self.charges {
            if let Some(count) = charge.count_mut()
                && count.is_none()
            {
                *count = Some(BillableCalls::Success);
            }
        }
        self
    }

    /// The plan as TOML.
    pub fn to_toml(&self) -> Result<String, PlanError> {
        toml::to_string_pretty(self).map_err(|error| at("the plan", error.to_string()))
    }

    /// Checks what the format alone cannot.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.schema_version != PLAN_SCHEMA_VERSION {
            return Err(at(
                "schema_version",
                format!(
                    "this build reads plan schema_version {PLAN_SCHEMA_VERSION}, not {}",
                    self.schema_version
                ),
            ));
        }
        if self.id.trim().is_empty() || self.id.chars().any(char::is_whitespace) {
            return Err(at(
                "id",
                "give a plan id without spaces, such as \"growth\"",
            ));
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(at(
                "currency",
                "use a three-letter ISO 4217 code in capitals, such as \"USD\"",
            ));
        }
        if self.minor_units > 4 {
            return Err(at(
                "minor_units",
                "use 0 to 4 digits after the decimal point",
            ));
        }
        if self.charges.is_empty() {
            return Err(at("charges", "give at least one [[charges]] entry"));
        }
        let mut commitments = 0;
        for (index, charge) in self.charges.iter().enumerate() {
            let path = format!("charges[{index}]");
            validate_charge(&path, charge)?;
            if matches!(charge, Charge::MinimumCommitment { .. }) {
                commitments += 1;
                if commitments > 1 {
                    return Err(at(path, "a plan has at most one minimum commitment"));
                }
            }
        }
        Ok(())
    }

    /// The price of `model_id` under the first per-token entry whose pattern matches it.
    pub fn model_price<'a>(models: &'a [ModelPrice], model_id: &str) -> Option<&'a ModelPrice> {
        models
            .iter()
            .find(|model| wildcard_match(&model.pattern, model_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
schema_version = 1
id = "growth"
version = 2
name = "Growth"
currency = "USD"

[[charges]]
type = "subscription"
fee = "49.00"
metric = "requests"
included_units = 10000
overage_unit_price = "0.004"

[[charges]]
type = "per_token"
[[charges.models]]
pattern = "*claude-3-5-sonnet*"
input_per_million = "3.00"
output_per_million = "15.00"
cache_read_per_million = "0.30"
cache_write_per_million = "3.75"

[[charges]]
type = "graduated"
metric = "requests"
tiers = [ { up_to = 1000, unit_price = "0" }, { unit_price = "0.001" } ]

[[charges]]
type = "minimum_commitment"
amount = "100"
"#;

    #[test]
    fn a_valid_plan_parses_and_round_trips() {
        let plan = Plan::from_toml(EXAMPLE).unwrap();
        assert_eq!(plan.currency, "USD");
        assert_eq!(plan.minor_units, 2);
        assert_eq!(plan.charges.len(), 4);
        let again = Plan::from_toml(&plan.to_toml().unwrap()).unwrap();
        assert_eq!(again, plan);
        let Charge::PerToken { models, .. } = &plan.charges[1] else {
            panic!("per_token")
        };
        assert!(
            Plan::model_price(models, "us.anthropic.claude-3-5-sonnet-20240620-v1:0").is_some()
        );
        assert!(Plan::model_price(models, "amazon.nova-lite-v1:0").is_none());
    }

    #[test]
    fn errors_point_at_the_line_or_field_and_say_the_fix() {
        let cases: Vec<(String, &str, &str)> = vec![
            (
                EXAMPLE.replace("fee = \"49.00\"", "fee = 49.00"),
                "line 8",
                "write amounts and prices as strings",
            ),
            (
                EXAMPLE.replace(
                    "metric = \"requests\"\nincluded_units",
                    "metric = \"calls\"\nincluded_units",
                ),
                "line 8",
                "unknown variant",
            ),
            (
                EXAMPLE.replace("currency = \"USD\"", "currency = \"dollars\""),
                "currency",
                "ISO 4217",
            ),
            (
                EXAMPLE.replace(
                    "{ up_to = 1000, unit_price = \"0\" }, { unit_price",
                    "{ unit_price = \"0\" }, { unit_price",
                ),
                "charges[2].tiers[0].up_to",
                "only the last tier",
            ),
            (
                EXAMPLE.replace("amount = \"100\"", "amount = \"-1\""),
                "charges[3].amount",
                "negative",
            ),
            (
                EXAMPLE.replace("overage_unit_price", "overage_price"),
                "line",
                "unknown field",
            ),
        ];
        for (text, location, message) in cases {
            let error = Plan::from_toml(&text).unwrap_err();
            assert!(
                error.location.contains(location) && error.message.contains(message),
                "expected {location:?} / {message:?}, got {error}"
            );
        }
    }
}

#[cfg(test)]
mod documented_examples {
    use super::*;

    /// Every example plan in `docs/plans/` is valid, so the documentation cannot rot.
    #[test]
    fn every_documented_example_plan_is_valid() {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plans");
        let mut checked = 0;
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path
                .extension()
                .is_some_and(|extension| extension == "toml")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                Plan::from_toml(&text)
                    .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                checked += 1;
            }
        }
        assert!(checked >= 5, "{checked} examples");
    }
}
