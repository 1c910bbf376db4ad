//! Evaluating the alert rules as events are metered, and delivering each alert once.
//!
//! After a batch is counted, the engine looks at every customer in it:
//! - **usage**: their day and month counters (shared by every consumer) against each
//!   request and token limit, and their calls per minute as this consumer saw them against
//!   `requests_per_minute`; 80% and 100% each raise an alert;
//! - **error rate**: the share of errors among admitted calls in each hour the batch
//!   touches, once the hour has enough calls;
//! - **unusual usage**: calls and tokens in each hour the batch touches, by a modified
//!   z-score against the customer's own trailing hours (median and MAD).
//!
//! Each alert is recorded through the `Alerts` port, which admits each (rule, customer,
//! window) once, also across consumers; only the recorder delivers it, to the log and to
//! every configured notifier (webhook, SNS), with retries. A failed delivery is logged and
//! counted, and the alert stays listed by `tollgate alerts`; it never holds metering back.
//!
//! Reading what the rules need can fail; the batch then fails and is applied again, and the
//! evaluation with it. Re-evaluating is harmless: recording is idempotent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemas::UsageEvent;
use schemas::alert::{Alert, RecordedAlert};
use schemas::name::ByAddress;
use schemas::quota::{Level, WindowKind, month_start};
use schemas::usage_counts::{HourlyUsage, hour_id, hour_start};
use store::{Alerts, Counters, Notifier, Registry};

use crate::Result;
use crate::alerts::{
    anomaly_alert, calendar_levels, calls, error_rate_alert, hourly_series, usage_alerts,
};

/// What the anomaly rule measures in an hour's counts.
type Measure = fn(&schemas::UsageCounts) -> u64;

/// The rules' tunables.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// The share of errors among an hour's admitted calls that raises `error_rate` (0 to 1).
    pub error_rate: f64,
    /// Fewest admitted calls in the hour before its error rate is judged.
    pub error_rate_min_calls: u64,
    /// How many trailing hours make a customer's baseline.
    pub anomaly_lookback_hours: u32,
    /// Fewest calls in an hour before it can count as unusual.
    pub anomaly_min_calls: u64,
    /// Fewest tokens in an hour before it can count as unusual.
    pub anomaly_min_tokens: u64,
    /// Attempts per notifier before a delivery is given up.
    pub delivery_attempts: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            error_rate: 0.10,
            error_rate_min_calls: 20,
            anomaly_lookback_hours: 168,
            anomaly_min_calls: 20,
            anomaly_min_tokens: 20_000,
            delivery_attempts: 3,
        }
    }
}

/// Running totals, for metrics and tests.
#[derive(Debug, Default)]
pub struct AlertStats {
    pub raised: AtomicU64,
    pub delivery_failures: AtomicU64,
}

impl AlertStats {
    /// The alert metrics.
    pub fn samples(&self) -> Vec<telemetry::metrics::Sample> {
        vec![
            telemetry::metrics::Sample {
                name: "tollgate_alerts_raised_total",
                help: "Alerts raised (each rule, customer and window once).",
                counter: true,
                value: self.raised.load(Ordering::Relaxed) as f64,
            },
            telemetry::metrics::Sample {
                name: "tollgate_alert_delivery_failures_total",
                help: "Alert deliveries that failed after every retry.",
                counter: true,
                value: self.delivery_failures.load(Ordering::Relaxed) as f64,
            },
        ]
    }
}

/// A customer's trailing hours, read once per hour and reused while that hour lasts.
#[derive(Debug, Clone)]
struct Baseline {
    hour: DateTime<Utc>,
    cells: Vec<HourlyUsage>,
}

/// Evaluates the rules after each batch and delivers new alerts.
pub struct AlertEngine {
    registry: Arc<dyn Registry>,
    counters: Arc<dyn Counters>,
    alerts: Arc<dyn Alerts>,
    notifiers: Vec<Arc<dyn Notifier>>,
    settings: AlertSettings,
    /// Calls per (customer, minute) seen by this consumer, for `requests_per_minute`.
    minutes: Mutex<BTreeMap<(DateTime<Utc>, String), u64>>,
    baselines: Mutex<HashMap<String, Baseline>>,
    /// Customers' limits as last read, and when: re-read after [`LIMITS_CACHE`].
    limits: Mutex<HashMap<String, (std::time::Instant, Option<schemas::Limits>)>>,
    pub stats: Arc<AlertStats>,
}

/// How long a customer's limits are reused before the registry is read again: a limit
/// change reaches the alert rules within this time.
const LIMITS_CACHE: Duration = Duration::from_secs(10);

