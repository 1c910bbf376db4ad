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
            store::contract::sourced_at("p", index as u64 + 1, event)
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
