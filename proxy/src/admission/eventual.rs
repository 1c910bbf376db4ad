//! Eventual enforcement: decide on the counter projection (read through a short cache)
//! merged with what this process admitted and settled since, plus a per-process minute
//! count. No store write on the request path, and no counter read either once a customer
//! has one: an expired reading is refreshed in the background (one read in flight per
//! customer) while calls decide on it. Only a customer's first calls (after the proxy
//! starts, or a new day) wait, for the one first read and at most `first_read_wait`: a call
//! that arrives while it is in flight waits for it rather than decide on a count of zero.
//! One proxy enforces exactly; several proxies can overshoot by what the consumer has not
//! yet counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use schemas::Limits;
use schemas::quota::{
    Cost, Decision, Level, LimitKind, WindowKind, WindowLevels, evaluate, month_start,
};
use store::Counters;
use tokio::sync::watch;

use super::{Admission, Grant};

#[derive(Debug, Default)]
pub(super) struct CustomerTally {
    day: Option<NaiveDate>,
    /// Best estimates, across all proxies, of today's and this month's levels.
    today: Level,
    month: Level,
    /// This process's requests in the current minute.
    minute: Option<(DateTime<Utc>, u64)>,
    /// When the counter projection was last read, and what it said (today, month).
    pub(super) store_read: Option<(Instant, Level, Level)>,
}

impl CustomerTally {
    fn roll_to(&mut self, today: NaiveDate) {
        match self.day {
            Some(day) if day == today => {}
            Some(day) if month_start(day) == month_start(today) => {
                self.day = Some(today);
                self.today = Level::default();
                self.store_read = None;
            }
            _ => {
                *self = Self {
                    day: Some(today),
                    minute: self.minute,
                    ..Self::default()
                };
            }
        }
    }

    fn minute_count(&self, minute: DateTime<Utc>) -> u64 {
        match self.minute {
            Some((at, count)) if at == minute => count,
            _ => 0,
        }
    }

    fn merge_store(&mut self, today: Level, month: Level) {
        self.today.requests = self.today.requests.max(today.requests);
        self.today.tokens = self.today.tokens.max(today.tokens);
        self.month.requests = self.month.requests.max(month.requests);
        self.month.tokens = self.month.tokens.max(month.tokens);
    }
}

/// Reads a customer's counters from `from` to `today` and records the reading in their
/// tally: today's and the range's levels, or `None` (logged) when the read fails.
async fn read_levels(
    counters: Arc<dyn Counters>,
    customers: Arc<Mutex<HashMap<String, CustomerTally>>>,
    customer_id: String,
    from: NaiveDate,
    today: NaiveDate,
) -> Option<(Level, Level)> {
    match counters.read_daily(&customer_id, from, today).await {
        Ok(cells) => {
            let (day, month) = (
                Level::of_days(&cells, today, today),
                Level::of_days(&cells, from, today),
            );
            if let Ok(mut customers) = customers.lock() {
                let tally = customers.entry(customer_id).or_default();
                if tally.day.is_some_and(|day| day > today) {
                    // A new day began while this read was in flight: it is out of date.
                    return Some((day, month));
                }
                tally.roll_to(today);
                // Every reading restarts the cache's clock, changed or not: merging takes
                // the larger level, so an unchanged reading confirms what the tally holds.
                tally.store_read = Some((Instant::now(), day, month));
                tally.merge_store(day, month);
            }
            Some((day, month))
        }
        Err(error) => {
            tracing::warn!(error = %error, customer_id, "counter read failed; admitting on this proxy's own count");
            None
        }
    }
}

/// The counter reads in flight, by customer. Calls waiting for a customer's first reading
/// subscribe to its sender; they wake when the read is done and its claim dropped.
type ReadsInFlight = Arc<Mutex<HashMap<String, watch::Sender<()>>>>;

/// A customer's claim on the one counter read in flight; released when dropped (the read
/// done, or its task cancelled), which also wakes the calls waiting for it.
struct RefreshClaim {
    refreshing: ReadsInFlight,
    customer_id: String,
}

impl Drop for RefreshClaim {
    fn drop(&mut self) {
        if let Ok(mut refreshing) = self.refreshing.lock() {
            refreshing.remove(&self.customer_id);
        }
    }
}

