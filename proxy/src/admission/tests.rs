//! The limiter in both modes, against the memory store and gated counters.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use schemas::EnforcementMode;
use schemas::quota::{Level, LimitKind, WindowKind};
use schemas::{Customer, Limits};

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
            first_read_wait: Duration::from_secs(1),
            strict_block_max: DEFAULT_STRICT_BLOCK_MAX,
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
    assert_eq!(grant.rate().map(|rate| rate.remaining), Some(0));
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
            first_read_wait: Duration::from_millis(300),
            strict_block_max: DEFAULT_STRICT_BLOCK_MAX,
        },
    )
}

fn reads(counters: &GatedCounters) -> usize {
    counters.reads.load(std::sync::atomic::Ordering::SeqCst)
}

/// Starts `calls` admissions of `customer` at once, each on its own task.
fn admit_at_once(
    limiter: &Arc<Limiter>,
    customer: &Customer,
    now: DateTime<Utc>,
    calls: usize,
) -> Vec<tokio::task::JoinHandle<Admission>> {
    (0..calls)
        .map(|_| {
            let (limiter, customer) = (Arc::clone(limiter), customer.clone());
            tokio::spawn(async move { limiter.admit(&customer, b"{}", now).await })
        })
        .collect()
}

async fn admitted_count(calls: Vec<tokio::task::JoinHandle<Admission>>) -> usize {
    let mut count = 0;
    for call in calls {
        count += usize::from(admitted(&call.await.unwrap()));
    }
    count
}

/// `count` counted calls of customer `c` at `now`, each with these token counts.
fn calls_today(
    count: u64,
    input_tokens: u64,
    output_tokens: u64,
    now: DateTime<Utc>,
) -> Vec<store::SourcedEvent> {
    (0..count)
        .map(|index| {
            let mut event = store::contract::event_on(
                "c",
                now.date_naive(),
                "m",
                schemas::Outcome::Success,
                input_tokens,
                output_tokens,
            );
            event.occurred_at = now;
            store::contract::sourced_at("p", index + 1, event)
        })
        .collect()
}

/// Counters showing `requests` calls of customer `c` today.
async fn counters_at(requests: u64, now: DateTime<Utc>) -> Arc<GatedCounters> {
    use store::Counters;
    let counters = GatedCounters::new(0);
    counters
        .inner
        .apply(&calls_today(requests, 10, 10, now))
        .await
        .unwrap();
    counters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_right_after_a_restart_waits_for_the_first_reading_and_admits_nothing_over_the_limit()
 {
    // A customer at 15 of a daily limit of 15, counters caught up, and a proxy that has
    // just started: 8 concurrent calls all arrive while its first counter read is in flight.
    let now = Utc::now();
    let counters = counters_at(15, now).await;
    let limiter = Arc::new(eventual_limiter(counters.clone(), Duration::from_secs(60)));
    let at_limit = customer(Limits {
        daily_request_limit: Some(15),
        ..Limits::default()
    });
    let calls = admit_at_once(&limiter, &at_limit, now, 8);
    while reads(&counters) == 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        calls.iter().all(|call| !call.is_finished()),
        "calls during the first read wait for it"
    );
    counters.gate.add_permits(100);
    assert_eq!(admitted_count(calls).await, 0, "nothing over the limit");
    assert_eq!(reads(&counters), 1, "one read served every waiting call");

    // The same burst with room for 3: exactly 3 admitted.
    let counters = counters_at(12, now).await;
    counters.gate.add_permits(100);
    let limiter = Arc::new(eventual_limiter(counters.clone(), Duration::from_secs(60)));
    let calls = admit_at_once(&limiter, &at_limit, now, 8);
    assert_eq!(admitted_count(calls).await, 3);
    assert_eq!(reads(&counters), 1);
}

