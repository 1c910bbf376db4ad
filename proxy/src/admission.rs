//! Admission against a customer's limits, in either enforcement mode.
//!
//! The decision is the pure [`schemas::quota::evaluate`]; this module supplies the window
//! levels it decides on:
//! - **eventual**: the counter projection (read through a short cache) merged with what
//!   this process admitted and settled since, plus a per-process minute count. No store
//!   write on the request path, and no counter read either once a customer has one: an
//!   expired reading is refreshed in the background (one read in flight per customer)
//!   while calls decide on it. Only a customer's first call waits for a read. One proxy enforces exactly; several proxies can overshoot
//!   by what the consumer has not yet counted.
//! - **strict**: an atomic reservation in the [`Quotas`] store before forwarding (one
//!   request, and for token budgets `max_tokens` plus an input estimate), settled to the
//!   actual token count when the call ends. Concurrent requests never pass a cap.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use schemas::quota::{
    Cost, Decision, EnforcementMode, Level, LimitHit, LimitKind, RateLimitStatus, WindowKind,
    evaluate, has_caps, has_token_caps, month_start, requested_max_tokens, tightest,
    token_reservation,
};
use schemas::usage_counts::total_counts;
use schemas::{Customer, Limits};
use store::{Counters, QuotaAdjustment, QuotaCharge, Quotas, Reservation};

/// How admission is configured for a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// The mode for customers who have none of their own.
    pub default_mode: EnforcementMode,
    /// Output tokens a strict token budget reserves when the body names no `max_tokens`.
    pub default_output_reservation: u64,
    /// How long a counter read is reused by eventual mode.
    pub counter_cache_ttl: Duration,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            default_mode: EnforcementMode::Eventual,
            default_output_reservation: 4_096,
            counter_cache_ttl: Duration::from_secs(1),
        }
    }
}

/// What an admitted call holds until it is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    customer_id: String,
    mode: EnforcementMode,
    /// Strict: the token windows charged and the tokens reserved in each.
    reserved: Vec<(String, DateTime<Utc>)>,
    reserved_tokens: u64,
    /// Eventual: the day the call was counted in.
    day: NaiveDate,
    /// The tightest limit after admitting the call, for `RateLimit-*` headers.
    pub rate: Option<RateLimitStatus>,
}

/// A grant and the limiter that settles it; settles exactly once, when consumed.
#[derive(Debug, Clone)]
pub struct Settlement {
    limiter: Arc<Limiter>,
    grant: Grant,
}

impl Settlement {
    /// Ties a grant to its limiter.
    pub fn new(limiter: Arc<Limiter>, grant: Grant) -> Self {
        Self { limiter, grant }
    }

    /// Settles with the call's actual tokens (input plus output). Eventual mode counts them
    /// at once; strict mode returns the store write that moves the reservation to them,
    /// which the caller must run (the emitter runs it with the call's event).
    pub fn settle(self, actual_tokens: u64) -> Option<BoxFuture<'static, ()>> {
        self.limiter.settle(self.grant, actual_tokens)
    }
}

/// The result of admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admit(Grant),
    /// Refused for a limit (metered as `rejected_limit`).
    Reject(LimitHit),
    /// Strict mode could not reach its store; the call is refused with 503, not metered.
    Unavailable(String),
}

