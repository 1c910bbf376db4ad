//! Command-line arguments. The spec's verbs and flags are kept exactly.

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use control::limits::{Cap, LimitChanges, LimitSetting};
use schemas::{EnforcementMode, SecretToken};

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
    /// Who is acting, for the audit trail [default: TOLLGATE_ACTOR, else the OS user].
    #[arg(long, global = true, env = "TOLLGATE_ACTOR")]
    pub actor: Option<String>,
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
    /// Change a customer's name or email.
    UpdateCustomer(UpdateCustomerArgs),
    /// Show one customer: profile, limits and keys.
    Show(CustomerIdArgs),
    /// List a customer's keys with their status, creation and expiry.
    ListKeys(CustomerIdArgs),
    /// Revoke one key at once.
    RevokeToken(RevokeTokenArgs),
    /// Refuse a customer's calls (403) until enabled again.
    Disable(CustomerIdArgs),
    /// Accept a disabled customer's calls again.
    Enable(CustomerIdArgs),
    /// Revoke every key of a customer; the record and its usage history are kept.
    Delete(CustomerIdArgs),
    /// Show the audit trail of administrative actions.
    Audit(AuditArgs),
    /// Compare the raw events with the counters and Parquet, per customer and day; exits 6
    /// when they disagree.
    Reconcile(ReconcileArgs),
    /// Rebuild the counters and Parquet from the raw events into fresh projections.
    Replay(ReplayArgs),
    /// Merge a day's Parquet files into large files of its unique events.
    Compact(CompactArgs),
    /// Move the embedded log's settled records into the data directory's archive and give
    /// their space back (`serve` does it every few minutes).
    ArchiveLog(ArchiveLogArgs),
    /// What the metering consumer could not meter: `list` it with the reasons, `requeue` it
    /// through the event log once the cause is fixed (counted once, never twice).
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Work with pricing plans.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Check Bedrock's price table (the operator's cost of goods).
    #[command(subcommand)]
    ModelPrices(ModelPricesCommand),
    /// Price a customer with a stored plan from the start of a month on.
    AssignPlan(AssignPlanArgs),
    /// Price a month of deduplicated usage as an invoice (JSON, CSV or printable HTML).
    Invoice(InvoiceArgs),
    /// Write a self-contained HTML usage report with charts (and CSV files).
    Report(ReportArgs),
    /// Admin credentials for the admin API and the console: `--name N [--role R]` makes
    /// and stores one (its token printed once), `list` and `revoke N` manage them. Bare,
    /// prints an unstored credential and its SHA-256 for `serve --admin-token-sha256`.
    AdminToken(AdminTokenArgs),
    /// List the alerts raised recently.
    Alerts(AlertsArgs),
    /// Run the proxy and the metering consumer together.
    Serve(Box<ServeArgs>),
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
    #[arg(long, env = "TOLLGATE_NEW_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<SecretToken>,
    #[command(flatten)]
    pub limits: LimitFlags,
    /// The first key expires after this long (`90d`, `12h`); never when omitted.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub expires_in: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct CustomerIdArgs {
    #[arg(long)]
    pub customer_id: String,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this customer's records.
    #[arg(long)]
    pub customer_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RevokeTokenArgs {
    #[arg(long)]
    pub customer_id: String,
    /// The key to revoke, as shown by `list-keys`.
    #[arg(long)]
    pub key_id: String,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[arg(long)]
    pub customer_id: String,
    /// First day, inclusive (YYYY-MM-DD, UTC) [default: the first of the end date's month].
    #[arg(long, value_parser = parse_date)]
    pub start_date: Option<NaiveDate>,
    /// Last day, inclusive (YYYY-MM-DD, UTC) [default: today].
    #[arg(long, value_parser = parse_date)]
    pub end_date: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// First day, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub start_date: NaiveDate,
    /// Last day, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub end_date: NaiveDate,
    /// Only this customer.
    #[arg(long)]
    pub customer_id: Option<String>,
}

