//! Admission against the customer's limits.
//!
//! The decision itself is a pure function. The [`AdmissionTally`] supplies the count it
//! decides on: the counter projection (read through a short cache) combined with what
//! this process admitted since, so a single proxy enforces the daily limit exactly even
//! while the metering consumer lags. With several proxies, each adds what the counters
//! already show; the overshoot is bounded by the consumer's lag (eventual mode).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use schemas::Limits;
use schemas::usage_counts::total_counts;
use store::Counters;

/// The outcome of admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admit,
    Reject {
        message: String,
        retry_after_seconds: u64,
    },
}

/// Seconds from `now` until the next UTC midnight, at least 1.
pub fn seconds_until_next_utc_day(now: DateTime<Utc>) -> u64 {
    let tomorrow = now
        .date_naive()
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 0));
    let seconds = tomorrow.map_or(1, |midnight| (midnight - now.naive_utc()).num_seconds());
    u64::try_from(seconds).unwrap_or(1).max(1)
}

/// Decides whether one more request may be admitted given today's admitted count.
pub fn decide(limits: &Limits, admitted_today: u64, now: DateTime<Utc>) -> Admission {
    match limits.daily_request_limit {
        Some(limit) if admitted_today >= limit => {
            let retry_after_seconds = seconds_until_next_utc_day(now);
            Admission::Reject {
                message: format!(
                    "daily request limit of {limit} reached; it resets at 00:00 UTC, in {retry_after_seconds} seconds. Ask your provider to raise the limit if you need more"
                ),
                retry_after_seconds,
            }
        }
        _ => Admission::Admit,
    }
}

#[derive(Debug, Default)]
struct CustomerTally {
    day: Option<NaiveDate>,
    /// Best estimate of requests admitted today, across all proxies.
    admitted: u64,
    /// When the counter projection was last read, and what it said.
    store_read: Option<(Instant, u64)>,
}

/// Per-customer admitted-request counts for the current UTC day.
pub struct AdmissionTally {
    counters: Arc<dyn Counters>,
    cache_ttl: Duration,
    customers: Mutex<HashMap<String, CustomerTally>>,
}

impl std::fmt::Debug for AdmissionTally {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AdmissionTally")
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

impl AdmissionTally {
    /// A tally over the given counter projection.
    pub fn new(counters: Arc<dyn Counters>, cache_ttl: Duration) -> Self {
        Self {
            counters,
            cache_ttl,
            customers: Mutex::new(HashMap::new()),
        }
    }

    fn cached_store_count(&self, customer_id: &str, today: NaiveDate) -> Option<u64> {
        let customers = self.customers.lock().ok()?;
        let tally = customers.get(customer_id)?;
        match (tally.day, tally.store_read) {
            (Some(day), Some((read_at, count)))
                if day == today && read_at.elapsed() < self.cache_ttl =>
            {
                Some(count)
            }
            _ => None,
        }
    }

    async fn store_count(&self, customer_id: &str, today: NaiveDate) -> Option<u64> {
        if let Some(count) = self.cached_store_count(customer_id, today) {
            return Some(count);
        }
        match self.counters.read_daily(customer_id, today, today).await {
            Ok(cells) => Some(total_counts(cells.iter().map(|cell| &cell.counts)).requests),
            Err(error) => {
                tracing::warn!(error = %error, customer_id, "counter read failed; admitting on this proxy's own count");
                None
            }
        }
    }

    /// Decides on one request and, if admitted, counts it.
    pub async fn admit(&self, customer_id: &str, limits: &Limits, now: DateTime<Utc>) -> Admission {
        if limits.daily_request_limit.is_none() {
            return Admission::Admit;
        }
        let today = now.date_naive();
        let store_count = self.store_count(customer_id, today).await;
        let Ok(mut customers) = self.customers.lock() else {
            return Admission::Admit;
        };
        let tally = customers.entry(customer_id.to_owned()).or_default();
        if tally.day != Some(today) {
            *tally = CustomerTally {
                day: Some(today),
                ..CustomerTally::default()
            };
        }
        if let Some(count) = store_count {
            if tally
                .store_read
                .is_none_or(|(_, previous)| previous != count)
            {
                tally.store_read = Some((Instant::now(), count));
            }
            tally.admitted = tally.admitted.max(count);
        }
        let decision = decide(limits, tally.admitted, now);
        if decision == Admission::Admit {
            tally.admitted += 1;
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn limits(daily: Option<u64>) -> Limits {
        Limits {
            daily_request_limit: daily,
            ..Limits::default()
        }
    }

    #[test]
    fn decide_admits_below_the_limit_and_rejects_at_it() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 23, 59, 0).unwrap();
        assert_eq!(decide(&limits(Some(2)), 1, now), Admission::Admit);
        assert_eq!(decide(&limits(None), 1_000_000, now), Admission::Admit);
        match decide(&limits(Some(2)), 2, now) {
            Admission::Reject {
                retry_after_seconds,
                message,
            } => {
                assert_eq!(retry_after_seconds, 60);
                assert!(message.contains("daily request limit of 2"));
            }
            Admission::Admit => panic!("should reject"),
        }
        assert_eq!(
            decide(&limits(Some(0)), 0, now),
            decide(&limits(Some(0)), 5, now)
        );
    }

    #[test]
    fn retry_after_counts_to_the_next_utc_midnight() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(seconds_until_next_utc_day(now), 86_400);
        let late = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(seconds_until_next_utc_day(late), 1);
    }

    #[tokio::test]
    async fn tally_enforces_the_limit_before_counters_catch_up() {
        let store = Arc::new(store::memory::MemoryStore::new());
        let tally = AdmissionTally::new(store, Duration::from_secs(60));
        let now = Utc::now();
        let limits = limits(Some(3));
        let decisions = [
            tally.admit("c", &limits, now).await,
            tally.admit("c", &limits, now).await,
            tally.admit("c", &limits, now).await,
            tally.admit("c", &limits, now).await,
        ];
        assert_eq!(
            decisions[..3],
            [Admission::Admit, Admission::Admit, Admission::Admit]
        );
        assert!(matches!(decisions[3], Admission::Reject { .. }));
        assert_eq!(tally.admit("other", &limits, now).await, Admission::Admit);
    }

    #[tokio::test]
    async fn tally_takes_other_proxies_counts_from_the_counters() {
        use store::{Counters, SourcedEvent};
        let store = Arc::new(store::memory::MemoryStore::new());
        let now = Utc::now();
        let events: Vec<SourcedEvent> = (0..2)
            .map(|index| {
                let mut event = store::contract::event_on(
                    "c",
                    now.date_naive(),
                    "m",
                    schemas::Outcome::Success,
                    1,
                    1,
                );
                event.occurred_at = now;
                SourcedEvent {
                    source: format!("p/{index}"),
                    event,
                }
            })
            .collect();
        store.apply(&events).await.unwrap();
        let tally = AdmissionTally::new(store, Duration::ZERO);
        let limits = limits(Some(3));
        assert_eq!(tally.admit("c", &limits, now).await, Admission::Admit);
        assert!(matches!(
            tally.admit("c", &limits, now).await,
            Admission::Reject { .. }
        ));
    }
}