#[derive(Debug, Default)]
struct CustomerTally {
    day: Option<NaiveDate>,
    /// Best estimates, across all proxies, of today's and this month's levels.
    today: Level,
    month: Level,
    /// This process's requests in the current minute.
    minute: Option<(DateTime<Utc>, u64)>,
    /// When the counter projection was last read, and what it said (today, month).
    store_read: Option<(Instant, Level, Level)>,
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
                level_of_counts(&cells, today, today),
                level_of_counts(&cells, from, today),
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

/// Decides on calls and settles them.
pub struct Limiter {
    counters: Arc<dyn Counters>,
    quotas: Arc<dyn Quotas>,
    settings: AdmissionSettings,
    customers: Arc<Mutex<HashMap<String, CustomerTally>>>,
    /// Customers whose counters are being read now.
    refreshing: Arc<Mutex<HashSet<String>>>,
}

/// A customer's claim on the one counter read in flight; released when dropped, also when
/// the call that made it is cancelled mid-read.
struct RefreshClaim {
    refreshing: Arc<Mutex<HashSet<String>>>,
    customer_id: String,
}

impl Drop for RefreshClaim {
    fn drop(&mut self) {
        if let Ok(mut refreshing) = self.refreshing.lock() {
            refreshing.remove(&self.customer_id);
        }
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Limiter")
            .field("settings", &self.settings)
            .finish()
    }
}

fn level_of_counts(cells: &[schemas::DailyUsage], from: NaiveDate, to: NaiveDate) -> Level {
    let totals = total_counts(
        cells
            .iter()
            .filter(|cell| (from..=to).contains(&cell.day))
            .map(|cell| &cell.counts),
    );
    Level {
        requests: totals.requests,
        tokens: totals.total_tokens(),
    }
}

/// The windows a customer's caps need, with what each charges and caps.
fn charges_for(limits: &Limits, now: DateTime<Utc>, reservation: u64) -> Vec<QuotaCharge> {
    [WindowKind::Minute, WindowKind::Day, WindowKind::Month]
        .into_iter()
        .filter_map(|window_kind| {
            let caps: Vec<LimitKind> = LimitKind::ALL
                .into_iter()
                .filter(|kind| kind.window() == window_kind && kind.cap(limits).is_some())
                .collect();
            if caps.is_empty() {
                return None;
            }
            let cap_of = |unit: schemas::quota::Unit| {
                caps.iter()
                    .find(|kind| kind.unit() == unit)
                    .and_then(|kind| kind.cap(limits))
            };
            let token_cap = cap_of(schemas::quota::Unit::Tokens);
            let window = window_kind.containing(now);
            Some(QuotaCharge {
                window: window.id,
                resets_at: window.resets_at,
                requests: 1,
                tokens: if token_cap.is_some() { reservation } else { 0 },
                request_cap: cap_of(schemas::quota::Unit::Requests),
                token_cap,
            })
        })
        .collect()
}

/// The level a window kind has in `levels`, matched to `charges` by window id.
fn level_for(
    charges: &[QuotaCharge],
    levels: &[Level],
    now: DateTime<Utc>,
    kind: WindowKind,
) -> Level {
    let id = kind.containing(now).id;
    charges
        .iter()
        .zip(levels)
        .find(|(charge, _)| charge.window == id)
        .map(|(_, level)| *level)
        .unwrap_or_default()
}

impl Limiter {
    /// A limiter over the counter projection (eventual) and the quota store (strict).
    pub fn new(
        counters: Arc<dyn Counters>,
        quotas: Arc<dyn Quotas>,
        settings: AdmissionSettings,
    ) -> Self {
        Self {
            counters,
            quotas,
            settings,
            customers: Arc::new(Mutex::new(HashMap::new())),
            refreshing: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The mode that applies to a customer.
    pub fn mode_for(&self, limits: &Limits) -> EnforcementMode {
        limits.enforcement.unwrap_or(self.settings.default_mode)
    }

    /// Decides on one call. `model_body` is what will be sent to the model (read for
    /// `max_tokens` only when a strict token budget applies).
    pub async fn admit(
        &self,
        customer: &Customer,
        model_body: &[u8],
        now: DateTime<Utc>,
    ) -> Admission {
        let limits = &customer.limits;
        let mode = self.mode_for(limits);
        let mut grant = Grant {
            customer_id: customer.customer_id.clone(),
            mode,
            reserved: Vec::new(),
            reserved_tokens: 0,
            day: now.date_naive(),
            rate: None,
        };
        if !has_caps(limits) {
            return Admission::Admit(grant);
        }
        match mode {
            EnforcementMode::Eventual => self.admit_eventual(grant, limits, now).await,
            EnforcementMode::Strict => {
                let reservation = if has_token_caps(limits) {
                    let max_tokens = serde_json::from_slice::<serde_json::Value>(model_body)
                        .ok()
                        .as_ref()
                        .and_then(requested_max_tokens);
                    token_reservation(
                        u64::try_from(model_body.len()).unwrap_or(u64::MAX),
                        max_tokens,
                        self.settings.default_output_reservation,
                    )
                } else {
                    0
                };
                let charges = charges_for(limits, now, reservation);
                let cost = Cost {
                    requests: 1,
                    tokens: reservation,
                };
                match self.quotas.reserve(&customer.customer_id, &charges).await {
                    Ok(Reservation::Granted(after)) => {
                        grant.reserved = charges
                            .iter()
                            .filter(|charge| charge.tokens > 0)
                            .map(|charge| (charge.window.clone(), charge.resets_at))
                            .collect();
                        grant.reserved_tokens = reservation;
                        grant.rate = tightest(
                            limits,
                            now,
                            |kind| level_for(&charges, &after, now, kind),
                            Cost::default(),
                        );
                        Admission::Admit(grant)
                    }
                    Ok(Reservation::Refused { refused, levels }) => {
                        match evaluate(
                            limits,
                            now,
                            |kind| level_for(&charges, &levels, now, kind),
                            cost,
                        ) {
                            Decision::Reject(hit) => Admission::Reject(hit),
                            Decision::Admit(_) => {
                                Admission::Reject(refusal_of(limits, &charges, refused, now, cost))
                            }
                        }
                    }
                    Err(error) => {
                        tracing::error!(error = %error, customer_id = %customer.customer_id, "strict limit store unavailable; refusing the call");
                        Admission::Unavailable(
                            "limits cannot be checked right now; retry in a few seconds".into(),
                        )
                    }
                }
            }
        }
    }

    /// The tightest limit as it stands, without counting a call: for the `RateLimit-*`
    /// headers of answers the proxy gives before admission (a bad body, a model that is not
    /// allowed). `None` without caps, or when the levels cannot be read.
    pub async fn peek(&self, customer: &Customer, now: DateTime<Utc>) -> Option<RateLimitStatus> {
        let limits = &customer.limits;
        if !has_caps(limits) {
            return None;
        }
        match self.mode_for(limits) {
            EnforcementMode::Strict => {
                let charges = charges_for(limits, now, 0);
                let windows: Vec<String> =
                    charges.iter().map(|charge| charge.window.clone()).collect();
                let levels = self
                    .quotas
                    .levels(&customer.customer_id, &windows)
                    .await
                    .ok()?;
                tightest(
                    limits,
                    now,
                    |kind| level_for(&charges, &levels, now, kind),
                    Cost::default(),
                )
            }
            EnforcementMode::Eventual => {
                let today = now.date_naive();
                let store = self
                    .store_levels(&customer.customer_id, limits, today)
                    .await;
                let minute = WindowKind::Minute.containing(now).starts_at;
                let customers = self.customers.lock().ok()?;
                let tally = customers.get(&customer.customer_id);
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
                tightest(limits, now, levels, Cost::default())
            }
        }
    }

    async fn store_levels(
        &self,
        customer_id: &str,
        limits: &Limits,
        today: NaiveDate,
    ) -> Option<(Level, Level)> {
        let previous = self.customers.lock().ok().and_then(|customers| {
            customers
                .get(customer_id)
                .filter(|tally| tally.day == Some(today))
                .and_then(|tally| tally.store_read)
        });
        if let Some((read_at, day, month)) = previous
            && read_at.elapsed() < self.settings.counter_cache_ttl
        {
            return Some((day, month));
        }
        let claimed = self
            .refreshing
            .lock()
            .map(|mut refreshing| refreshing.insert(customer_id.to_owned()))
            .unwrap_or(false);
        if !claimed {
            // Another call is reading them: decide on the previous reading meanwhile.
            return previous.map(|(_, day, month)| (day, month));
        }
        let claim = RefreshClaim {
            refreshing: Arc::clone(&self.refreshing),
            customer_id: customer_id.to_owned(),
        };
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
        if let Some((_, day, month)) = previous
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Decide on the expired reading now; the fresh one serves the calls after it.
            runtime.spawn(async move {
                let _claim = claim;
                read.await;
            });
            return Some((day, month));
        }
        let _claim = claim;
        read.await
    }

    async fn admit_eventual(
        &self,
        mut grant: Grant,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Admission {
        let today = now.date_naive();
        let needs_store = LimitKind::ALL
            .iter()
            .any(|kind| kind.window() != WindowKind::Minute && kind.cap(limits).is_some());
        let store = if needs_store {
            self.store_levels(&grant.customer_id, limits, today).await
        } else {
            None
        };
        let Ok(mut customers) = self.customers.lock() else {
            return Admission::Admit(grant);
        };
        let tally = customers.entry(grant.customer_id.clone()).or_default();
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
                grant.rate = rate;
                Admission::Admit(grant)
            }
        }
    }

