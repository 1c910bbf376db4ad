//! The operator's input values as text, parsed once for every adapter: the CLI's flags and
//! the admin API's JSON fields take the same durations, limits, model lists, enforcement
//! modes and dates, and get the same explanations when they are wrong.

use chrono::NaiveDate;
use schemas::EnforcementMode;

use crate::limits::Cap;

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("invalid date {text:?}: use YYYY-MM-DD, for example 2023-04-01"))
}

/// Parses a duration: `0`, or a whole number with a unit `s`, `m`, `h` or `d` (`90d`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let explain = || {
        format!("invalid duration {text:?}: use a number and a unit, such as 30m, 24h or 90d, or 0")
    };
    let unit_at = text.len().checked_sub(1).ok_or_else(explain)?;
    if !text.is_char_boundary(unit_at) {
        return Err(explain());
    }
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| explain())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(explain()),
    };
    let total = number
        .checked_mul(seconds)
        .filter(|total| *total <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("duration {text:?} is longer than 100 years"))?;
    Ok(std::time::Duration::from_secs(total))
}

/// Parses a limit: a whole number, or `none`.
pub fn parse_limit(text: &str) -> Result<Cap, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") || text.eq_ignore_ascii_case("unlimited") {
        return Ok(Cap::Unlimited);
    }
    text.parse::<u64>()
        .map(Cap::Limit)
        .map_err(|_| format!("invalid limit {text:?}: use a whole number such as 1000, or `none`"))
}

/// Checks an allow-list of model ids and `*` patterns: not empty, no whitespace.
pub fn check_models(models: Vec<String>) -> Result<Vec<String>, String> {
    let models: Vec<String> = models
        .into_iter()
        .map(|model| model.trim().to_owned())
        .filter(|model| !model.is_empty())
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
    Ok(models)
}

/// Parses `all` (every model: `None`), or a comma-separated list of model ids and patterns.
pub fn parse_models(text: &str) -> Result<Option<Vec<String>>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    check_models(text.split(',').map(str::to_owned).collect()).map(Some)
}

/// Parses `strict`, `eventual` or `default` (the deployment's mode: `None`).
pub fn parse_enforcement(text: &str) -> Result<Option<EnforcementMode>, String> {
    let text = text.trim().to_ascii_lowercase();
    if text == "default" {
        return Ok(None);
    }
    EnforcementMode::parse(&text).map(Some).ok_or_else(|| {
        format!("invalid enforcement mode {text:?}: use strict, eventual or default")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_limits_durations_models_and_modes_parse_or_explain() {
        assert_eq!(
            parse_date("2023-04-01"),
            Ok(NaiveDate::from_ymd_opt(2023, 4, 1).unwrap())
        );
        assert!(parse_date("2023-13-01").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse_date("04/01/2023").is_err());
        assert_eq!(parse_limit("1000"), Ok(Cap::Limit(1000)));
        assert_eq!(parse_limit("none"), Ok(Cap::Unlimited));
        assert!(parse_limit("-5").unwrap_err().contains("whole number"));
        assert_eq!(
            parse_duration("90d"),
            Ok(std::time::Duration::from_secs(90 * 86_400))
        );
        assert_eq!(parse_duration("0"), Ok(std::time::Duration::ZERO));
        assert_eq!(
            parse_duration("30m"),
            Ok(std::time::Duration::from_secs(1_800))
        );
        for bad in ["", "d", "-5d", "5 days", "5w", "99999999999d", "5é", "é"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_models("all"), Ok(None));
        assert_eq!(
            parse_models(" anthropic.* , amazon.nova-lite-v1:0 "),
            Ok(Some(vec![
                "anthropic.*".into(),
                "amazon.nova-lite-v1:0".into()
            ]))
        );
        assert!(parse_models(",").is_err());
        assert!(check_models(vec!["a b".into()]).is_err());
        assert_eq!(
            parse_enforcement("Strict"),
            Ok(Some(EnforcementMode::Strict))
        );
        assert_eq!(parse_enforcement("default"), Ok(None));
        assert!(
            parse_enforcement("lax")
                .unwrap_err()
                .contains("strict, eventual or default")
        );
    }
}
