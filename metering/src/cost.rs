//! What Bedrock charged the operator for a customer's usage, under the operator's price
//! table (`schemas::model_prices`), and the gross margin against what the customer pays.
//! Pure. Shown to the operator only: never on a customer's invoice page.
//!
//! Each model's cost is exact; the total is rounded once to cents, half to even, like
//! invoice lines. A model the table does not price is listed as unpriced and its cost is
//! left out of the total, never counted as free: `complete` says whether the total covers
//! every model.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use schemas::UsageCounts;
use schemas::model_prices::ModelPriceTable;
use serde::Serialize;

/// One model's tokens and what they cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCost {
    pub model_id: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Exact; `None` when the price table has no price for the model.
    pub cost: Option<Decimal>,
}

/// The cost of a period's usage, and the margin when the revenue is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostOfGoods {
    /// The price table's currency.
    pub currency: String,
    /// The day the table's prices were read.
    pub prices_as_of: String,
    pub by_model: Vec<ModelCost>,
    /// The priced models' cost, rounded to cents.
    pub total: Decimal,
    /// Models used with no price in the table: the total leaves them out.
    pub unpriced_models: Vec<String>,
    /// Whether every model used is priced.
    pub complete: bool,
    /// Revenue minus cost, when the revenue is in the table's currency and every model is
    /// priced; `None` otherwise (see `margin_note`).
    pub gross_margin: Option<Decimal>,
    /// Why there is no margin, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin_note: Option<String>,
}

/// Rounded half to even to the cent and written with both digits (`0.00`).
fn cents(amount: Decimal) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(2);
    rounded
}

fn per_million(tokens: u64, price: Decimal) -> Decimal {
    Decimal::from(tokens) * price / Decimal::from(1_000_000u64)
}

/// The cost of `usage` (per model) under `table`.
pub fn cost_of_usage(
    table: &ModelPriceTable,
    usage: &BTreeMap<String, UsageCounts>,
) -> CostOfGoods {
    let mut by_model = Vec::new();
    let mut unpriced_models = Vec::new();
    let mut exact_total = Decimal::ZERO;
    for (model_id, counts) in usage {
        let tokens = counts.all_tokens();
        if tokens == 0 {
            continue;
        }
        let cost = table.price_of(model_id).map(|price| {
            per_million(counts.input_tokens, price.input_per_million)
                + per_million(counts.output_tokens, price.output_per_million)
                + per_million(counts.cache_read_tokens, price.cache_read_per_million)
                + per_million(counts.cache_write_tokens, price.cache_write_per_million)
        });
        match cost {
            Some(cost) => exact_total += cost,
            None => unpriced_models.push(model_id.clone()),
        }
        by_model.push(ModelCost {
            model_id: model_id.clone(),
            input_tokens: counts.input_tokens,
            output_tokens: counts.output_tokens,
            cache_read_tokens: counts.cache_read_tokens,
            cache_write_tokens: counts.cache_write_tokens,
            cost,
        });
    }
    let complete = unpriced_models.is_empty();
    CostOfGoods {
        currency: table.currency.clone(),
        prices_as_of: table.as_of.clone(),
        by_model,
        total: cents(exact_total),
        unpriced_models,
        complete,
        gross_margin: None,
        margin_note: Some("no revenue given".into()),
    }
}