    /// Settles a call once its tokens are known. Eventual: adds them to this process's
    /// tally. Strict: returns the store write that moves the reservation to the actual
    /// count (the caller runs it; on Lambda before answering).
    pub fn settle(&self, grant: Grant, actual_tokens: u64) -> Option<BoxFuture<'static, ()>> {
        match grant.mode {
            EnforcementMode::Eventual => {
                if actual_tokens > 0
                    && let Ok(mut customers) = self.customers.lock()
                    && let Some(tally) = customers.get_mut(&grant.customer_id)
                    && let Some(day) = tally.day
                {
                    if day == grant.day {
                        tally.today.tokens = tally.today.tokens.saturating_add(actual_tokens);
                    }
                    if month_start(day) == month_start(grant.day) {
                        tally.month.tokens = tally.month.tokens.saturating_add(actual_tokens);
                    }
                }
                None
            }
            EnforcementMode::Strict => {
                let delta = i128::from(actual_tokens) - i128::from(grant.reserved_tokens);
                if grant.reserved.is_empty() || delta == 0 {
                    return None;
                }
                let tokens =
                    i64::try_from(delta).unwrap_or(if delta > 0 { i64::MAX } else { i64::MIN });
                let adjustments: Vec<QuotaAdjustment> = grant
                    .reserved
                    .iter()
                    .map(|(window, resets_at)| QuotaAdjustment {
                        window: window.clone(),
                        resets_at: *resets_at,
                        tokens,
                    })
                    .collect();
                let quotas = Arc::clone(&self.quotas);
                let customer_id = grant.customer_id;
                Some(Box::pin(async move {
                    if let Err(error) = quotas.adjust(&customer_id, &adjustments).await {
                        tracing::error!(error = %error, customer_id, "could not settle a token reservation; the window keeps the reserved amount");
                    }
                }))
            }
        }
    }
}