#[tokio::test]
async fn calls_wait_for_a_slow_first_read_only_up_to_the_bound() {
    // eventual_limiter waits at most 300 ms for a first reading.
    let counters = GatedCounters::new(0);
    let limiter = Arc::new(eventual_limiter(counters.clone(), Duration::from_secs(60)));
    let capped = customer(Limits {
        daily_request_limit: Some(5),
        ..Limits::default()
    });
    let now = Utc::now();
    let started = std::time::Instant::now();
    // The read hangs: past the bound, the calls decide on this proxy's own count (the cap
    // still holds on it) and no call starts a second read.
    let admitted_now = admitted_count(admit_at_once(&limiter, &capped, now, 7)).await;
    assert_eq!(admitted_now, 5);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(reads(&counters), 1);
    assert!(!limiter.eventual.refreshing.lock().unwrap().is_empty());

    // The read goes on in the background; once it ends its claim is released and its
    // reading kept.
    counters.gate.add_permits(100);
    for _ in 0..500 {
        if limiter.eventual.refreshing.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(limiter.eventual.refreshing.lock().unwrap().is_empty());
    assert!(
        limiter.eventual.customers.lock().unwrap()["c"]
            .store_read
            .is_some()
    );
    assert!(!admitted(&limiter.admit(&capped, b"{}", now).await));
    assert_eq!(reads(&counters), 1, "the reading is reused");

    // A call dropped while it waits for its read does not leave the read claimed.
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
    assert_eq!(reads(&cancelled), 1, "the read finished without its call");
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
        if limiter.eventual.refreshing.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(limiter.eventual.refreshing.lock().unwrap().is_empty());
    let read_at = limiter.eventual.customers.lock().unwrap()["c"]
        .store_read
        .unwrap()
        .0;
    assert!(
        read_at.elapsed() < Duration::from_millis(200),
        "the fresh reading is kept"
    );
}

#[tokio::test]
async fn eventual_mode_takes_other_proxies_counts_from_the_counters() {
    use store::Counters;
    let store = Arc::new(MemoryStore::new());
    let now = Utc::now();
    store.apply(&calls_today(2, 400, 100, now)).await.unwrap();
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
    let Grant::Strict {
        reserved_tokens, ..
    } = &grant
    else {
        panic!("a strict grant")
    };
    assert_eq!(*reserved_tokens, reserved);
    let Admission::Reject(hit) = limiter.admit(&capped, body, now).await else {
        panic!("a second reservation of {reserved} does not fit in 1000")
    };
    assert_eq!(hit.kind, LimitKind::DailyTokens);
    // The call used 150: the 457 it did not use go back into this process's lease, with no
    // store write, and serve the next calls from there.
    assert!(limiter.settle(grant, 150).is_none());
    let day = WindowKind::Day.containing(now).id;
    assert_eq!(
        store.levels("c", std::slice::from_ref(&day)).await.unwrap(),
        vec![Level {
            requests: 1,
            tokens: reserved
        }]
    );
    limiter.give_back_leases().await;
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

/// A quota store that counts its writes, each taking `delay` (a remote store's latency).
struct CountingQuotas {
    inner: Arc<MemoryStore>,
    writes: std::sync::atomic::AtomicUsize,
    delay: Duration,
}

#[async_trait::async_trait]
impl store::Quotas for CountingQuotas {
    async fn reserve(
        &self,
        customer_id: &str,
        charges: &[store::QuotaCharge],
    ) -> store::Result<store::Reservation> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.reserve(customer_id, charges).await
    }
    async fn adjust(
        &self,
        customer_id: &str,
        adjustments: &[store::QuotaAdjustment],
    ) -> store::Result<()> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.adjust(customer_id, adjustments).await
    }
    async fn levels(&self, customer_id: &str, windows: &[String]) -> store::Result<Vec<Level>> {
        self.inner.levels(customer_id, windows).await
    }
}

fn strict_limiters(
    store: &Arc<MemoryStore>,
    count: usize,
) -> (Vec<Arc<Limiter>>, Arc<CountingQuotas>) {
    strict_limiters_with_delay(store, count, Duration::ZERO)
}

