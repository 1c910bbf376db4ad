//! Customers, their API keys and their limits, as the registry stores them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::token::TokenHash;

/// Whether a customer may call the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    Active,
    /// Refused with 403 until enabled again.
    Disabled,
    /// Keys revoked; the record and its usage history are kept.
    Deleted,
}

impl CustomerStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
        }
    }
    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// How a customer's limits are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementMode {
    /// Against the counter projection plus the proxy's own not-yet-counted requests. No
    /// store write on the request path; several proxies can overshoot by what the
    /// consumer has not yet counted.
    Eventual,
    /// Against an atomic reservation in the store before forwarding. Never overshoots
    /// request limits; token budgets reserve `max_tokens` plus an input estimate and settle
    /// to the actual count.
    Strict,
}

impl EnforcementMode {
    /// The stored and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eventual => "eventual",
            Self::Strict => "strict",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "eventual" => Some(Self::Eventual),
            "strict" => Some(Self::Strict),
            _ => None,
        }
    }
}

/// A customer's limits, over UTC calendar windows. `None` means unlimited.
///
/// Stored as JSON; every field defaults, so limits added later read back from old rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Admitted requests per UTC day (the spec's `--daily-limit`).
    pub daily_request_limit: Option<u64>,
    /// Admitted requests per UTC calendar month.
    pub monthly_request_limit: Option<u64>,
    /// Input plus output tokens per UTC day.
    pub daily_token_limit: Option<u64>,
    /// Input plus output tokens per UTC calendar month.
    pub monthly_token_limit: Option<u64>,
    /// Admitted requests per UTC minute.
    pub requests_per_minute: Option<u64>,
    /// Model ids the customer may call, as patterns where `*` matches any run of
    /// characters (`anthropic.*`, `*claude-3-5*`); `None` allows every model.
    pub allowed_models: Option<Vec<String>>,
    /// How the caps are enforced for this customer; `None` follows the deployment's
    /// setting.
    pub enforcement: Option<EnforcementMode>,
}

impl Limits {
    /// Whether the customer may call `model_id` (as the client named it).
    pub fn allows_model(&self, model_id: &str) -> bool {
        self.allowed_models.as_ref().is_none_or(|patterns| {
            patterns
                .iter()
                .any(|pattern| wildcard_match(pattern, model_id))
        })
    }
}

impl Limits {
    /// Whether a call naming its model `name` (a client API's model name), sent to Bedrock
    /// as `model_id`, is allowed: the allow-list may list either.
    pub fn allows_model_or_name(&self, model_id: &str, name: &str) -> bool {
        self.allows_model(model_id) || self.allows_model(name)
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters (none included).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(found) => rest = &rest[found + middle.len()..],
            None => return false,
        }
    }
    true
}

/// A customer of the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: String,
    pub name: String,
    pub email: String,
    pub status: CustomerStatus,
    pub created_at: DateTime<Utc>,
    pub limits: Limits,
}

/// Whether a key may still authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

impl KeyStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }
    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// One API key of a customer. Holds the token's hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Short public id, shown in listings and usage events.
    pub key_id: String,
    pub customer_id: String,
    pub token_hash: TokenHash,
    pub status: KeyStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key last authenticated a call, as recorded (coalesced: the proxy writes
    /// it at most once per key per flush interval).
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// The key as it is after retiring it: revoked at once (`None`), or expiring at `at`
    /// unless it already expires earlier.
    pub fn retired(&self, at: Option<DateTime<Utc>>) -> Self {
        let mut retired = self.clone();
        match at {
            None => retired.status = KeyStatus::Revoked,
            Some(at) => {
                retired.expires_at = Some(self.expires_at.map_or(at, |expires| expires.min(at)))
            }
        }
        retired
    }

    /// Whether the key authenticates at `now`: active and not expired.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.status == KeyStatus::Active && self.expires_at.is_none_or(|expires| now < expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn key(status: KeyStatus, expires_at: Option<DateTime<Utc>>) -> ApiKey {
        ApiKey {
            key_id: "key_1".into(),
            customer_id: "c".into(),
            token_hash: TokenHash::of("t"),
            status,
            created_at: Utc::now(),
            expires_at,
            last_used_at: None,
        }
    }

    #[test]
    fn only_active_unexpired_keys_are_usable() {
        let now = Utc::now();
        assert!(key(KeyStatus::Active, None).is_usable_at(now));
        assert!(key(KeyStatus::Active, Some(now + Duration::seconds(1))).is_usable_at(now));
        assert!(!key(KeyStatus::Active, Some(now)).is_usable_at(now));
        assert!(!key(KeyStatus::Revoked, None).is_usable_at(now));
    }

    #[test]
    fn model_patterns_match_with_wildcards() {
        assert!(wildcard_match(
            "anthropic.*",
            "anthropic.claude-3-sonnet-20240229-v1:0"
        ));
        assert!(wildcard_match(
            "*claude-3-5*",
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
        ));
        assert!(wildcard_match(
            "amazon.nova-lite-v1:0",
            "amazon.nova-lite-v1:0"
        ));
        assert!(wildcard_match("*", "anything"));
        assert!(!wildcard_match(
            "anthropic.*",
            "us.anthropic.claude-3-haiku"
        ));
        assert!(!wildcard_match("a*b*c", "acb"));
        assert!(wildcard_match("a*b*c", "a-b-c"));
        assert!(
            !wildcard_match("ab*ba", "aba"),
            "prefix and suffix may not overlap"
        );
        let limits = Limits {
            allowed_models: Some(vec!["anthropic.*".into(), "*nova*".into()]),
            ..Limits::default()
        };
        assert!(limits.allows_model("anthropic.claude-v2"));
        assert!(limits.allows_model("amazon.nova-pro-v1:0"));
        assert!(!limits.allows_model("meta.llama3-70b-instruct-v1:0"));
        assert!(Limits::default().allows_model("meta.llama3-70b-instruct-v1:0"));
    }

    #[test]
    fn limits_read_back_from_older_rows() {
        let limits: Limits = serde_json::from_str("{}").unwrap();
        assert_eq!(limits, Limits::default());
        let limits: Limits = serde_json::from_str(r#"{"daily_request_limit":5}"#).unwrap();
        assert_eq!(limits.daily_request_limit, Some(5));
    }
}