/// `tollgate admin-token …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AdminTokenArgs {
    /// Store a new credential under this name (letters, digits, '.', '_', '-'); the audit
    /// trail records its changes as `admin-api:<name>`.
    #[arg(long)]
    pub name: Option<String>,
    /// What the new credential may do: `admin` (everything) or `viewer` (read only).
    #[arg(long, value_enum, default_value = "admin", requires = "name")]
    pub role: AdminRoleArg,
    #[command(subcommand)]
    pub command: Option<AdminTokenCommand>,
}

/// The role flag's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminRoleArg {
    Admin,
    Viewer,
}

/// `tollgate admin-token list|revoke`.
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// List the stored admin credentials (never their tokens).
    List,
    /// Revoke a stored admin credential: it authenticates nothing from now on.
    Revoke {
        /// The credential's name.
        name: String,
    },
}

/// `tollgate model-prices …`.
#[derive(Debug, Subcommand)]
pub enum ModelPricesCommand {
    /// Check a price table; errors point at the line or field and say the fix.
    Validate {
        /// The table (TOML, see docs/model-prices.toml).
        file: std::path::PathBuf,
    },
}

/// `tollgate quarantine …`.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List the quarantined records and events with the reason each was set aside.
    List,
    /// Append every quarantined record and event to the event log again (after upgrading
    /// the consumers, or registering a customer), and remove those the log took from
    /// quarantine. Each event keeps its producer number, so it is counted once; what still
    /// cannot be metered is quarantined again.
    Requeue,
}

/// `tollgate plan …`.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Check a plan file; errors point at the line or field and say the fix.
    Validate {
        /// The plan (TOML, see docs/pricing.md).
        file: std::path::PathBuf,
    },
    /// Store a plan version so customers can be assigned to it.
    Add {
        /// The plan (TOML, see docs/pricing.md).
        file: std::path::PathBuf,
    },
    /// List the stored plans.
    List,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// How far back (`24h`, `7d`).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "7d")]
    pub since: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub start_date: NaiveDate,
    /// Last day, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub end_date: NaiveDate,
    /// Only this customer.
    #[arg(long)]
    pub customer_id: Option<String>,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE", default_value = "report.html")]
    pub out: std::path::PathBuf,
    /// Also write each view's data as CSV into this directory.
    #[arg(long, value_name = "DIR")]
    pub csv: Option<std::path::PathBuf>,
    /// Bedrock's price table: adds the view "revenue, cost and margin by customer" (each
    /// customer's month under its plan against what Bedrock charged), for the operator.
    #[arg(long, env = "TOLLGATE_MODEL_PRICES", value_name = "FILE")]
    pub model_prices: Option<std::path::PathBuf>,
}

/// How an invoice is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvoiceFormat {
    Json,
    Csv,
    Html,
}

#[derive(Debug, Args)]
pub struct InvoiceArgs {
    /// The customer to invoice.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub customer_id: Option<String>,
    /// Invoice every customer who has a plan for the period.
    #[arg(long)]
    pub all: bool,
    /// The month (YYYY-MM, UTC).
    #[arg(long, value_parser = parse_period_arg)]
    pub period: NaiveDate,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: InvoiceFormat,
    /// Price with this plan file instead of the assigned one (what-if; changes nothing).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,
    /// Write to this file (with --all and html: a directory, one file per invoice).
    #[arg(long, value_name = "PATH")]
    pub out: Option<std::path::PathBuf>,
    /// Bedrock's price table: the JSON invoice then carries `cost_of_goods` (what Bedrock
    /// charged for the usage, and the margin), for the operator only.
    #[arg(long, env = "TOLLGATE_MODEL_PRICES", value_name = "FILE")]
    pub model_prices: Option<std::path::PathBuf>,
    /// The operator as the seller (docs/seller.toml): legal name, address, tax id, contact
    /// and payment terms on the invoice.
    #[arg(long, env = "TOLLGATE_SELLER_PROFILE", value_name = "FILE")]
    pub seller: Option<std::path::PathBuf>,
}

/// Parses `YYYY-MM`.
pub fn parse_period_arg(text: &str) -> Result<NaiveDate, String> {
    metering::invoice::parse_period(text)
        .ok_or_else(|| format!("invalid period {text:?}: use YYYY-MM, for example 2026-11"))
}