fn strict_limiters_with_delay(
    store: &Arc<MemoryStore>,
    count: usize,
    delay: Duration,
) -> (Vec<Arc<Limiter>>, Arc<CountingQuotas>) {
    let quotas = Arc::new(CountingQuotas {
        inner: Arc::clone(store),
        writes: std::sync::atomic::AtomicUsize::new(0),
        delay,
    });
    let limiters = (0..count)
        .map(|_| {
            Arc::new(Limiter::new(
                store.clone(),
                quotas.clone(),
                AdmissionSettings {
                    default_mode: EnforcementMode::Strict,
                    ..AdmissionSettings::default()
                },
            ))
        })
        .collect();
    (limiters, quotas)
}

#[tokio::test]
async fn strict_mode_leases_blocks_and_writes_once_per_block_not_per_call() {
    let store = Arc::new(MemoryStore::new());
    let (limiters, quotas) = strict_limiters(&store, 1);
    let capped = customer(Limits {
        daily_request_limit: Some(100_000),
        ..Limits::default()
    });
    let now = Utc::now();
    for _ in 0..5_000 {
        assert!(admitted(&limiters[0].admit(&capped, b"{}", now).await));
    }
    let writes = quotas.writes.load(std::sync::atomic::Ordering::SeqCst);
    // Blocks of 1, 2, 4, … 512, then 1000s: 10 + 4 blocks for 5,000 calls.
    assert!(writes <= 16, "{writes} store writes for 5,000 calls");
    let day = WindowKind::Day.containing(now).id;
    let held = store.levels("c", std::slice::from_ref(&day)).await.unwrap()[0].requests;
    assert!(held >= 5_000, "the store counts every block: {held}");
    // At shutdown the unspent part goes back: the store holds exactly the calls admitted.
    limiters[0].give_back_leases().await;
    assert_eq!(store.levels("c", &[day]).await.unwrap()[0].requests, 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_three_proxies_never_pass_a_cap_and_leave_at_most_a_block() {
    const LIMIT: u64 = 500;
    let store = Arc::new(MemoryStore::new());
    let (limiters, _quotas) = strict_limiters(&store, 3);
    let capped = customer(Limits {
        daily_request_limit: Some(LIMIT),
        ..Limits::default()
    });
    let now = Utc::now();
    // 3 proxies, 8 concurrent clients each, 40 calls per client: 960 calls for 500.
    let tasks: Vec<_> = (0..24)
        .map(|client| {
            let (limiter, capped) = (Arc::clone(&limiters[client % 3]), capped.clone());
            tokio::spawn(async move {
                let mut admitted_here = 0_u64;
                for _ in 0..40 {
                    admitted_here += u64::from(admitted(&limiter.admit(&capped, b"{}", now).await));
                }
                admitted_here
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert!(total <= LIMIT, "no overshoot: {total} admitted of {LIMIT}");
    let day = WindowKind::Day.containing(now).id;
    let charged = store.levels("c", std::slice::from_ref(&day)).await.unwrap()[0].requests;
    assert!(charged <= LIMIT);
    // Blocks shrink to one call near the cap: what the proxies hold unspent at the end is
    // at most one block of that size each.
    assert!(LIMIT - total <= 3, "{} unspent of {LIMIT}", LIMIT - total);
    for limiter in &limiters {
        limiter.give_back_leases().await;
    }
    assert_eq!(
        store.levels("c", &[day]).await.unwrap()[0].requests,
        total,
        "what was not spent went back"
    );
}

#[tokio::test]
async fn an_idle_lease_goes_back_and_a_new_day_starts_a_new_one() {
    let store = Arc::new(MemoryStore::new());
    let (limiters, _quotas) = strict_limiters(&store, 1);
    let limiter = &limiters[0];
    let capped = customer(Limits {
        daily_request_limit: Some(1_000),
        ..Limits::default()
    });
    let day_one = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 0).unwrap();
    for _ in 0..20 {
        assert!(admitted(&limiter.admit(&capped, b"{}", day_one).await));
    }
    let first_day = WindowKind::Day.containing(day_one).id;
    assert!(
        store
            .levels("c", std::slice::from_ref(&first_day))
            .await
            .unwrap()[0]
            .requests
            > 20
    );
    // The next day's first call gives the old day's block back and leases in the new day.
    let day_two = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 1).unwrap();
    assert!(admitted(&limiter.admit(&capped, b"{}", day_two).await));
    assert_eq!(
        store.levels("c", &[first_day]).await.unwrap()[0].requests,
        20
    );
    // Idle leases go back only once idle for the period.
    let second_day = WindowKind::Day.containing(day_two).id;
    limiter.strict.give_back_idle(Duration::from_secs(60)).await;
    let held = store
        .levels("c", std::slice::from_ref(&second_day))
        .await
        .unwrap()[0]
        .requests;
    assert!(held >= 1);
    limiter.strict.give_back_idle(Duration::ZERO).await;
    assert_eq!(
        store.levels("c", &[second_day]).await.unwrap()[0].requests,
        1
    );
}

#[tokio::test]
async fn tokens_spent_above_reservations_are_topped_up_by_blocks_not_per_call() {
    let store = Arc::new(MemoryStore::new());
    let (limiters, quotas) = strict_limiters(&store, 1);
    let limiter = &limiters[0];
    let budget = customer(Limits {
        daily_token_limit: Some(1_000_000_000),
        ..Limits::default()
    });
    let now = Utc::now();
    let body = br#"{"max_tokens":100}"#;
    // Every call uses 50 tokens more than it reserved: the lease's tokens run out before
    // its requests, and each top-up must cover a block of calls, not the next one.
    for _ in 0..2_000 {
        let Admission::Admit(grant) = limiter.admit(&budget, body, now).await else {
            panic!("far under the budget")
        };
        let Grant::Strict {
            reserved_tokens, ..
        } = &grant
        else {
            panic!("a strict grant")
        };
        let actual = reserved_tokens + 50;
        if let Some(write) = limiter.settle(grant, actual) {
            write.await;
        }
    }
    let writes = quotas.writes.load(std::sync::atomic::Ordering::SeqCst);
    assert!(writes <= 40, "{writes} store writes for 2,000 calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_settlements_during_a_slow_block_request_use_the_lease_in_place() {
    let store = Arc::new(MemoryStore::new());
    // Every store write takes 20 ms, as a remote store under load might.
    let (limiters, quotas) = strict_limiters_with_delay(&store, 1, Duration::from_millis(20));
    let limiter = Arc::clone(&limiters[0]);
    let budget = customer(Limits {
        daily_request_limit: Some(1_000_000_000),
        daily_token_limit: Some(1_000_000_000_000),
        ..Limits::default()
    });
    let now = Utc::now();
    // 16 concurrent clients, 32 calls each; half the calls use less than they reserved and
    // half more, settling while blocks are being requested.
    let tasks: Vec<_> = (0..16)
        .map(|client| {
            let (limiter, budget) = (Arc::clone(&limiter), budget.clone());
            tokio::spawn(async move {
                for _ in 0..32 {
                    let Admission::Admit(grant) =
                        limiter.admit(&budget, br#"{"max_tokens":100}"#, now).await
                    else {
                        panic!("far under the limits")
                    };
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let actual = if client % 2 == 0 { 30 } else { 300 };
                    if let Some(write) = limiter.settle(grant, actual) {
                        write.await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let writes = quotas.writes.load(std::sync::atomic::Ordering::SeqCst);
    // Blocks of 1, 2, 4, … 256 for 512 calls, and with each refill one write of the tokens
    // calls used beyond what the lease held: about 2 writes per block, never one per call.
    assert!(writes <= 24, "{writes} store writes for 512 calls");
    limiter.give_back_leases().await;
    let day = WindowKind::Day.containing(now).id;
    let level = store.levels("c", &[day]).await.unwrap()[0];
    assert_eq!(level.requests, 512);
    assert_eq!(
        level.tokens,
        256 * 30 + 256 * 300,
        "the store holds the actual tokens"
    );
}