/// Whether this call claimed the customer's counter read, or another call holds it.
enum ReadClaim {
    Claimed(RefreshClaim),
    /// Another call is reading; the receiver wakes when it is done.
    InFlight(watch::Receiver<()>),
    /// The claims could not be consulted (a poisoned lock).
    Unknown,
}

/// The eventual mode's state: per customer tallies and the counter reads in flight.
pub(super) struct EventualLimiter {
    counters: Arc<dyn Counters>,
    counter_cache_ttl: Duration,
    pub(super) customers: Arc<Mutex<HashMap<String, CustomerTally>>>,
    /// Customers whose counters are being read now.
    pub(super) refreshing: ReadsInFlight,
    /// How long calls wait for a customer's first reading.
    first_read_wait: Duration,
}

impl EventualLimiter {
    /// Decides on the counters in `counters`, reusing a reading for `counter_cache_ttl`;
    /// calls wait at most `first_read_wait` for a customer's first reading.
    pub(super) fn new(
        counters: Arc<dyn Counters>,
        counter_cache_ttl: Duration,
        first_read_wait: Duration,
    ) -> Self {
        Self {
            counters,
            counter_cache_ttl,
            customers: Arc::new(Mutex::new(HashMap::new())),
            refreshing: Arc::new(Mutex::new(HashMap::new())),
            first_read_wait,
        }
    }

    /// The customer's reading of today, if one has been made.
    fn reading(&self, customer_id: &str, today: NaiveDate) -> Option<(Instant, Level, Level)> {
        self.customers.lock().ok().and_then(|customers| {
            customers
                .get(customer_id)
                .filter(|tally| tally.day == Some(today))
                .and_then(|tally| tally.store_read)
        })
    }

    fn claim_read(&self, customer_id: &str) -> ReadClaim {
        let Ok(mut refreshing) = self.refreshing.lock() else {
            return ReadClaim::Unknown;
        };
        if let Some(in_flight) = refreshing.get(customer_id) {
            return ReadClaim::InFlight(in_flight.subscribe());
        }
        refreshing.insert(customer_id.to_owned(), watch::channel(()).0);
        ReadClaim::Claimed(RefreshClaim {
            refreshing: Arc::clone(&self.refreshing),
            customer_id: customer_id.to_owned(),
        })
    }