impl std::fmt::Debug for AlertEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AlertEngine")
            .field("settings", &self.settings)
            .field(
                "notifiers",
                &self
                    .notifiers
                    .iter()
                    .map(|notifier| notifier.describe())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What the engine knows about one customer's events in a batch.
#[derive(Debug, Default)]
struct CustomerBatch {
    /// The latest event per UTC day.
    latest_per_day: BTreeMap<chrono::NaiveDate, DateTime<Utc>>,
    hours: BTreeSet<DateTime<Utc>>,
    latest: Option<DateTime<Utc>>,
}

fn minute_start(instant: DateTime<Utc>) -> DateTime<Utc> {
    WindowKind::Minute.containing(instant).starts_at
}

impl AlertEngine {
    /// An engine over the ports it reads and records through, delivering to `notifiers`
    /// (the log is always one of them).
    pub fn new(
        registry: Arc<dyn Registry>,
        counters: Arc<dyn Counters>,
        alerts: Arc<dyn Alerts>,
        notifiers: Vec<Arc<dyn Notifier>>,
        settings: AlertSettings,
    ) -> Self {
        Self {
            registry,
            counters,
            alerts,
            notifiers,
            settings,
            minutes: Mutex::new(BTreeMap::new()),
            baselines: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            stats: Arc::new(AlertStats::default()),
        }
    }

    /// Where alerts go, for the start-up message.
    pub fn destinations(&self) -> Vec<String> {
        self.notifiers
            .iter()
            .map(|notifier| notifier.describe())
            .collect()
    }

    /// Evaluates the rules for the customers of `events` (the events a batch counted) and
    /// delivers the alerts raised for the first time. Returns those alerts.
    pub async fn evaluate(&self, events: &[&UsageEvent]) -> Result<Vec<Alert>> {
        let mut customers: BTreeMap<&str, CustomerBatch> = BTreeMap::new();
        for event in events {
            let batch = customers.entry(event.customer_id.as_str()).or_default();
            let latest = batch.latest_per_day.entry(event.day()).or_default();
            *latest = (*latest).max(event.occurred_at);
            batch.hours.insert(hour_start(event.occurred_at));
            batch.latest = batch.latest.max(Some(event.occurred_at));
        }
        self.tally_minutes(events);
        let mut candidates = Vec::new();
        for (customer_id, batch) in &customers {
            candidates.extend(self.usage_candidates(customer_id, batch).await?);
            candidates.extend(self.hourly_candidates(customer_id, batch).await?);
        }
        let mut raised = Vec::new();
        for alert in candidates {
            let now = Utc::now();
            if self.alerts.record(&alert, now).await? {
                self.stats.raised.fetch_add(1, Ordering::Relaxed);
                self.deliver(&RecordedAlert {
                    raised_at: now,
                    alert: alert.clone(),
                })
                .await;
                raised.push(alert);
            }
        }
        Ok(raised)
    }

    fn tally_minutes(&self, events: &[&UsageEvent]) {
        // Summed first under the customer's name by address and the minute's number (no
        // copy of the name, no calendar, per event), then into the kept minutes per cell.
        const MINUTE_MILLIS: i64 = 60_000;
        let mut cells: HashMap<(ByAddress<'_>, i64), u64, foldhash::fast::RandomState> =
            HashMap::default();
        for event in events {
            let minute = event
                .occurred_at
                .timestamp_millis()
                .div_euclid(MINUTE_MILLIS);
            *cells
                .entry((ByAddress(&event.customer_id), minute))
                .or_default() += calls(&schemas::UsageCounts::of_event(event));
        }
        let Ok(mut minutes) = self.minutes.lock() else {
            return;
        };
        for ((customer_id, minute), count) in cells {
            let minute = DateTime::from_timestamp_millis(minute.saturating_mul(MINUTE_MILLIS))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            *minutes
                .entry((minute, customer_id.0.as_str().to_owned()))
                .or_default() += count;
        }
        // Keep a few minutes: late events of an older minute no longer matter.
        if let Some(newest) = minutes.keys().next_back().map(|(minute, _)| *minute) {
            let oldest_kept = newest - chrono::Duration::minutes(5);
            minutes.retain(|(minute, _), _| *minute >= oldest_kept);
        }
    }

    fn minute_calls(&self, customer_id: &str, at: DateTime<Utc>) -> u64 {
        self.minutes
            .lock()
            .ok()
            .and_then(|minutes| {
                minutes
                    .get(&(minute_start(at), customer_id.to_owned()))
                    .copied()
            })
            .unwrap_or(0)
    }

    async fn usage_candidates(
        &self,
        customer_id: &str,
        batch: &CustomerBatch,
    ) -> Result<Vec<Alert>> {
        let Some(limits) = self.limits_of(customer_id).await? else {
            return Ok(Vec::new());
        };
        let limits = &limits;
        let has_caps = [
            limits.daily_request_limit,
            limits.monthly_request_limit,
            limits.daily_token_limit,
            limits.monthly_token_limit,
            limits.requests_per_minute,
        ]
        .iter()
        .any(|cap| cap.is_some_and(|cap| cap > 0));
        let (Some(first_day), Some(last_day)) = (
            batch.latest_per_day.keys().next(),
            batch.latest_per_day.keys().next_back(),
        ) else {
            return Ok(Vec::new());
        };
        if !has_caps {
            return Ok(Vec::new());
        }
        let cells = self
            .counters
            .read_daily(customer_id, month_start(*first_day), *last_day)
            .await?;
        let mut alerts = Vec::new();
        for (day, latest) in &batch.latest_per_day {
            let (day_level, month_level) = calendar_levels(&cells, *day);
            let minute = Level {
                requests: self.minute_calls(customer_id, *latest),
                tokens: 0,
            };
            alerts.extend(usage_alerts(
                customer_id,
                limits,
                *latest,
                |window| match window {
                    WindowKind::Minute => minute,
                    WindowKind::Day => day_level,
                    WindowKind::Month => month_level,
                },
            ));
        }
        Ok(alerts)
    }

    /// A customer's limits (`None` for an unknown customer), cached for [`LIMITS_CACHE`].
    async fn limits_of(&self, customer_id: &str) -> Result<Option<schemas::Limits>> {
        let cached = self.limits.lock().ok().and_then(|cache| {
            cache
                .get(customer_id)
                .filter(|(read_at, _)| read_at.elapsed() < LIMITS_CACHE)
                .map(|(_, limits)| limits.clone())
        });
        if let Some(limits) = cached {
            return Ok(limits);
        }
        let limits = self
            .registry
            .customer(customer_id)
            .await?
            .map(|customer| customer.limits);
        if let Ok(mut cache) = self.limits.lock() {
            cache.insert(
                customer_id.to_owned(),
                (std::time::Instant::now(), limits.clone()),
            );
        }
        Ok(limits)
    }

    /// The customer's hourly cells from the look-back before `hour` through `hour`; past
    /// hours come from the cache while `hour` is the same.
    async fn hourly_cells(
        &self,
        customer_id: &str,
        hour: DateTime<Utc>,
    ) -> Result<Vec<HourlyUsage>> {
        let cached = self
            .baselines
            .lock()
            .ok()
            .and_then(|baselines| baselines.get(customer_id).cloned())
            .filter(|baseline| baseline.hour == hour);
        if let Some(baseline) = cached {
            let mut cells = baseline.cells;
            cells.extend(self.counters.read_hourly(customer_id, hour, hour).await?);
            return Ok(cells);
        }
        let lookback = chrono::Duration::hours(i64::from(self.settings.anomaly_lookback_hours));
        let mut cells = self
            .counters
            .read_hourly(customer_id, hour - lookback, hour)
            .await?;
        let past: Vec<HourlyUsage> = cells
            .iter()
            .filter(|cell| cell.hour < hour)
            .cloned()
            .collect();
        if let Ok(mut baselines) = self.baselines.lock() {
            baselines.insert(customer_id.to_owned(), Baseline { hour, cells: past });
        }
        cells.sort_by_key(|cell| cell.hour);
        Ok(cells)
    }

    async fn hourly_candidates(
        &self,
        customer_id: &str,
        batch: &CustomerBatch,
    ) -> Result<Vec<Alert>> {
        let mut alerts = Vec::new();
        for hour in &batch.hours {
            let cells = self.hourly_cells(customer_id, *hour).await?;
            let current = cells
                .iter()
                .find(|cell| cell.hour == *hour)
                .map(|cell| cell.counts)
                .unwrap_or_default();
            let id = hour_id(*hour);
            alerts.extend(error_rate_alert(
                customer_id,
                &format!("hour:{id}"),
                current.requests,
                current.errors,
                self.settings.error_rate_min_calls,
                self.settings.error_rate,
            ));
            let judged: [(&str, Measure, u64); 2] = [
                ("calls", calls, self.settings.anomaly_min_calls),
                (
                    "tokens",
                    schemas::UsageCounts::total_tokens,
                    self.settings.anomaly_min_tokens,
                ),
            ];
            for (what, measure, minimum) in judged {
                let history = hourly_series(&cells, *hour, measure);
                alerts.extend(anomaly_alert(
                    customer_id,
                    &format!("{what}:hour:{id}"),
                    what,
                    &history,
                    measure(&current) as f64,
                    minimum as f64,
                ));
            }
        }
        Ok(alerts)
    }

    async fn deliver(&self, alert: &RecordedAlert) {
        for notifier in &self.notifiers {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match notifier.notify(alert).await {
                    Ok(()) => break,
                    Err(error) if attempt < self.settings.delivery_attempts.max(1) => {
                        tracing::warn!(destination = %notifier.describe(), attempt, error = %error, "alert delivery failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500) * attempt).await;
                    }
                    Err(error) => {
                        self.stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            destination = %notifier.describe(),
                            alert_key = %alert.alert.key(),
                            error = %error,
                            "alert not delivered after {attempt} attempts; it stays listed by `tollgate alerts`"
                        );
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "alert_engine_tests.rs"]
mod tests;
