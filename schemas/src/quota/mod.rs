//! Limits over UTC calendar windows, and the admission decision, as pure functions.
//!
//! A customer's [`Limits`] name up to five caps: requests per minute, per day and per month,
//! and token budgets (input plus output) per day and per month. Each cap lives in one
//! window ([`WindowKind`]): the UTC minute, day or month that contains the request. The
//! proxy supplies the levels it knows for each window (from the counters in eventual mode,
//! from an atomic reservation in strict mode) and [`evaluate`] decides.

mod levels;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::Limits;
use crate::digits::push_zero_padded;

/// The calendar window a cap applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WindowKind {
    Minute,
    Day,
    Month,
}

/// One UTC window containing an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub kind: WindowKind,
    /// Stable id: `minute:2026-11-29T02:43`, `day:2026-11-29` or `month:2026-11`.
    pub id: String,
    pub starts_at: DateTime<Utc>,
    pub resets_at: DateTime<Utc>,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

fn first_of_next_month(day: NaiveDate) -> NaiveDate {
    let (year, month) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MAX)
}

/// A window id, `{prefix}:YYYY-MM[-DD[THH:MM]]`, written digit by digit: admission asks for
/// the windows of every capped call, and chrono's formatting parses its pattern each time.
/// Years outside 0 to 9999 (never a real call's) use chrono's own form.
fn window_id(prefix: &str, day: NaiveDate, time: Option<(u32, u32)>, with_day: bool) -> String {
    let Ok(year) = u32::try_from(day.year()) else {
        return chrono_window_id(prefix, day, time, with_day);
    };
    if year > 9999 {
        return chrono_window_id(prefix, day, time, with_day);
    }
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push(':');
    push_zero_padded(&mut id, year, 4);
    id.push('-');
    push_zero_padded(&mut id, day.month(), 2);
    if with_day {
        id.push('-');
        push_zero_padded(&mut id, day.day(), 2);
    }
    if let Some((hour, minute)) = time {
        id.push('T');
        push_zero_padded(&mut id, hour, 2);
        id.push(':');
        push_zero_padded(&mut id, minute, 2);
    }
    id
}

fn chrono_window_id(
    prefix: &str,
    day: NaiveDate,
    time: Option<(u32, u32)>,
    with_day: bool,
) -> String {
    match (time, with_day) {
        (Some((hour, minute)), _) => format!("{prefix}:{}T{hour:02}:{minute:02}", day),
        (None, true) => format!("{prefix}:{day}"),
        (None, false) => format!("{prefix}:{}", day.format("%Y-%m")),
    }
}

/// The first day of the month containing `day`.
pub fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

impl WindowKind {
    /// The window of this kind containing `now`.
    pub fn containing(self, now: DateTime<Utc>) -> Window {
        let day = now.date_naive();
        match self {
            Self::Minute => {
                let starts_at = midnight(day)
                    + Duration::hours(i64::from(now.hour()))
                    + Duration::minutes(i64::from(now.minute()));
                Window {
                    kind: self,
                    id: window_id("minute", day, Some((now.hour(), now.minute())), true),
                    starts_at,
                    resets_at: starts_at + Duration::minutes(1),
                }
            }
            Self::Day => Window {
                kind: self,
                id: window_id("day", day, None, true),
                starts_at: midnight(day),
                resets_at: midnight(day.succ_opt().unwrap_or(day)),
            },
            Self::Month => {
                let first = month_start(day);
                Window {
                    kind: self,
                    id: window_id("month", first, None, false),
                    starts_at: midnight(first),
                    resets_at: midnight(first_of_next_month(day)),
                }
            }
        }
    }
}

/// What a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Requests,
    Tokens,
}

/// One of the five caps a customer can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    RequestsPerMinute,
    DailyRequests,
    MonthlyRequests,
    DailyTokens,
    MonthlyTokens,
}

impl LimitKind {
    /// Every kind, shortest window first.
    pub const ALL: [Self; 5] = [
        Self::RequestsPerMinute,
        Self::DailyRequests,
        Self::DailyTokens,
        Self::MonthlyRequests,
        Self::MonthlyTokens,
    ];

