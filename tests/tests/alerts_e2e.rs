//! Alerts end to end on the embedded default: `tollgate serve` with a signed webhook, real
//! calls through the proxy to the fake Bedrock, and a crafted history for the anomaly rule.
//! Each rule fires exactly once, delivered to the webhook and listed by `tollgate alerts`;
//! a customer with normal traffic raises nothing.
#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use schemas::Outcome;
use schemas::alert::RecordedAlert;
use schemas::usage_counts::{hour_id, hour_start};
use store::contract::notify::Receiver;
use store::notify::webhook::signature;
use store::{EventAppender, LogRecord};
use tests::fake_bedrock::{Behavior, FakeBedrock};
use tests::harness::Tollgate;

const SECRET: &str = "webhook-signing-secret";

/// The windows are hours and days: a test that straddles an hour's end would see its
/// traffic split in two. Starts clear of it (waits at most two minutes, rarely).
async fn wait_clear_of_the_hour_end() {
    let now = Utc::now();
    let next_hour = hour_start(now) + chrono::Duration::hours(1);
    let left = next_hour - now;
    if left < chrono::Duration::minutes(2) {
        tokio::time::sleep((left + chrono::Duration::seconds(1)).to_std().unwrap()).await;
    }
}

/// A day of steady history for `customer_id`, about ten calls an hour, written straight to
/// the embedded log as a proxy would have. Returns how many of them fall on today (UTC).
async fn seed_history(tollgate: &Tollgate, customer_id: &str) -> u64 {
    let log = store::embedded::EmbeddedStore::open(&tollgate.data_dir.join("tollgate.db")).unwrap();
    let this_hour = hour_start(Utc::now());
    let mut records = Vec::new();
    for hours_ago in 1..=24_i64 {
        for call in 0..(9 + hours_ago % 3) {
            let mut event = store::contract::event_on(
                customer_id,
                Utc::now().date_naive(),
                "anthropic.claude-3-sonnet-20240229-v1:0",
                Outcome::Success,
                10,
                10,
            );
            event.occurred_at =
                this_hour - chrono::Duration::hours(hours_ago) + chrono::Duration::minutes(call);
            records.push(LogRecord {
                partition_key: customer_id.to_owned(),
                data: event.encode_json().unwrap().into(),
            });
        }
    }
    log.append(&records).await.unwrap();
    let today = Utc::now().date_naive();
    records
        .iter()
        .filter(|record| {
            schemas::UsageEvent::decode_json(&record.data)
                .unwrap()
                .day()
                == today
        })
        .count() as u64
}

/// Waits until the webhook has received `count` alerts, then a little longer to catch any
/// extra one; returns them.
async fn alerts_received(receiver: &Receiver, count: usize) -> Vec<RecordedAlert> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.requests().len() < count {
        assert!(
            Instant::now() < deadline,
            "expected {count} alerts, received {:?}",
            receiver
                .requests()
                .iter()
                .map(|request| String::from_utf8_lossy(&request.body).into_owned())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    receiver
        .requests()
        .iter()
        .map(|request| {
            assert_eq!(
                request.header("x-tollgate-signature"),
                Some(signature(SECRET, &request.body)),
                "every delivery is signed"
            );
            serde_json::from_slice(&request.body).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_fires_exactly_once_and_normal_traffic_stays_quiet() {
    let tollgate = Tollgate::new();
    let fake = FakeBedrock::start().await;
    let receiver = Receiver::start().await;
    let (limited, limited_token) = tollgate.create_customer("Limited Co", Some(10));
    let (failing, failing_token) = tollgate.create_customer("Failing Co", None);
    let (spiky, spiky_token) = tollgate.create_customer("Spiky Co", None);
    let (steady, steady_token) = tollgate.create_customer("Steady Co", Some(1_000));
    // Clear of the hour's end before seeding: the seeded history is counted against
    // today and this hour, which must still be today and this hour when the calls run.
    wait_clear_of_the_hour_end().await;
    let spiky_seeded_today = seed_history(&tollgate, &spiky).await;
    seed_history(&tollgate, &steady).await;

    let upstream = fake.endpoint_url();
    let webhook = receiver.url("/tollgate-alerts");
    // The secret comes from the environment, as documented.
    let server = tollgate.serve_with_env(
        &[("TOLLGATE_ALERT_WEBHOOK_SECRET", SECRET)],
        &[
            "--upstream",
            "bedrock",
            "--bedrock-endpoint-url",
            &upstream,
            "--alert-webhook-url",
            &webhook,
            "--alert-error-min-calls",
            "5",
            "--alert-anomaly-min-calls",
            "20",
            "--alert-anomaly-min-tokens",
            "100000000",
        ],
    );
    let this_hour = hour_id(hour_start(Utc::now()));
    let today = Utc::now().date_naive();

    // Normal traffic: ten calls against a limit of 1,000, with its usual hourly volume.
    assert!(
        server
            .spec_calls(&steady_token, 10)
            .await
            .iter()
            .all(|status| *status == 200)
    );
    // Usage: 12 calls against a limit of 10; the last two are refused.
    let statuses = server.spec_calls(&limited_token, 12).await;
    assert_eq!(statuses.iter().filter(|status| **status == 429).count(), 2);
    // Unusual usage: 40 calls in an hour from a customer who makes about ten.
    assert!(
        server
            .spec_calls(&spiky_token, 40)
            .await
            .iter()
            .all(|status| *status == 200)
    );
    // Error rate: Bedrock fails every call of a customer for a while.
    fake.set_behavior(Behavior::ServerError);
    let statuses = server.spec_calls(&failing_token, 6).await;
    assert!(statuses.iter().all(|status| *status >= 500), "{statuses:?}");
    fake.set_behavior(Behavior::Normal);

    tollgate
        .wait_for_usage(&failing, |totals| totals["requests"] == 6)
        .await;
    let received = alerts_received(&receiver, 4).await;
    let keys: BTreeSet<String> = received.iter().map(|alert| alert.alert.key()).collect();
    let expected: BTreeSet<String> = [
        format!("usage_80|{limited}|daily_requests:day:{today}"),
        format!("usage_100|{limited}|daily_requests:day:{today}"),
        format!("unusual_usage|{spiky}|calls:hour:{this_hour}"),
        format!("error_rate|{failing}|hour:{this_hour}"),
    ]
    .into();
    assert_eq!(keys, expected, "each rule once; nothing for {steady}");
    assert_eq!(received.len(), 4, "no alert delivered twice");

    // More traffic in the same windows raises nothing new.
    server.spec_calls(&limited_token, 2).await;
    server.spec_calls(&spiky_token, 5).await;
    tollgate
        .wait_for_usage(&limited, |totals| totals["rejected"] == 4)
        .await;
    tollgate
        .wait_for_usage(&spiky, |totals| {
            totals["requests"] == spiky_seeded_today + 45
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.requests().len(), 4);

    let listed = tollgate.run_json(&["alerts", "--since", "1h"]);
    let listed_keys: BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| {
            format!(
                "{}|{}|{}",
                alert["rule"].as_str().unwrap(),
                alert["customer_id"].as_str().unwrap(),
                alert["window"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        listed_keys, expected,
        "`tollgate alerts` lists what was delivered"
    );
    server.terminate();
}