#[derive(Debug, Args)]
pub struct AssignPlanArgs {
    #[arg(long)]
    pub customer_id: String,
    /// A stored plan's id (see `tollgate plan list`).
    #[arg(long)]
    pub plan_id: String,
    /// The plan version [default: the newest stored].
    #[arg(long)]
    pub plan_version: Option<u32>,
    /// The first day the plan prices, the first of a month (YYYY-MM-01): plan changes take
    /// effect at the start of a billing period.
    #[arg(long, value_parser = parse_date)]
    pub effective_from: NaiveDate,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The UTC day to compact (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub date: NaiveDate,
}

#[derive(Debug, Args)]
pub struct ArchiveLogArgs {
    /// Records appended within this many hours stay in the database.
    #[arg(long, env = "TOLLGATE_LOG_RETENTION_HOURS", default_value_t = metering::log_retention::DEFAULT_WINDOW_HOURS, value_parser = clap::value_parser!(u64).range(0..=876_000))]
    pub log_retention_hours: u64,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Embedded: a fresh directory for the rebuilt counters (its own tollgate.db) and Parquet.
    #[arg(long, value_name = "DIR")]
    pub to_data_dir: Option<std::path::PathBuf>,
    /// AWS: a fresh DynamoDB table (keys `pk`, `sk`) for the rebuilt counters.
    #[arg(long, value_name = "TABLE")]
    pub to_counters_table: Option<String>,
    /// AWS: a fresh key prefix in the bucket for the rebuilt Parquet.
    #[arg(long, value_name = "PREFIX")]
    pub to_prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateTokenArgs {
    #[arg(long)]
    pub customer_id: String,
    /// Use this token instead of generating one (at least 32 characters).
    #[arg(long, env = "TOLLGATE_NEW_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<SecretToken>,
    /// How long the previous keys keep working (`24h`, `7d`; `0` revokes them at once).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "24h")]
    pub grace_period: std::time::Duration,
    /// The new key expires after this long (`90d`); never when omitted.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub expires_in: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct UpdateCustomerArgs {
    #[arg(long)]
    pub customer_id: String,
    /// The new name.
    #[arg(long)]
    pub name: Option<String>,
    /// The new contact email.
    #[arg(long)]
    pub email: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateLimitsArgs {
    #[arg(long)]
    pub customer_id: String,
    #[command(flatten)]
    pub limits: LimitFlags,
    /// Removes a limit (repeatable, or comma-separated): the customer becomes unlimited
    /// there, or follows the deployment's enforcement mode.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIMIT")]
    pub clear: Vec<ClearTarget>,
}

/// Limits as flags, shared by `create` and `update-limits`. All windows are UTC calendar
/// windows; token budgets count input plus output tokens.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitFlags {
    /// Requests per UTC day; `none` for unlimited.
    #[arg(long, value_parser = parse_limit, value_name = "N|none", allow_negative_numbers = true)]
    pub daily_limit: Option<Cap>,
    /// Requests per UTC calendar month; `none` for unlimited.
    #[arg(long, value_parser = parse_limit, value_name = "N|none", allow_negative_numbers = true)]
    pub monthly_limit: Option<Cap>,
    /// Tokens (input plus output) per UTC day; `none` for unlimited.
    #[arg(long, value_parser = parse_limit, value_name = "N|none", allow_negative_numbers = true)]
    pub daily_token_limit: Option<Cap>,
    /// Tokens (input plus output) per UTC calendar month; `none` for unlimited.
    #[arg(long, value_parser = parse_limit, value_name = "N|none", allow_negative_numbers = true)]
    pub monthly_token_limit: Option<Cap>,
    /// Requests per UTC minute; `none` for unlimited.
    #[arg(long = "rpm", visible_alias = "requests-per-minute", value_parser = parse_limit, value_name = "N|none", allow_negative_numbers = true)]
    pub requests_per_minute: Option<Cap>,
    /// Models the customer may call: comma-separated ids or patterns with `*`; `all` for every model.
    #[arg(long, value_parser = parse_models, value_name = "LIST|all")]
    pub allowed_models: Option<ModelsValue>,
    /// How the limits are enforced for this customer: `strict` (atomic reservation, never
    /// over), `eventual` (no store write per request), or `default` (the deployment's
    /// `--limit-mode`).
    #[arg(long, value_parser = parse_enforcement, value_name = "strict|eventual|default")]
    pub enforcement: Option<EnforcementValue>,
}

/// A limit `update-limits --clear` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClearTarget {
    DailyLimit,
    MonthlyLimit,
    DailyTokenLimit,
    MonthlyTokenLimit,
    Rpm,
    AllowedModels,
    Enforcement,
}

impl From<ClearTarget> for LimitSetting {
    fn from(target: ClearTarget) -> Self {
        match target {
            ClearTarget::DailyLimit => Self::DailyRequests,
            ClearTarget::MonthlyLimit => Self::MonthlyRequests,
            ClearTarget::DailyTokenLimit => Self::DailyTokens,
            ClearTarget::MonthlyTokenLimit => Self::MonthlyTokens,
            ClearTarget::Rpm => Self::RequestsPerMinute,
            ClearTarget::AllowedModels => Self::AllowedModels,
            ClearTarget::Enforcement => Self::Enforcement,
        }
    }
}

/// An enforcement choice: a mode, or the deployment's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnforcementValue(pub Option<EnforcementMode>);

/// Parses `strict`, `eventual` or `default` (`control::inputs::parse_enforcement`).
pub fn parse_enforcement(text: &str) -> Result<EnforcementValue, String> {
    control::inputs::parse_enforcement(text).map(EnforcementValue)
}

impl LimitFlags {
    /// The changes the flags ask for.
    pub fn changes(&self) -> LimitChanges {
        LimitChanges {
            daily_request_limit: self.daily_limit,
            monthly_request_limit: self.monthly_limit,
            daily_token_limit: self.daily_token_limit,
            monthly_token_limit: self.monthly_token_limit,
            requests_per_minute: self.requests_per_minute,
            allowed_models: self.allowed_models.clone().map(|models| models.0),
            enforcement: self.enforcement.map(|enforcement| enforcement.0),
        }
    }
}

/// An allow-list of models; `None` inside means every model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsValue(pub Option<Vec<String>>);

/// Parses `all`, or a comma-separated list of model ids and patterns
/// (`control::inputs::parse_models`).
pub fn parse_models(text: &str) -> Result<ModelsValue, String> {
    control::inputs::parse_models(text).map(ModelsValue)
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub proxy: proxy::settings::ProxyArgs,
    #[command(flatten)]
    pub metering: metering::settings::MeteringArgs,
    #[command(flatten)]
    pub log_retention: metering::settings::LogRetentionArgs,
    #[command(flatten)]
    pub metrics: telemetry::metrics::MetricsArgs,
    #[command(flatten)]
    pub admin: AdminCredentialArgs,
}

/// Holds a secret as given, so that it never shows in debug output.
pub fn parse_secret(text: &str) -> Result<SecretToken, String> {
    Ok(SecretToken::new(text.to_owned()))
}

pub use crate::operator_args::{AdminCredentialArgs, parse_sha256};
pub use control::inputs::{parse_date, parse_duration, parse_limit};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_parse_with_the_control_layers_parsers() {
        assert_eq!(parse_models("all"), Ok(ModelsValue(None)));
        assert_eq!(
            parse_enforcement("Strict"),
            Ok(EnforcementValue(Some(EnforcementMode::Strict)))
        );
        assert!(parse_models(",").is_err());
    }

    #[test]
    fn limit_flags_become_exactly_the_changes_they_name() {
        let flags = LimitFlags {
            monthly_limit: Some(Cap::Limit(300)),
            requests_per_minute: Some(Cap::Unlimited),
            allowed_models: Some(ModelsValue(None)),
            enforcement: Some(EnforcementValue(Some(EnforcementMode::Strict))),
            ..LimitFlags::default()
        };
        assert_eq!(
            flags.changes(),
            LimitChanges {
                monthly_request_limit: Some(Cap::Limit(300)),
                requests_per_minute: Some(Cap::Unlimited),
                allowed_models: Some(None),
                enforcement: Some(Some(EnforcementMode::Strict)),
                ..LimitChanges::default()
            }
        );
        assert!(LimitFlags::default().changes().is_empty());
        assert_eq!(
            LimitSetting::from(ClearTarget::Rpm).name(),
            "rpm",
            "the setting is named as the flag"
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
