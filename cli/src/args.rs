//! Command-line arguments. The spec's verbs and flags are kept exactly.

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

/// Tollgate: meter, limit and bill Amazon Bedrock usage per customer.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log at debug level (logs go to stderr).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(flatten)]
    pub backend: store::backend::BackendArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a customer and its first bearer token (printed once).
    Create(CreateArgs),
    /// List customers.
    List,
    /// Show a customer's usage per day and model, with totals.
    Usage(UsageArgs),
    /// Issue a new token for a customer; the old token stops working.
    UpdateToken(UpdateTokenArgs),
    /// Change a customer's limits.
    UpdateLimits(UpdateLimitsArgs),
    /// Run the proxy and the metering consumer together.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Customer name.
    #[arg(long)]
    pub name: String,
    /// Customer contact email.
    #[arg(long)]
    pub email: String,
    /// Use this token instead of generating one (at least 32 characters, e.g. `openssl rand -base64 32`).
    #[arg(long, env = "TOLLGATE_NEW_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Daily request limit (UTC day); `none` for unlimited.
    #[arg(long, value_parser = parse_limit, value_name = "N|none")]
    pub daily_limit: Option<LimitValue>,
    /// Models the customer may call: comma-separated ids or patterns with `*`; `all` for every model.
    #[arg(long, value_parser = parse_models, value_name = "LIST|all")]
    pub allowed_models: Option<ModelsValue>,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[arg(long)]
    pub customer_id: String,
    /// First day, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub start_date: NaiveDate,
    /// Last day, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub end_date: NaiveDate,
}

#[derive(Debug, Args)]
pub struct UpdateTokenArgs {
    #[arg(long)]
    pub customer_id: String,
    /// Use this token instead of generating one (at least 32 characters).
    #[arg(long, env = "TOLLGATE_NEW_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateLimitsArgs {
    #[arg(long)]
    pub customer_id: String,
    /// Daily request limit (UTC day); `none` for unlimited.
    #[arg(long, value_parser = parse_limit, value_name = "N|none")]
    pub daily_limit: Option<LimitValue>,
    /// Models the customer may call: comma-separated ids or patterns with `*`; `all` for every model.
    #[arg(long, value_parser = parse_models, value_name = "LIST|all")]
    pub allowed_models: Option<ModelsValue>,
}

/// An allow-list of models; `None` inside means every model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsValue(pub Option<Vec<String>>);

/// Parses `all`, or a comma-separated list of model ids and patterns.
pub fn parse_models(text: &str) -> Result<ModelsValue, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(ModelsValue(None));
    }
    let models: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|model| !model.is_empty())
        .map(str::to_owned)
        .collect();
    if models.is_empty() {
        return Err("give model ids or patterns separated by commas, such as anthropic.*,amazon.nova-lite-v1:0, or `all`".into());
    }
    if let Some(bad) = models
        .iter()
        .find(|model| model.chars().any(char::is_whitespace))
    {
        return Err(format!("model pattern {bad:?} contains whitespace"));
    }
    Ok(ModelsValue(Some(models)))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub proxy: proxy::settings::ProxyArgs,
    #[command(flatten)]
    pub metering: metering::settings::MeteringArgs,
}

/// A limit value: a number, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitValue {
    Limit(u64),
    Unlimited,
}

impl LimitValue {
    /// As stored.
    pub fn as_option(self) -> Option<u64> {
        match self {
            Self::Limit(limit) => Some(limit),
            Self::Unlimited => None,
        }
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("invalid date {text:?}: use YYYY-MM-DD, for example 2023-04-01"))
}

/// Parses a limit: a whole number, or `none`.
pub fn parse_limit(text: &str) -> Result<LimitValue, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") || text.eq_ignore_ascii_case("unlimited") {
        return Ok(LimitValue::Unlimited);
    }
    text.parse::<u64>()
        .map(LimitValue::Limit)
        .map_err(|_| format!("invalid limit {text:?}: use a whole number such as 1000, or `none`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_limits_parse_or_explain() {
        assert_eq!(
            parse_date("2023-04-01"),
            Ok(NaiveDate::from_ymd_opt(2023, 4, 1).unwrap())
        );
        assert!(parse_date("2023-13-01").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse_date("04/01/2023").is_err());
        assert_eq!(parse_limit("1000"), Ok(LimitValue::Limit(1000)));
        assert_eq!(parse_limit("none"), Ok(LimitValue::Unlimited));
        assert!(parse_limit("-5").unwrap_err().contains("whole number"));
        assert_eq!(parse_models("all"), Ok(ModelsValue(None)));
        assert_eq!(
            parse_models(" anthropic.* , amazon.nova-lite-v1:0 "),
            Ok(ModelsValue(Some(vec![
                "anthropic.*".into(),
                "amazon.nova-lite-v1:0".into()
            ])))
        );
        assert!(parse_models(",").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
