//! The alert engine on the memory backend: each rule fires exactly once on crafted
//! traffic, stays quiet on normal traffic, and a failing destination loses nothing else.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Duration, TimeZone};
use schemas::{Limits, Outcome, UsageEvent};
use store::contract::registry::{audit_for, new_customer, new_key};
use store::contract::{day, event_on};
use store::memory::MemoryStore;
use store::{Counters, SourcedEvent};

use super::*;

/// Records what it is given; fails the first `failures` deliveries.
#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<RecordedAlert>>,
    failures: Mutex<u32>,
}

#[async_trait]
impl Notifier for Recorder {
    fn describe(&self) -> String {
        "recorder".into()
    }
    async fn notify(&self, alert: &RecordedAlert) -> store::Result<()> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(store::StoreError::Unavailable("recorder is down".into()));
        }
        self.received.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

impl Recorder {
    fn keys(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|alert| alert.alert.key())
            .collect()
    }
}

struct Fixture {
    store: Arc<MemoryStore>,
    recorder: Arc<Recorder>,
    engine: AlertEngine,
    batches: u32,
}

impl Fixture {
    fn new() -> Self {
        Self::with_settings(AlertSettings {
            error_rate_min_calls: 20,
            ..AlertSettings::default()
        })
    }

    fn with_settings(settings: AlertSettings) -> Self {
        let store = Arc::new(MemoryStore::new());
        let recorder = Arc::new(Recorder::default());
        let engine = AlertEngine::new(
            store.clone(),
            store.clone(),
            store.clone(),
            vec![recorder.clone()],
            AlertSettings {
                delivery_attempts: 2,
                ..settings
            },
        );
        Self {
            store,
            recorder,
            engine,
            batches: 0,
        }
    }

    async fn customer(&self, limits: Limits) -> String {
        let mut customer = new_customer();
        customer.limits = limits;
        let key = new_key(&customer.customer_id);
        self.store
            .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
            .await
            .unwrap();
        customer.customer_id
    }

    async fn daily_limited(&self, limit: u64) -> String {
        self.customer(Limits {
            daily_request_limit: Some(limit),
            ..Limits::default()
        })
        .await
    }

    /// Counts a batch and evaluates it, as the applier does; returns the new alert keys.
    async fn meter(&mut self, events: &[UsageEvent]) -> Vec<String> {
        self.batches += 1;
        let sourced: Vec<SourcedEvent> = events
            .iter()
            .enumerate()
            .map(|(index, event)| SourcedEvent {
                partition: format!("batch{}", self.batches).into(),
                position: (index + 1).to_string().into(),
                event: event.clone(),
            })
            .collect();
        self.store.apply(&sourced).await.unwrap();
        let owned: Vec<&UsageEvent> = events.iter().collect();
        self.engine
            .evaluate(&owned)
            .await
            .unwrap()
            .iter()
            .map(Alert::key)
            .collect()
    }
}

/// `count` calls of `customer` at `at`, each with 100 input and 50 output tokens.
fn calls_at(customer: &str, at: DateTime<Utc>, count: usize, outcome: Outcome) -> Vec<UsageEvent> {
    (0..count)
        .map(|_| {
            let mut event = event_on(customer, day(0), "model-a", outcome, 100, 50);
            event.occurred_at = at;
            event
        })
        .collect()
}

fn this_hour() -> DateTime<Utc> {
    hour_start(Utc::now())
}

#[tokio::test]
async fn usage_alerts_fire_once_at_80_and_once_at_100_percent() {
    let mut fixture = Fixture::new();
    let customer = fixture.daily_limited(10).await;
    let now = Utc::now();
    let mut raised = Vec::new();
    for call in 1..=14 {
        let outcome = if call > 10 {
            Outcome::RejectedLimit
        } else {
            Outcome::Success
        };
        let keys = fixture.meter(&calls_at(&customer, now, 1, outcome)).await;
        raised.push((call, keys));
    }
    let today = now.date_naive();
    let fired: Vec<(i32, Vec<String>)> = raised
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    assert_eq!(
        fired,
        vec![
            (
                8,
                vec![format!("usage_80|{customer}|daily_requests:day:{today}")]
            ),
            (
                10,
                vec![format!("usage_100|{customer}|daily_requests:day:{today}")]
            ),
        ],
        "refused calls past the limit raise nothing more"
    );
    assert_eq!(fixture.recorder.keys().len(), 2, "each delivered once");
}