    /// The name used in errors, JSON and `--clear`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::DailyRequests => "daily_requests",
            Self::MonthlyRequests => "monthly_requests",
            Self::DailyTokens => "daily_tokens",
            Self::MonthlyTokens => "monthly_tokens",
        }
    }

    /// A phrase for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests-per-minute limit",
            Self::DailyRequests => "daily request limit",
            Self::MonthlyRequests => "monthly request limit",
            Self::DailyTokens => "daily token budget",
            Self::MonthlyTokens => "monthly token budget",
        }
    }

    /// The window the cap applies to.
    pub fn window(self) -> WindowKind {
        match self {
            Self::RequestsPerMinute => WindowKind::Minute,
            Self::DailyRequests | Self::DailyTokens => WindowKind::Day,
            Self::MonthlyRequests | Self::MonthlyTokens => WindowKind::Month,
        }
    }

    /// What the cap counts.
    pub fn unit(self) -> Unit {
        match self {
            Self::DailyTokens | Self::MonthlyTokens => Unit::Tokens,
            _ => Unit::Requests,
        }
    }

    /// The cap in `limits`, if set.
    pub fn cap(self, limits: &Limits) -> Option<u64> {
        match self {
            Self::RequestsPerMinute => limits.requests_per_minute,
            Self::DailyRequests => limits.daily_request_limit,
            Self::MonthlyRequests => limits.monthly_request_limit,
            Self::DailyTokens => limits.daily_token_limit,
            Self::MonthlyTokens => limits.monthly_token_limit,
        }
    }

    /// Sets (or with `None`, removes) the cap in `limits`.
    pub fn set_cap(self, limits: &mut Limits, cap: Option<u64>) {
        let field = match self {
            Self::RequestsPerMinute => &mut limits.requests_per_minute,
            Self::DailyRequests => &mut limits.daily_request_limit,
            Self::MonthlyRequests => &mut limits.monthly_request_limit,
            Self::DailyTokens => &mut limits.daily_token_limit,
            Self::MonthlyTokens => &mut limits.monthly_token_limit,
        };
        *field = cap;
    }
}

/// What a window holds so far: admitted requests and tokens (input plus output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub requests: u64,
    pub tokens: u64,
}

/// What one request costs: one request, and in strict mode the tokens it reserves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub requests: u64,
    pub tokens: u64,
}

/// The state of the tightest limit, for `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub kind: LimitKind,
    pub limit: u64,
    pub remaining: u64,
    pub reset_seconds: u64,
}

/// A limit that refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    pub kind: LimitKind,
    pub limit: u64,
    /// What the window held when the request was refused.
    pub used: u64,
    /// What the request would have added (tokens reserved in strict mode).
    pub requested: u64,
    pub resets_at: DateTime<Utc>,
    pub retry_after_seconds: u64,
}

impl LimitHit {
    /// The message a refused client reads: which limit, when it resets, and what to do.
    pub fn message(&self) -> String {
        let unit = match self.kind.unit() {
            Unit::Requests => "requests",
            Unit::Tokens => "tokens",
        };
        let reached = if self.kind.unit() == Unit::Tokens && self.used < self.limit {
            format!(
                "{} of {} {unit} used or reserved, and this request reserves {}",
                self.used, self.limit, self.requested
            )
        } else {
            format!(
                "{} of {} {unit} used",
                self.used.min(self.limit),
                self.limit
            )
        };
        format!(
            "{} reached ({reached}); it resets at {}, in {} seconds. Ask your provider to raise the limit if you need more",
            self.kind.describe(),
            self.resets_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.retry_after_seconds
        )
    }
}

/// The admission decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; the tightest limit after counting this request, if any limit is set.
    Admit(Option<RateLimitStatus>),
    Reject(LimitHit),
}

/// Whole seconds from `now` until `at`, at least 1.
pub fn seconds_until(now: DateTime<Utc>, at: DateTime<Utc>) -> u64 {
    let millis = (at - now).num_milliseconds().max(0);
    u64::try_from((millis + 999) / 1000).unwrap_or(1).max(1)
}

/// Whether `cost` fits a cap given the window's level. A token budget admits while some
/// budget is left (eventual, cost 0) or while the reservation fits (strict).
pub fn fits(kind: LimitKind, cap: u64, level: Level, cost: Cost) -> bool {
    match kind.unit() {
        Unit::Requests => level.requests.saturating_add(cost.requests) <= cap,
        Unit::Tokens => level.tokens.saturating_add(cost.tokens.max(1)) <= cap,
    }
}

fn used(kind: LimitKind, level: Level) -> u64 {
    match kind.unit() {
        Unit::Requests => level.requests,
        Unit::Tokens => level.tokens,
    }
}

fn requested(kind: LimitKind, cost: Cost) -> u64 {
    match kind.unit() {
        Unit::Requests => cost.requests,
        Unit::Tokens => cost.tokens,
    }
}

/// The tightest limit once `cost` is counted: the smallest share of its cap remaining,
/// the soonest reset on a tie. `levels` gives each window's level before the request.
pub fn tightest(
    limits: &Limits,
    now: DateTime<Utc>,
    levels: impl Fn(WindowKind) -> Level,
    cost: Cost,
) -> Option<RateLimitStatus> {
    let mut best: Option<RateLimitStatus> = None;
    for kind in LimitKind::ALL {
        let Some(cap) = kind.cap(limits) else {
            continue;
        };
        let after = used(kind, levels(kind.window())).saturating_add(requested(kind, cost));
        let status = RateLimitStatus {
            kind,
            limit: cap,
            remaining: cap.saturating_sub(after),
            reset_seconds: seconds_until(now, kind.window().containing(now).resets_at),
        };
        let tighter = best.is_none_or(|current| {
            let left = u128::from(status.remaining) * u128::from(current.limit.max(1));
            let right = u128::from(current.remaining) * u128::from(status.limit.max(1));
            left < right || (left == right && status.reset_seconds < current.reset_seconds)
        });
        if tighter {
            best = Some(status);
        }
    }
    best
}

