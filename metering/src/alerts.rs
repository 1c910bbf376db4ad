//! Alert rules, as pure functions over what the consumer knows after a batch: excessive
//! usage against each limit, a high error rate, and usage far outside a customer's own
//! trailing baseline. Each alert has a key (rule, customer, window); delivering each key
//! once is the caller's job (issue 8 wires delivery: webhook, SNS, log).

use chrono::{DateTime, NaiveDate, Utc};
use schemas::quota::{Level, LimitKind, Unit, WindowKind, month_start};
use schemas::usage_counts::{hour_id, hour_start};
use schemas::{DailyUsage, HourlyUsage, Limits, UsageCounts};

/// The share of a limit at which a warning is raised, and the full limit.
pub const USAGE_THRESHOLDS: [u8; 2] = [80, 100];
/// The modified z-score above which usage counts as unusual (Iglewicz and Hoaglin).
pub const ANOMALY_SCORE: f64 = 3.5;
/// Fewest trailing points before the anomaly rule judges anything.
pub const ANOMALY_MIN_HISTORY: usize = 12;

pub use schemas::alert::Alert;

/// Usage alerts: for each limit, 80% and 100% of it reached in its current window (for
/// `requests_per_minute`, in any minute of the current hour).
pub fn usage_alerts(
    customer_id: &str,
    limits: &Limits,
    now: DateTime<Utc>,
    levels: impl Fn(WindowKind) -> Level,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for kind in LimitKind::ALL {
        let Some(cap) = kind.cap(limits).filter(|cap| *cap > 0) else {
            continue;
        };
        let level = levels(kind.window());
        let used = match kind.unit() {
            Unit::Requests => level.requests,
            Unit::Tokens => level.tokens,
        };
        for threshold in USAGE_THRESHOLDS {
            if u128::from(used) * 100 >= u128::from(cap) * u128::from(threshold) {
                // A per-minute rate is alerted on at most once an hour per threshold.
                let window = match kind.window() {
                    WindowKind::Minute => format!("hour:{}", hour_id(hour_start(now))),
                    window => window.containing(now).id,
                };
                alerts.push(Alert {
                    rule: format!("usage_{threshold}"),
                    customer_id: customer_id.to_owned(),
                    window: format!("{}:{window}", kind.as_str()),
                    message: format!(
                        "{customer_id} has used {used} of its {} of {cap} ({threshold}% reached)",
                        kind.describe()
                    ),
                    value: used as f64,
                    threshold: cap as f64 * f64::from(threshold) / 100.0,
                });
            }
        }
    }
    alerts
}

/// A high error rate: at least `min_calls` admitted calls in the window and a share of
/// errors at or above `threshold` (0 to 1).
pub fn error_rate_alert(
    customer_id: &str,
    window: &str,
    admitted: u64,
    errors: u64,
    min_calls: u64,
    threshold: f64,
) -> Option<Alert> {
    if admitted < min_calls.max(1) {
        return None;
    }
    let rate = errors as f64 / admitted as f64;
    (rate >= threshold).then(|| Alert {
        rule: "error_rate".into(),
        customer_id: customer_id.to_owned(),
        window: window.to_owned(),
        message: format!(
            "{customer_id}: {errors} of {admitted} calls failed ({:.1}%, threshold {:.1}%)",
            rate * 100.0,
            threshold * 100.0
        ),
        value: rate,
        threshold,
    })
}

/// The median of some values (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        length if length % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// The modified z-score of `value` against `history`: 0.6745 × (value − median) / MAD,
/// with the median absolute deviation floored at 1 so a perfectly flat history still
/// scores. Robust: a few spikes in the history barely move the median or the MAD, unlike
/// a mean and standard deviation. `None` with too little history.
pub fn modified_z_score(history: &[f64], value: f64) -> Option<f64> {
    if history.len() < ANOMALY_MIN_HISTORY {
        return None;
    }
    let center = median(history)?;
    let deviations: Vec<f64> = history.iter().map(|point| (point - center).abs()).collect();
    let mad = median(&deviations)?.max(1.0);
    Some(0.6745 * (value - center) / mad)
}

/// Unusual usage: this hour's count far above the customer's own trailing hours, and at
/// least `min_value` (a burst of a few calls from a customer who is usually idle is not
/// worth waking anyone). Only spikes are judged: the hour is still filling up while events
/// arrive, so a low count says nothing yet.
pub fn anomaly_alert(
    customer_id: &str,
    window: &str,
    what: &str,
    history: &[f64],
    value: f64,
    min_value: f64,
) -> Option<Alert> {
    if value < min_value {
        return None;
    }
    let score = modified_z_score(history, value)?;
    (score > ANOMALY_SCORE).then(|| Alert {
        rule: "unusual_usage".into(),
        customer_id: customer_id.to_owned(),
        window: window.to_owned(),
        message: format!(
            "{customer_id}: {value} {what} this hour against a usual {} (modified z-score {score:.1})",
            median(history).unwrap_or_default()
        ),
        value: score,
        threshold: ANOMALY_SCORE,
    })
}

/// A customer's usage in the day window and the month window containing `day`, from their
/// daily cells (which must cover the month up to `day`).
pub fn calendar_levels(cells: &[DailyUsage], day: NaiveDate) -> (Level, Level) {
    let first = month_start(day);
    let mut day_level = Level::default();
    let mut month_level = Level::default();
    for cell in cells
        .iter()
        .filter(|cell| cell.day >= first && cell.day <= day)
    {
        let add = |level: &mut Level| {
            level.requests = level.requests.saturating_add(cell.counts.requests);
            level.tokens = level.tokens.saturating_add(cell.counts.total_tokens());
        };
        add(&mut month_level);
        if cell.day == day {
            add(&mut day_level);
        }
    }
    (day_level, month_level)
}