/// A refusal for the charge the store named, when re-evaluating its levels admits (the
/// levels changed between the refusal and the read).
fn refusal_of(
    limits: &Limits,
    charges: &[QuotaCharge],
    refused: usize,
    now: DateTime<Utc>,
    cost: Cost,
) -> LimitHit {
    let window = charges.get(refused).map(|charge| charge.window.clone());
    let kind = LimitKind::ALL
        .into_iter()
        .find(|kind| kind.cap(limits).is_some() && Some(kind.window().containing(now).id) == window)
        .unwrap_or(LimitKind::DailyRequests);
    let resets_at = kind.window().containing(now).resets_at;
    let limit = kind.cap(limits).unwrap_or(0);
    LimitHit {
        kind,
        limit,
        used: limit,
        requested: match kind.unit() {
            schemas::quota::Unit::Requests => cost.requests,
            schemas::quota::Unit::Tokens => cost.tokens,
        },
        resets_at,
        retry_after_seconds: schemas::quota::seconds_until(now, resets_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use schemas::CustomerStatus;
    use store::memory::MemoryStore;

    fn customer(limits: Limits) -> Customer {
        Customer {
            customer_id: "c".into(),
            name: "n".into(),
            email: "e@example.com".into(),
            status: CustomerStatus::Active,
            created_at: Utc::now(),
            limits,
        }
    }

    fn limiter(store: Arc<MemoryStore>, mode: EnforcementMode) -> Limiter {
        Limiter::new(
            store.clone(),
            store,
            AdmissionSettings {
                default_mode: mode,
                default_output_reservation: 100,
                counter_cache_ttl: Duration::from_secs(60),
            },
        )
    }

    fn admitted(admission: &Admission) -> bool {
        matches!(admission, Admission::Admit(_))
    }

    #[tokio::test]
    async fn eventual_mode_enforces_a_single_proxys_limit_before_counters_catch_up() {
        let limiter = limiter(Arc::new(MemoryStore::new()), EnforcementMode::Eventual);
        let now = Utc::now();
        let capped = customer(Limits {
            daily_request_limit: Some(3),
            ..Limits::default()
        });
        let mut decisions = Vec::new();
        for _ in 0..4 {
            decisions.push(limiter.admit(&capped, b"{}", now).await);
        }
        assert!(decisions[..3].iter().all(admitted));
        let Admission::Reject(hit) = &decisions[3] else {
            panic!("the fourth call should be refused")
        };
        assert_eq!(hit.kind, LimitKind::DailyRequests);
        let Admission::Admit(grant) = &decisions[2] else {
            panic!()
        };
        assert_eq!(grant.rate.map(|rate| rate.remaining), Some(0));
    }

    #[tokio::test]
    async fn eventual_mode_reads_unchanged_counters_once_per_cache_period() {
        let counters = GatedCounters::new(tokio::sync::Semaphore::MAX_PERMITS);
        let limiter = eventual_limiter(counters.clone(), Duration::from_secs(1));
        let capped = customer(Limits {
            daily_request_limit: Some(1_000),
            ..Limits::default()
        });
        let now = Utc::now();
        assert!(admitted(&limiter.admit(&capped, b"{}", now).await));
        // Past the cache period the counters are read again; they have not moved, and
        // that reading is cached like any other.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        for _ in 0..20 {
            assert!(admitted(&limiter.admit(&capped, b"{}", now).await));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            counters.reads.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "one read per cache period, changed or not"
        );
    }

    /// Counters whose reads wait until the test lets them through.
    struct GatedCounters {
        inner: MemoryStore,
        reads: std::sync::atomic::AtomicUsize,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait::async_trait]
    impl store::Counters for GatedCounters {
        async fn apply(&self, events: &[store::SourcedEvent]) -> store::Result<store::ApplyReport> {
            self.inner.apply(events).await
        }
        async fn read_daily(
            &self,
            customer_id: &str,
            from: NaiveDate,
            to: NaiveDate,
        ) -> store::Result<Vec<schemas::DailyUsage>> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
            self.inner.read_daily(customer_id, from, to).await
        }
        async fn read_hourly(
            &self,
            customer_id: &str,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> store::Result<Vec<schemas::HourlyUsage>> {
            self.inner.read_hourly(customer_id, from, to).await
        }
    }

    impl GatedCounters {
        /// Counters that serve `permits` reads, then wait for more.
        fn new(permits: usize) -> Arc<Self> {
            Arc::new(Self {
                inner: MemoryStore::new(),
                reads: std::sync::atomic::AtomicUsize::new(0),
                gate: tokio::sync::Semaphore::new(permits),
            })
        }
    }

    fn eventual_limiter(counters: Arc<GatedCounters>, ttl: Duration) -> Limiter {
        Limiter::new(
            counters,
            Arc::new(MemoryStore::new()),
            AdmissionSettings {
                default_mode: EnforcementMode::Eventual,
                default_output_reservation: 100,
                counter_cache_ttl: ttl,
            },
        )
    }

    #[tokio::test]
    async fn calls_during_a_slow_counter_read_do_not_read_again_or_wait() {
        let counters = GatedCounters::new(0);
        let limiter = Arc::new(eventual_limiter(counters.clone(), Duration::from_secs(60)));
        let capped = customer(Limits {
            daily_request_limit: Some(5),
            ..Limits::default()
        });
        let now = Utc::now();
        let first = tokio::spawn({
            let (limiter, capped) = (Arc::clone(&limiter), capped.clone());
            async move { limiter.admit(&capped, b"{}", now).await }
        });
        while counters.reads.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The first read hangs; the next calls decide on this proxy's own count at once.
        for _ in 0..5 {
            let admission =
                tokio::time::timeout(Duration::from_secs(5), limiter.admit(&capped, b"{}", now))
                    .await
                    .expect("a call waited for another call's counter read");
            assert!(admitted(&admission));
        }
        assert!(!admitted(&limiter.admit(&capped, b"{}", now).await));
        assert_eq!(counters.reads.load(std::sync::atomic::Ordering::SeqCst), 1);

        // The cap holds across the slow read: the first call, decided last, is refused.
        counters.gate.add_permits(100);
        assert!(!admitted(&first.await.unwrap()));

        // A read cancelled mid-way (its call dropped) releases its claim.
        let cancelled = GatedCounters::new(0);
        let limiter = eventual_limiter(cancelled.clone(), Duration::from_secs(60));
        let dropped = tokio::time::timeout(
            Duration::from_millis(50),
            limiter.admit(&capped, b"{}", now),
        )
        .await;
        assert!(dropped.is_err(), "the read is gated");
        cancelled.gate.add_permits(100);
        assert!(admitted(&limiter.admit(&capped, b"{}", now).await));
        assert_eq!(
            cancelled.reads.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the next call reads again"
        );
    }

    #[tokio::test]
    async fn an_expired_reading_is_refreshed_in_the_background_while_calls_use_it() {
        let counters = GatedCounters::new(1);
        let limiter = eventual_limiter(counters.clone(), Duration::from_millis(200));
        let capped = customer(Limits {
            daily_request_limit: Some(1_000),
            ..Limits::default()
        });
        let now = Utc::now();
        assert!(admitted(&limiter.admit(&capped, b"{}", now).await));
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The reading has expired and the next read hangs: calls do not wait for it.
        for _ in 0..3 {
            let admission =
                tokio::time::timeout(Duration::from_secs(5), limiter.admit(&capped, b"{}", now))
                    .await
                    .expect("a call waited for the counters' refresh");
            assert!(admitted(&admission));
        }
        // Let the background refresh start (it is spawned on this test's one thread).
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(counters.reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(admitted(&limiter.admit(&capped, b"{}", now).await));
        assert_eq!(
            counters.reads.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "one read in flight"
        );
        counters.gate.add_permits(1);
        for _ in 0..500 {
            if limiter.refreshing.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(limiter.refreshing.lock().unwrap().is_empty());
        let read_at = limiter.customers.lock().unwrap()["c"].store_read.unwrap().0;
        assert!(
            read_at.elapsed() < Duration::from_millis(200),
            "the fresh reading is kept"
        );
    }

    #[tokio::test]
    async fn eventual_mode_takes_other_proxies_counts_from_the_counters() {
        use store::{Counters, SourcedEvent};
        let store = Arc::new(MemoryStore::new());
        let now = Utc::now();
        let events: Vec<SourcedEvent> = (0..2)
            .map(|index| {
                let mut event = store::contract::event_on(
                    "c",
                    now.date_naive(),
                    "m",
                    schemas::Outcome::Success,
                    400,
                    100,
                );
                event.occurred_at = now;
                SourcedEvent {
                    source: format!("p/{index}"),
                    event,
                }
            })
            .collect();
        store.apply(&events).await.unwrap();
        let limiter = limiter(store, EnforcementMode::Eventual);
        let requests = customer(Limits {
            monthly_request_limit: Some(3),
            ..Limits::default()
        });
        assert!(admitted(&limiter.admit(&requests, b"{}", now).await));
        assert!(!admitted(&limiter.admit(&requests, b"{}", now).await));
        let tokens = customer(Limits {
            daily_token_limit: Some(1_000),
            ..Limits::default()
        });
        // 1,000 tokens counted already: the budget is spent.
        let Admission::Reject(hit) = limiter.admit(&tokens, b"{}", now).await else {
            panic!("the token budget is spent")
        };
        assert_eq!(hit.kind, LimitKind::DailyTokens);
    }

    #[tokio::test]
    async fn eventual_mode_counts_settled_tokens_and_requests_per_minute() {
        let limiter = limiter(Arc::new(MemoryStore::new()), EnforcementMode::Eventual);
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 30).unwrap();
        let tokens = customer(Limits {
            daily_token_limit: Some(500),
            requests_per_minute: Some(2),
            ..Limits::default()
        });
        let Admission::Admit(grant) = limiter.admit(&tokens, b"{}", now).await else {
            panic!()
        };
        assert!(limiter.settle(grant, 500).is_none());
        let Admission::Reject(hit) = limiter.admit(&tokens, b"{}", now).await else {
            panic!("500 settled tokens spend the budget")
        };
        assert_eq!(hit.kind, LimitKind::DailyTokens);

        let rpm = customer(Limits {
            requests_per_minute: Some(2),
            ..Limits::default()
        });
        let limiter = limiter_for_rpm();
        assert!(admitted(&limiter.admit(&rpm, b"{}", now).await));
        assert!(admitted(&limiter.admit(&rpm, b"{}", now).await));
        let Admission::Reject(hit) = limiter.admit(&rpm, b"{}", now).await else {
            panic!("third call in the minute")
        };
        assert_eq!(hit.kind, LimitKind::RequestsPerMinute);
        assert_eq!(hit.retry_after_seconds, 30);
        let next_minute = now + chrono::Duration::seconds(30);
        assert!(admitted(&limiter.admit(&rpm, b"{}", next_minute).await));
    }

    fn limiter_for_rpm() -> Limiter {
        limiter(Arc::new(MemoryStore::new()), EnforcementMode::Eventual)
    }

    #[tokio::test]
    async fn strict_mode_reserves_max_tokens_and_settles_to_the_actual_count() {
        let store = Arc::new(MemoryStore::new());
        let limiter = limiter(store.clone(), EnforcementMode::Strict);
        let now = Utc::now();
        let capped = customer(Limits {
            daily_token_limit: Some(1_000),
            ..Limits::default()
        });
        let body = br#"{"max_tokens":600}"#;
        let Admission::Admit(grant) = limiter.admit(&capped, body, now).await else {
            panic!("the first reservation fits")
        };
        let reserved = 600 + (body.len() as u64).div_ceil(3);
        assert_eq!(grant.reserved_tokens, reserved);
        let Admission::Reject(hit) = limiter.admit(&capped, body, now).await else {
            panic!("a second reservation of {reserved} does not fit in 1000")
        };
        assert_eq!(hit.kind, LimitKind::DailyTokens);
        limiter.settle(grant, 150).unwrap().await;
        let day = WindowKind::Day.containing(now).id;
        assert_eq!(
            store.levels("c", &[day]).await.unwrap(),
            vec![Level {
                requests: 1,
                tokens: 150
            }]
        );
        assert!(admitted(&limiter.admit(&capped, body, now).await));
    }

    #[tokio::test]
    async fn the_customers_own_mode_wins_over_the_deployments() {
        let store = Arc::new(MemoryStore::new());
        let limiter = limiter(store.clone(), EnforcementMode::Eventual);
        let strict = customer(Limits {
            daily_request_limit: Some(5),
            enforcement: Some(EnforcementMode::Strict),
            ..Limits::default()
        });
        let now = Utc::now();
        assert!(admitted(&limiter.admit(&strict, b"{}", now).await));
        let day = WindowKind::Day.containing(now).id;
        assert_eq!(store.levels("c", &[day]).await.unwrap()[0].requests, 1);
    }
}
