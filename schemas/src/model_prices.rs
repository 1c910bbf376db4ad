//! Bedrock's prices, as the operator keeps them: a TOML table matching model ids and
//! inference profiles by pattern to the price per million input, output, cache-read and
//! cache-write tokens, each with the page it was read from. Parsed and validated here
//! (pure), like plans; what usage costs is `metering::cost`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::customer::wildcard_match;
use crate::plan::{PlanError, PriceKind, at, check_price, parse_toml};

/// The price table format this build reads.
pub const MODEL_PRICES_SCHEMA_VERSION: u32 = 1;

/// A price written as a string (`"3.00"`), so it is exact; a float is refused.
fn exact<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let text = String::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom(
            "write prices as strings, such as \"3.00\", so they stay exact (a float is not)",
        )
    })?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!("{text:?} is not a decimal number such as \"3.00\""))
    })
}

/// One model's (or pattern's) price per million tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockPrice {
    /// A model id, inference profile id or ARN, with `*` matching anything
    /// (`*anthropic.claude-3-5-haiku*` covers the model and its `us.` profile).
    pub pattern: String,
    #[serde(deserialize_with = "exact")]
    pub input_per_million: Decimal,
    #[serde(deserialize_with = "exact")]
    pub output_per_million: Decimal,
    #[serde(default, deserialize_with = "exact")]
    pub cache_read_per_million: Decimal,
    #[serde(default, deserialize_with = "exact")]
    pub cache_write_per_million: Decimal,
    /// Where the price was read (an `https://` page).
    pub source: String,
}

/// The operator's price table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPriceTable {
    pub schema_version: u32,
    /// ISO 4217 code of every price, such as `USD`.
    pub currency: String,
    /// The day the prices were read (`YYYY-MM-DD`).
    pub as_of: String,
    /// The first matching pattern prices a model.
    pub prices: Vec<BedrockPrice>,
}

impl ModelPriceTable {
    /// Parses and validates a price table; errors name the line or field and the fix.
    pub fn from_toml(text: &str) -> Result<Self, PlanError> {
        let table: Self = parse_toml(text, "the price table")?;
        table.validate()?;
        Ok(table)
    }

    /// Checks what the format alone cannot.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.schema_version != MODEL_PRICES_SCHEMA_VERSION {
            return Err(at(
                "schema_version",
                format!(
                    "this build reads price table schema_version {MODEL_PRICES_SCHEMA_VERSION}, not {}",
                    self.schema_version
                ),
            ));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|byte| byte.is_ascii_uppercase())
        {
            return Err(at("currency", "give an ISO 4217 code such as USD"));
        }
        if chrono::NaiveDate::parse_from_str(&self.as_of, "%Y-%m-%d").is_err() {
            return Err(at(
                "as_of",
                "give the day the prices were read, as YYYY-MM-DD",
            ));
        }
        if self.prices.is_empty() {
            return Err(at("prices", "give at least one [[prices]] entry"));
        }
        for (index, price) in self.prices.iter().enumerate() {
            let path = format!("prices[{index}]");
            if price.pattern.trim().is_empty() || price.pattern.chars().any(char::is_whitespace) {
                return Err(at(
                    format!("{path}.pattern"),
                    "give a model id or pattern without spaces, such as *anthropic.claude-3-5-haiku*",
                ));
            }
            for (field, value) in [
                ("input_per_million", &price.input_per_million),
                ("output_per_million", &price.output_per_million),
                ("cache_read_per_million", &price.cache_read_per_million),
                ("cache_write_per_million", &price.cache_write_per_million),
            ] {
                check_price(format!("{path}.{field}"), value, PriceKind::PerUnit)?;
            }
            if !price.source.starts_with("https://") {
                return Err(at(
                    format!("{path}.source"),
                    "give the https:// page the price was read from, such as https://aws.amazon.com/bedrock/pricing/",
                ));
            }
        }
        Ok(())
    }

    /// The price of a model: the first entry whose pattern matches; `None` when no entry
    /// does (the model is unpriced, never free).
    pub fn price_of(&self, model_id: &str) -> Option<&BedrockPrice> {
        self.prices
            .iter()
            .find(|price| wildcard_match(&price.pattern, model_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"
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
pattern = "*anthropic.claude*"
input_per_million = "3.00"
output_per_million = "15.00"
source = "https://aws.amazon.com/bedrock/pricing/"
"#;

    #[test]
    fn the_first_matching_pattern_prices_a_model_and_profiles_match_too() {
        let table = ModelPriceTable::from_toml(TABLE).unwrap();
        let haiku = table
            .price_of("us.anthropic.claude-3-5-haiku-20241022-v1:0")
            .unwrap();
        assert_eq!(haiku.input_per_million, "0.80".parse().unwrap());
        let sonnet = table
            .price_of("anthropic.claude-3-5-sonnet-20240620-v1:0")
            .unwrap();
        assert_eq!(sonnet.output_per_million, "15.00".parse().unwrap());
        assert_eq!(sonnet.cache_read_per_million, Decimal::ZERO);
        assert!(
            table.price_of("amazon.nova-pro-v1:0").is_none(),
            "unpriced, not free"
        );
    }

    /// The example the documentation ships is valid and prices the common models.
    #[test]
    fn the_shipped_example_is_valid() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model-prices.toml");
        let table = ModelPriceTable::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
        for model in [
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "amazon.nova-pro-v1:0",
            "meta.llama3-1-70b-instruct-v1:0",
            "mistral.mistral-large-2407-v1:0",
        ] {
            assert!(table.price_of(model).is_some(), "{model}");
        }
        let haiku = table
            .price_of("anthropic.claude-3-5-haiku-20241022-v1:0")
            .unwrap();
        assert_eq!(
            haiku.input_per_million,
            "0.80".parse().unwrap(),
            "not Claude 3 Haiku's price"
        );
    }

    #[test]
    fn errors_name_the_field_and_the_fix() {
        for (change, location) in [
            (
                ("schema_version = 1", "schema_version = 2"),
                "schema_version",
            ),
            (("currency = \"USD\"", "currency = \"usd\""), "currency"),
            (("as_of = \"2026-12-01\"", "as_of = \"yesterday\""), "as_of"),
            (
                (
                    "output_per_million = \"4.00\"",
                    "output_per_million = \"-4.00\"",
                ),
                "prices[0].output_per_million",
            ),
            (
                (
                    "pattern = \"*anthropic.claude*\"",
                    "pattern = \"claude sonnet\"",
                ),
                "prices[1].pattern",
            ),
            (
                (
                    "source = \"https://aws.amazon.com/bedrock/pricing/\"\n\n[[prices]]",
                    "source = \"somewhere\"\n\n[[prices]]",
                ),
                "prices[0].source",
            ),
        ] {
            let text = TABLE.replacen(change.0, change.1, 1);
            let error = ModelPriceTable::from_toml(&text).unwrap_err();
            assert_eq!(error.location, location, "{error}");
        }
        let float = TABLE.replacen("\"0.80\"", "0.80", 1);
        let error = ModelPriceTable::from_toml(&float).unwrap_err();
        assert!(error.location.starts_with("line "), "{error}");
        assert!(error.message.contains("strings"), "{error}");
        let unknown = TABLE.replacen("as_of", "colour = \"red\"\nas_of", 1);
        assert!(ModelPriceTable::from_toml(&unknown).is_err());
    }
}