/// The trailing series for the anomaly rule: one value per hour from the customer's first
/// active hour in the cells (or `from`, if later) up to the hour before `hour`, quiet hours
/// as 0. A customer younger than the look-back gets a shorter series, not a run of zeros
/// from before they existed.
pub fn hourly_series(
    cells: &[HourlyUsage],
    hour: DateTime<Utc>,
    measure: impl Fn(&UsageCounts) -> u64,
) -> Vec<f64> {
    let past: Vec<&HourlyUsage> = cells.iter().filter(|cell| cell.hour < hour).collect();
    let Some(first) = past.iter().map(|cell| cell.hour).min() else {
        return Vec::new();
    };
    let length = usize::try_from((hour - first).num_hours()).unwrap_or(0);
    let mut series = vec![0.0; length];
    for cell in past {
        if let Ok(index) = usize::try_from((cell.hour - first).num_hours())
            && let Some(slot) = series.get_mut(index)
        {
            *slot += measure(&cell.counts) as f64;
        }
    }
    series
}

/// Calls made in an hour: admitted and refused.
pub fn calls(counts: &UsageCounts) -> u64 {
    counts.requests.saturating_add(counts.rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn usage_alerts_fire_at_80_and_100_percent_of_each_limit() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();
        let limits = Limits {
            daily_request_limit: Some(100),
            monthly_token_limit: Some(10_000),
            ..Limits::default()
        };
        let at = |requests, tokens| {
            usage_alerts("c", &limits, now, |_| Level { requests, tokens })
                .into_iter()
                .map(|alert| alert.key())
                .collect::<Vec<_>>()
        };
        assert!(at(79, 7_999).is_empty(), "quiet below 80%");
        assert_eq!(at(80, 0), vec!["usage_80|c|daily_requests:day:2026-11-29"]);
        assert_eq!(
            at(100, 8_000),
            vec![
                "usage_80|c|daily_requests:day:2026-11-29",
                "usage_100|c|daily_requests:day:2026-11-29",
                "usage_80|c|monthly_tokens:month:2026-11",
            ]
        );
        assert!(usage_alerts("c", &Limits::default(), now, |_| Level::default()).is_empty());
    }

    #[test]
    fn the_error_rate_needs_volume_and_a_high_share() {
        assert!(
            error_rate_alert("c", "hour:x", 10, 9, 20, 0.2).is_none(),
            "too few calls"
        );
        assert!(error_rate_alert("c", "hour:x", 100, 19, 20, 0.2).is_none());
        let alert = error_rate_alert("c", "hour:x", 100, 20, 20, 0.2).unwrap();
        assert_eq!(alert.key(), "error_rate|c|hour:x");
    }

    #[test]
    fn unusual_usage_is_judged_against_a_robust_baseline() {
        // A steady customer: 95–105 calls an hour, with two old spikes that a mean and a
        // standard deviation would be skewed by.
        let mut history: Vec<f64> = (0..22).map(|hour| 95.0 + f64::from(hour % 11)).collect();
        history.extend([900.0, 1_000.0]);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert!(
            anomaly_alert("c", "hour:x", "requests", &history, 110.0, 0.0).is_none(),
            "normal"
        );
        let spike = anomaly_alert("c", "hour:x", "requests", &history, 400.0, 0.0).unwrap();
        assert!(spike.value > ANOMALY_SCORE, "{}", spike.message);
        assert!(
            anomaly_alert("c", "hour:x", "requests", &history, 400.0, 500.0).is_none(),
            "below the minimum worth judging"
        );
        assert!(
            anomaly_alert("c", "hour:x", "requests", &history, 0.0, 0.0).is_none(),
            "a quiet (or just started) hour is not judged"
        );
        assert!(
            anomaly_alert("c", "hour:x", "requests", &history[..5], 10_000.0, 0.0).is_none(),
            "too little history"
        );
        // A flat history still scores (the MAD is floored at 1).
        let flat = vec![50.0; 24];
        assert!(anomaly_alert("c", "hour:x", "requests", &flat, 51.0, 0.0).is_none());
        assert!(anomaly_alert("c", "hour:x", "requests", &flat, 60.0, 0.0).is_some());
    }

    #[test]
    fn calendar_levels_sum_the_day_and_the_month_to_date() {
        let cell = |day: u32, requests, tokens| DailyUsage {
            day: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            model_id: "m".into(),
            counts: UsageCounts {
                requests,
                input_tokens: tokens,
                output_tokens: 1,
                ..UsageCounts::default()
            },
        };
        let cells = [
            cell(1, 5, 9),
            cell(29, 2, 3),
            cell(29, 1, 0),
            cell(30, 7, 0),
        ];
        let (day, month) = calendar_levels(&cells, NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert_eq!((day.requests, day.tokens), (3, 5));
        assert_eq!(
            (month.requests, month.tokens),
            (8, 15),
            "later days are not counted"
        );
    }

    #[test]
    fn the_hourly_series_starts_at_the_first_active_hour_and_fills_quiet_hours() {
        let hour = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();
        let cell = |hours_ago: i64, requests| HourlyUsage {
            hour: hour - chrono::Duration::hours(hours_ago),
            counts: UsageCounts {
                requests,
                rejected: 1,
                ..UsageCounts::default()
            },
        };
        let cells = [cell(4, 10), cell(2, 20), cell(0, 99)];
        assert_eq!(
            hourly_series(&cells, hour, calls),
            vec![11.0, 0.0, 21.0, 0.0],
            "four past hours, the current one left out"
        );
        assert!(hourly_series(&[cell(0, 5)], hour, calls).is_empty());
    }
}
