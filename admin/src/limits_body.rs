//! Limits as JSON fields, named as `tollgate create` and `update-limits` name their flags
//! (`daily_limit`, `rpm`, …): a number sets a limit, `null` clears it (unlimited, every
//! model, or the deployment's enforcement mode), an absent field leaves it as it is.

use control::inputs::{check_models, parse_enforcement};
use control::limits::{Cap, LimitChanges};
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, ApiResult};

/// `Some(value)` for a field that is present, even as `null`; absent fields stay `None`
/// through `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The limit fields of a request body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitFields {
    #[serde(default, deserialize_with = "present")]
    pub daily_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub monthly_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub daily_token_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub monthly_token_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present", alias = "requests_per_minute")]
    pub rpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub enforcement: Option<Option<String>>,
}

/// The body's keys that are limit fields (the rest belong to the request around them).
pub const LIMIT_FIELD_NAMES: [&str; 8] = [
    "daily_limit",
    "monthly_limit",
    "daily_token_limit",
    "monthly_token_limit",
    "rpm",
    "requests_per_minute",
    "allowed_models",
    "enforcement",
];

fn cap(value: Option<Option<u64>>) -> Option<Cap> {
    value.map(|limit| limit.map_or(Cap::Unlimited, Cap::Limit))
}

impl LimitFields {
    /// The control layer's changes; model lists and modes are checked by its parsers.
    pub fn changes(self) -> ApiResult<LimitChanges> {
        let allowed_models = match self.allowed_models {
            Some(Some(models)) => {
                Some(Some(check_models(models).map_err(|message| {
                    ApiError::validation("allowed_models", message)
                })?))
            }
            other => other.map(|_| None),
        };
        let enforcement = match self.enforcement {
            Some(Some(mode)) => Some(
                parse_enforcement(&mode)
                    .map_err(|message| ApiError::validation("enforcement", message))?,
            ),
            other => other.map(|_| None),
        };
        Ok(LimitChanges {
            daily_request_limit: cap(self.daily_limit),
            monthly_request_limit: cap(self.monthly_limit),
            daily_token_limit: cap(self.daily_token_limit),
            monthly_token_limit: cap(self.monthly_token_limit),
            requests_per_minute: cap(self.rpm),
            allowed_models,
            enforcement,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::EnforcementMode;

    fn changes(json: &str) -> ApiResult<LimitChanges> {
        crate::json::decode::<LimitFields>(json.as_bytes())?.changes()
    }

    #[test]
    fn numbers_set_nulls_clear_and_absent_fields_stay() {
        assert_eq!(
            changes(r#"{"daily_limit": 100, "rpm": null, "allowed_models": ["anthropic.*"], "enforcement": "strict"}"#)
                .unwrap(),
            LimitChanges {
                daily_request_limit: Some(Cap::Limit(100)),
                requests_per_minute: Some(Cap::Unlimited),
                allowed_models: Some(Some(vec!["anthropic.*".into()])),
                enforcement: Some(Some(EnforcementMode::Strict)),
                ..LimitChanges::default()
            }
        );
        assert_eq!(
            changes(r#"{"allowed_models": null, "enforcement": null}"#).unwrap(),
            LimitChanges {
                allowed_models: Some(None),
                enforcement: Some(None),
                ..LimitChanges::default()
            }
        );
        assert!(changes("{}").unwrap().is_empty());
    }

    #[test]
    fn wrong_values_name_their_field() {
        for (json, field) in [
            (r#"{"daily_limit": "lots"}"#, "daily_limit"),
            (r#"{"daily_limit": -1}"#, "daily_limit"),
            (r#"{"rpm": 1.5}"#, "rpm"),
            (r#"{"allowed_models": []}"#, "allowed_models"),
            (r#"{"allowed_models": "anthropic.*"}"#, "allowed_models"),
            (r#"{"enforcement": "lax"}"#, "enforcement"),
            (r#"{"daily_limt": 5}"#, "daily_limt"),
        ] {
            let error = changes(json).unwrap_err();
            assert_eq!(
                error.field.as_deref(),
                Some(field),
                "{json}: {}",
                error.message
            );
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
        }
    }
}