    /// What each window holds as this process sees it: the larger of the counters and its
    /// own tally.
    pub(super) async fn window_levels(
        &self,
        customer_id: &str,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Option<WindowLevels> {
        let today = now.date_naive();
        let store = self.store_levels(customer_id, limits, today).await;
        let minute = WindowKind::Minute.containing(now).starts_at;
        let customers = self.customers.lock().ok()?;
        let tally = customers.get(customer_id);
        let local = |kind: WindowKind| match (kind, tally) {
            (_, Some(tally)) if tally.day != Some(today) => Level::default(),
            (WindowKind::Minute, Some(tally)) => Level {
                requests: tally.minute_count(minute),
                tokens: 0,
            },
            (WindowKind::Day, Some(tally)) => tally.today,
            (WindowKind::Month, Some(tally)) => tally.month,
            (_, None) => Level::default(),
        };
        let levels = |kind: WindowKind| {
            let own = local(kind);
            let counted = match (kind, store) {
                (WindowKind::Day, Some((day, _))) => day,
                (WindowKind::Month, Some((_, month))) => month,
                _ => Level::default(),
            };
            Level {
                requests: own.requests.max(counted.requests),
                tokens: own.tokens.max(counted.tokens),
            }
        };
        Some(WindowLevels {
            minute: levels(WindowKind::Minute),
            day: levels(WindowKind::Day),
            month: levels(WindowKind::Month),
        })
    }

    async fn store_levels(
        &self,
        customer_id: &str,
        limits: &Limits,
        today: NaiveDate,
    ) -> Option<(Level, Level)> {
        let previous = self.reading(customer_id, today);
        if let Some((read_at, day, month)) = previous
            && read_at.elapsed() < self.counter_cache_ttl
        {
            return Some((day, month));
        }
        let claim = match self.claim_read(customer_id) {
            ReadClaim::Claimed(claim) => claim,
            ReadClaim::Unknown => return previous.map(|(_, day, month)| (day, month)),
            // Another call is reading them: decide on the previous reading meanwhile.
            ReadClaim::InFlight(_) if previous.is_some() => {
                return previous.map(|(_, day, month)| (day, month));
            }
            // The customer's first reading is in flight: wait for it rather than decide on
            // a count of zero, for at most `first_read_wait`.
            ReadClaim::InFlight(mut done) => {
                let _ = tokio::time::timeout(self.first_read_wait, done.changed()).await;
                return self
                    .reading(customer_id, today)
                    .map(|(_, day, month)| (day, month));
            }
        };
        // A read that ended between the first look and the claim left its reading: use it.
        if let Some((read_at, day, month)) = self.reading(customer_id, today)
            && read_at.elapsed() < self.counter_cache_ttl
        {
            drop(claim);
            return Some((day, month));
        }
        let monthly = LimitKind::MonthlyRequests.cap(limits).is_some()
            || LimitKind::MonthlyTokens.cap(limits).is_some();
        let from = if monthly { month_start(today) } else { today };
        let read = read_levels(
            Arc::clone(&self.counters),
            Arc::clone(&self.customers),
            customer_id.to_owned(),
            from,
            today,
        );
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let _claim = claim;
            return read.await;
        };
        // The read runs as its own task, so that it finishes (and serves the calls after
        // this one) even if this call gives up waiting or is cancelled.
        let task = runtime.spawn(async move {
            let _claim = claim;
            read.await
        });
        if let Some((_, day, month)) = previous {
            // Decide on the expired reading now; the fresh one serves the calls after it.
            return Some((day, month));
        }
        match tokio::time::timeout(self.first_read_wait, task).await {
            Ok(Ok(levels)) => levels,
            _ => {
                tracing::warn!(
                    customer_id,
                    wait_ms = u64::try_from(self.first_read_wait.as_millis()).unwrap_or(u64::MAX),
                    "the first counter read is slow; admitting on this proxy's own count meanwhile"
                );
                None
            }
        }
    }

    /// Decides on one call of a customer with caps, counting it in this process's tally.
    pub(super) async fn admit(
        &self,
        customer_id: &str,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Admission {
        let today = now.date_naive();
        let needs_store = LimitKind::ALL
            .iter()
            .any(|kind| kind.window() != WindowKind::Minute && kind.cap(limits).is_some());
        let store = if needs_store {
            self.store_levels(customer_id, limits, today).await
        } else {
            None
        };
        let grant = |rate| {
            Admission::Admit(Grant::Eventual {
                customer_id: customer_id.to_owned(),
                day: today,
                rate,
            })
        };
        let Ok(mut customers) = self.customers.lock() else {
            return grant(None);
        };
        let tally = customers.entry(customer_id.to_owned()).or_default();
        tally.roll_to(today);
        if let Some((day, month)) = store {
            tally.merge_store(day, month);
        }
        let minute = WindowKind::Minute.containing(now).starts_at;
        let levels = |kind: WindowKind| match kind {
            WindowKind::Minute => Level {
                requests: tally.minute_count(minute),
                tokens: 0,
            },
            WindowKind::Day => tally.today,
            WindowKind::Month => tally.month,
        };
        let cost = Cost {
            requests: 1,
            tokens: 0,
        };
        match evaluate(limits, now, levels, cost) {
            Decision::Reject(hit) => Admission::Reject(hit),
            Decision::Admit(rate) => {
                let count = tally.minute_count(minute);
                tally.minute = Some((minute, count + 1));
                tally.today.requests += 1;
                tally.month.requests += 1;
                grant(rate)
            }
        }
    }

    /// Adds a settled call's tokens to this process's tally, in the day and month it was
    /// counted in.
    pub(super) fn settle(&self, customer_id: &str, counted_on: NaiveDate, actual_tokens: u64) {
        if actual_tokens > 0
            && let Ok(mut customers) = self.customers.lock()
            && let Some(tally) = customers.get_mut(customer_id)
            && let Some(day) = tally.day
        {
            if day == counted_on {
                tally.today.tokens = tally.today.tokens.saturating_add(actual_tokens);
            }
            if month_start(day) == month_start(counted_on) {
                tally.month.tokens = tally.month.tokens.saturating_add(actual_tokens);
            }
        }
    }
}