impl CostOfGoods {
    /// The cost with the margin against `revenue` (in `currency`).
    pub fn with_revenue(mut self, revenue: Decimal, currency: &str) -> Self {
        let (margin, note) = if currency != self.currency {
            (
                None,
                Some(format!(
                    "the revenue is in {currency} and the prices in {}: no margin without an exchange rate",
                    self.currency
                )),
            )
        } else if !self.complete {
            (
                None,
                Some(format!(
                    "unpriced models ({}): add them to the price table",
                    self.unpriced_models.join(", ")
                )),
            )
        } else {
            (Some(revenue - self.total), None)
        };
        self.gross_margin = margin;
        self.margin_note = note;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn table() -> ModelPriceTable {
        ModelPriceTable::from_toml(
            r#"
schema_version = 1
currency = "USD"
as_of = "2026-12-01"

[[prices]]
pattern = "*anthropic.claude-3-5-haiku*"
input_per_million = "0.80"
output_per_million = "4.00"
cache_read_per_million = "0.08"
cache_write_per_million = "1.00"
source = "https://aws.amazon.com/bedrock/pricing/"

[[prices]]
pattern = "*anthropic.claude-3-5-sonnet*"
input_per_million = "3.00"
output_per_million = "15.00"
source = "https://aws.amazon.com/bedrock/pricing/"
"#,
        )
        .unwrap()
    }

    fn counts(input: u64, output: u64, cache_read: u64, cache_write: u64) -> UsageCounts {
        UsageCounts {
            requests: 1,
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            ..UsageCounts::default()
        }
    }

    #[test]
    fn costs_margins_and_unpriced_models_worked_by_hand() {
        // Haiku: 1,250,000 in × 0.80 = 1.00; 300,000 out × 4.00 = 1.20;
        //        2,000,000 cache read × 0.08 = 0.16; 50,000 cache write × 1.00 = 0.05 → 2.41.
        // Sonnet (a us. profile): 333,333 in × 3.00 = 0.999999; 10,001 out × 15 = 0.150015
        //        → 1.150014.
        // Total 3.560014 → $3.56. Revenue $10.00 → margin $6.44.
        let usage = BTreeMap::from([
            (
                "anthropic.claude-3-5-haiku-20241022-v1:0".to_owned(),
                counts(1_250_000, 300_000, 2_000_000, 50_000),
            ),
            (
                "us.anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned(),
                counts(333_333, 10_001, 0, 0),
            ),
            ("amazon.titan-embed".to_owned(), counts(0, 0, 0, 0)),
        ]);
        let cost = cost_of_usage(&table(), &usage).with_revenue(d("10.00"), "USD");
        assert_eq!(
            cost.by_model.len(),
            2,
            "a model without tokens costs nothing to list"
        );
        assert_eq!(cost.by_model[0].cost, Some(d("2.41")));
        assert_eq!(cost.by_model[1].cost, Some(d("1.150014")));
        assert_eq!(cost.total, d("3.56"));
        assert!(cost.complete);
        assert_eq!(cost.gross_margin, Some(d("6.44")));
        assert_eq!(cost.margin_note, None);

        // Half to even at the cent: 625 output tokens of Sonnet = 0.009375; 1,250 in of
        // Haiku = 0.001 → 0.010375 → $0.01. And 5,000 out of Sonnet = 0.075 → $0.08 (7 odd).
        let tiny = BTreeMap::from([
            (
                "anthropic.claude-3-5-sonnet-x".to_owned(),
                counts(0, 625, 0, 0),
            ),
            (
                "anthropic.claude-3-5-haiku-x".to_owned(),
                counts(1_250, 0, 0, 0),
            ),
        ]);
        assert_eq!(cost_of_usage(&table(), &tiny).total, d("0.01"));
        let half = BTreeMap::from([(
            "anthropic.claude-3-5-sonnet-x".to_owned(),
            counts(0, 5_000, 0, 0),
        )]);
        assert_eq!(cost_of_usage(&table(), &half).total, d("0.08"));
        assert_eq!(
            cost_of_usage(&table(), &BTreeMap::new()).total.to_string(),
            "0.00",
            "written with both digits"
        );
    }

    #[test]
    fn an_unpriced_model_is_never_free_and_other_currencies_get_no_margin() {
        let usage = BTreeMap::from([
            (
                "anthropic.claude-3-5-haiku-x".to_owned(),
                counts(1_000_000, 0, 0, 0),
            ),
            (
                "amazon.nova-pro-v1:0".to_owned(),
                counts(1_000_000, 1_000_000, 0, 0),
            ),
        ]);
        let cost = cost_of_usage(&table(), &usage).with_revenue(d("5.00"), "USD");
        assert_eq!(cost.total, d("0.80"), "the priced part only");
        assert!(!cost.complete);
        assert_eq!(cost.unpriced_models, ["amazon.nova-pro-v1:0"]);
        assert_eq!(cost.by_model[0].cost, None);
        assert_eq!(
            cost.gross_margin, None,
            "no margin while a model is unpriced"
        );
        assert!(cost.margin_note.unwrap().contains("amazon.nova-pro-v1:0"));
        let priced = BTreeMap::from([(
            "anthropic.claude-3-5-haiku-x".to_owned(),
            counts(1_000_000, 0, 0, 0),
        )]);
        let euros = cost_of_usage(&table(), &priced).with_revenue(d("5.00"), "EUR");
        assert_eq!(euros.gross_margin, None);
        assert!(euros.margin_note.unwrap().contains("exchange rate"));
    }
}