#[tokio::test]
async fn a_per_minute_rate_alerts_at_most_once_an_hour() {
    let mut fixture = Fixture::new();
    let customer = fixture
        .customer(Limits {
            requests_per_minute: Some(10),
            ..Limits::default()
        })
        .await;
    let minute = WindowKind::Minute.containing(Utc::now()).starts_at;
    let hour = hour_id(hour_start(minute));
    assert!(
        fixture
            .meter(&calls_at(&customer, minute, 7, Outcome::Success))
            .await
            .is_empty()
    );
    assert_eq!(
        fixture
            .meter(&calls_at(&customer, minute, 1, Outcome::Success))
            .await,
        vec![format!(
            "usage_80|{customer}|requests_per_minute:hour:{hour}"
        )]
    );
    // Another busy minute in the same hour is the same alert.
    let next_minute = if minute + Duration::minutes(1) < hour_start(minute) + Duration::hours(1) {
        minute + Duration::minutes(1)
    } else {
        minute - Duration::minutes(1)
    };
    assert!(
        fixture
            .meter(&calls_at(&customer, next_minute, 8, Outcome::Success))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_error_rate_alert_fires_once_when_the_hour_turns_bad() {
    let mut fixture = Fixture::new();
    let customer = fixture.customer(Limits::default()).await;
    let at = Utc::now();
    let hour = hour_id(hour_start(at));
    assert!(
        fixture
            .meter(&calls_at(&customer, at, 28, Outcome::Success))
            .await
            .is_empty()
    );
    assert!(
        fixture
            .meter(&calls_at(&customer, at, 2, Outcome::UpstreamError))
            .await
            .is_empty(),
        "2 failures in 30 calls (6.7%) is under the 10% threshold"
    );
    assert_eq!(
        fixture
            .meter(&calls_at(&customer, at, 5, Outcome::UpstreamError))
            .await,
        vec![format!("error_rate|{customer}|hour:{hour}")],
        "7 of 35 (20%)"
    );
    assert!(
        fixture
            .meter(&calls_at(&customer, at, 10, Outcome::UpstreamError))
            .await
            .is_empty(),
        "already raised for this hour"
    );
}

#[tokio::test]
async fn a_few_errors_from_a_quiet_customer_are_not_an_alert() {
    let mut fixture = Fixture::new();
    let customer = fixture.customer(Limits::default()).await;
    let at = Utc::now();
    assert!(
        fixture
            .meter(&calls_at(&customer, at, 5, Outcome::UpstreamError))
            .await
            .is_empty(),
        "5 calls are too few to judge"
    );
}

/// A day of steady traffic: 95 to 105 calls an hour.
async fn steady_history(fixture: &mut Fixture, customer: &str, hour: DateTime<Utc>) {
    for hours_ago in 1..=24_i64 {
        let count = 95 + usize::try_from(hours_ago % 11).unwrap();
        let at = hour - Duration::hours(hours_ago) + Duration::minutes(30);
        fixture
            .meter(&calls_at(customer, at, count, Outcome::Success))
            .await;
    }
}

#[tokio::test]
async fn a_spike_far_above_the_customers_own_baseline_fires_once_per_measure() {
    let mut fixture = Fixture::new();
    let customer = fixture.customer(Limits::default()).await;
    let hour = this_hour();
    steady_history(&mut fixture, &customer, hour).await;
    assert!(
        fixture.recorder.keys().is_empty(),
        "the history itself is normal"
    );
    let id = hour_id(hour);
    assert!(
        fixture
            .meter(&calls_at(
                &customer,
                hour + Duration::minutes(1),
                100,
                Outcome::Success
            ))
            .await
            .is_empty(),
        "a usual hour"
    );
    let spike = fixture
        .meter(&calls_at(
            &customer,
            hour + Duration::minutes(2),
            300,
            Outcome::Success,
        ))
        .await;
    assert_eq!(
        spike,
        vec![
            format!("unusual_usage|{customer}|calls:hour:{id}"),
            format!("unusual_usage|{customer}|tokens:hour:{id}"),
        ]
    );
    assert!(
        fixture
            .meter(&calls_at(
                &customer,
                hour + Duration::minutes(3),
                300,
                Outcome::Success
            ))
            .await
            .is_empty(),
        "once per hour"
    );
}

#[tokio::test]
async fn normal_traffic_raises_nothing() {
    let mut fixture = Fixture::new();
    let customer = fixture
        .customer(Limits {
            daily_request_limit: Some(100_000),
            monthly_token_limit: Some(1_000_000_000),
            requests_per_minute: Some(1_000),
            ..Limits::default()
        })
        .await;
    let hour = this_hour();
    steady_history(&mut fixture, &customer, hour).await;
    for minute in 0..5 {
        let at = hour + Duration::minutes(minute);
        let mut batch = calls_at(&customer, at, 20, Outcome::Success);
        batch.extend(calls_at(&customer, at, 1, Outcome::UpstreamError));
        assert!(fixture.meter(&batch).await.is_empty());
    }
    assert!(fixture.recorder.keys().is_empty());
    assert!(
        fixture
            .store
            .since(Utc.timestamp_opt(0, 0).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_new_customer_without_history_is_not_judged_unusual() {
    let mut fixture = Fixture::new();
    let customer = fixture.customer(Limits::default()).await;
    assert!(
        fixture
            .meter(&calls_at(&customer, Utc::now(), 500, Outcome::Success))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn evaluating_the_same_batch_again_delivers_nothing_new() {
    let mut fixture = Fixture::new();
    let customer = fixture.daily_limited(10).await;
    let events = calls_at(&customer, Utc::now(), 9, Outcome::Success);
    assert_eq!(fixture.meter(&events).await.len(), 1);
    let again: Vec<&UsageEvent> = events.iter().collect();
    assert!(fixture.engine.evaluate(&again).await.unwrap().is_empty());
    assert_eq!(fixture.recorder.keys().len(), 1);
}

#[tokio::test]
async fn a_destination_down_is_retried_then_counted_and_the_alert_stays_listed() {
    let mut fixture = Fixture::new();
    let customer = fixture.daily_limited(10).await;
    *fixture.recorder.failures.lock().unwrap() = 1;
    assert_eq!(
        fixture
            .meter(&calls_at(&customer, Utc::now(), 8, Outcome::Success))
            .await
            .len(),
        1
    );
    assert_eq!(fixture.recorder.keys().len(), 1, "delivered on the retry");
    *fixture.recorder.failures.lock().unwrap() = 5;
    assert_eq!(
        fixture
            .meter(&calls_at(&customer, Utc::now(), 2, Outcome::Success))
            .await
            .len(),
        1
    );
    assert_eq!(fixture.recorder.keys().len(), 1);
    assert_eq!(
        fixture
            .engine
            .stats
            .delivery_failures
            .load(Ordering::Relaxed),
        1
    );
    let listed = fixture
        .store
        .since(Utc.timestamp_opt(0, 0).unwrap())
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        2,
        "both alerts are listed by `tollgate alerts`"
    );
}