/// Decides one request. `levels` gives what each window holds before this request. When
/// several caps refuse, the one that resets last is named: retrying earlier cannot succeed.
pub fn evaluate(
    limits: &Limits,
    now: DateTime<Utc>,
    levels: impl Fn(WindowKind) -> Level,
    cost: Cost,
) -> Decision {
    let mut refusal: Option<LimitHit> = None;
    for kind in LimitKind::ALL {
        let Some(cap) = kind.cap(limits) else {
            continue;
        };
        let level = levels(kind.window());
        if fits(kind, cap, level, cost) {
            continue;
        }
        let resets_at = kind.window().containing(now).resets_at;
        if refusal
            .as_ref()
            .is_none_or(|current| resets_at > current.resets_at)
        {
            refusal = Some(LimitHit {
                kind,
                limit: cap,
                used: used(kind, level),
                requested: requested(kind, cost),
                resets_at,
                retry_after_seconds: seconds_until(now, resets_at),
            });
        }
    }
    match refusal {
        Some(hit) => Decision::Reject(hit),
        None => Decision::Admit(tightest(limits, now, levels, cost)),
    }
}

/// What each window holds: the minute's, the day's and the month's levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowLevels {
    pub minute: Level,
    pub day: Level,
    pub month: Level,
}

impl WindowLevels {
    /// The level of one window.
    pub fn of(&self, kind: WindowKind) -> Level {
        match kind {
            WindowKind::Minute => self.minute,
            WindowKind::Day => self.day,
            WindowKind::Month => self.month,
        }
    }
}

/// One limit as it stands, for a customer reading its own usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitStatus {
    /// `daily_requests`, `monthly_tokens`, … (as a 429's `limit`).
    pub limit: &'static str,
    pub limit_value: u64,
    pub used: u64,
    pub remaining: u64,
    pub resets_at: DateTime<Utc>,
}

/// Every cap set, in [`LimitKind::ALL`]'s order, with what its window holds.
pub fn statuses(limits: &Limits, now: DateTime<Utc>, levels: &WindowLevels) -> Vec<LimitStatus> {
    LimitKind::ALL
        .iter()
        .filter_map(|&kind| {
            let cap = kind.cap(limits)?;
            let used = used(kind, levels.of(kind.window()));
            Some(LimitStatus {
                limit: kind.as_str(),
                limit_value: cap,
                used,
                remaining: cap.saturating_sub(used),
                resets_at: kind.window().containing(now).resets_at,
            })
        })
        .collect()
}

/// Whether any request or token cap is set.
pub fn has_caps(limits: &Limits) -> bool {
    LimitKind::ALL.iter().any(|kind| kind.cap(limits).is_some())
}

/// Whether any token budget is set.
pub fn has_token_caps(limits: &Limits) -> bool {
    LimitKind::DailyTokens.cap(limits).is_some() || LimitKind::MonthlyTokens.cap(limits).is_some()
}

/// The output-token ceiling a Bedrock request body asks for, in any of the model
/// families' spellings: `max_tokens` (Anthropic Messages, Mistral, Cohere, AI21),
/// `max_tokens_to_sample` (Anthropic Text Completions), `inferenceConfig.maxTokens`
/// (Converse, Amazon Nova), `max_gen_len` (Meta Llama), and
/// `textGenerationConfig.maxTokenCount` (Amazon Titan).
pub fn requested_max_tokens(body: &serde_json::Value) -> Option<u64> {
    let direct = ["max_tokens", "max_tokens_to_sample", "max_gen_len"]
        .iter()
        .find_map(|name| body.get(*name).and_then(serde_json::Value::as_u64));
    direct
        .or_else(|| {
            body.get("inferenceConfig")
                .and_then(|config| config.get("maxTokens"))
                .and_then(serde_json::Value::as_u64)
        })
        .or_else(|| {
            body.get("textGenerationConfig")
                .and_then(|config| config.get("maxTokenCount"))
                .and_then(serde_json::Value::as_u64)
        })
}

/// Bytes of request body counted as one input token when estimating a reservation. Three
/// bytes per token over-estimates most prompts (English averages about four characters per
/// token, and the JSON envelope adds bytes that are not tokens), so a strict budget
/// reserves at least what the call will use in all but unusual prompts.
pub const BYTES_PER_ESTIMATED_INPUT_TOKEN: u64 = 3;

/// Tokens a strict token budget reserves for one call: the output ceiling the body asks
/// for (or `default_output_tokens` when it names none) plus an input estimate from the
/// body's size.
pub fn token_reservation(
    body_bytes: u64,
    max_tokens: Option<u64>,
    default_output_tokens: u64,
) -> u64 {
    let input_estimate = body_bytes.div_ceil(BYTES_PER_ESTIMATED_INPUT_TOKEN);
    max_tokens
        .unwrap_or(default_output_tokens)
        .saturating_add(input_estimate)
        .max(1)
}

#[cfg(test)]
mod tests;
