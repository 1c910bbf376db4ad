//! The DynamoDB counters interrupted at every point between the steps of one batch (as a
//! metering process dying there would leave them), then applied again the ways a consumer
//! does: the whole batch, a longer one, or a bisected one. Every event is counted once.
//! Needs the emulator and the dummy credentials `scripts/test.sh` exports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use schemas::{Outcome, UsageEvent};
use store::aws::DynamoCounters;
use store::aws::dynamo_counters::ApplyStop;
use store::contract::{day, event_on, sourced_at, unique};
use store::{Counters, SourcedEvent};
use tests::aws_env::{create_fresh_table, emulator_config};

/// Twelve events of two customers, two models and two producers: six cells (four daily,
/// two hourly) and two producers' ranges.
fn events() -> (Vec<String>, Vec<UsageEvent>) {
    let customers = vec![unique("cust"), unique("cust")];
    let second_producer = unique("producer");
    let events = (0..12)
        .map(|index| {
            let mut event = event_on(
                &customers[index % 2],
                day(0),
                if index % 3 == 0 { "model-a" } else { "model-b" },
                Outcome::Success,
                10,
                1,
            );
            if index % 4 == 0 {
                event.proxy_instance = second_producer.as_str().into();
            }
            event
        })
        .collect();
    (customers, events)
}

fn batch(partition: &str, events: &[UsageEvent]) -> Vec<SourcedEvent> {
    (1..)
        .zip(events)
        .map(|(position, event)| sourced_at(partition, position, event.clone()))
        .collect()
}

async fn requests(counters: &DynamoCounters, customers: &[String]) -> u64 {
    let mut total = 0;
    for customer in customers {
        for cell in counters.read_daily(customer, day(0), day(0)).await.unwrap() {
            total += cell.counts.requests;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_interrupted_anywhere_and_applied_again_counts_each_event_once() {
    let client = aws_sdk_dynamodb::Client::new(&emulator_config().await);
    let stops = [
        ApplyStop::AfterCells(0),
        ApplyStop::AfterCells(1),
        ApplyStop::AfterCells(3),
        ApplyStop::AfterProducers(0),
        ApplyStop::AfterProducers(1),
    ];
    for stop in stops {
        for retry in ["whole", "longer", "bisected"] {
            let table = create_fresh_table("counter-faults").await;
            let counters = DynamoCounters::new(client.clone(), &table, Duration::from_secs(3600));
            let (customers, events) = events();
            let all = batch(&unique("shard"), &events);
            let interrupted = counters.apply_interrupted(&all[..8], stop).await;
            assert!(interrupted.is_err(), "{stop:?}: the apply was interrupted");
            match retry {
                "whole" => {
                    counters.apply(&all[..8]).await.unwrap();
                    counters.apply(&all[8..]).await.unwrap();
                }
                "longer" => {
                    counters.apply(&all).await.unwrap();
                }
                _ => {
                    counters.apply(&all[..4]).await.unwrap();
                    counters.apply(&all[4..8]).await.unwrap();
                    counters.apply(&all[8..]).await.unwrap();
                }
            }
            assert_eq!(
                requests(&counters, &customers).await,
                12,
                "{stop:?}, then the {retry} batch"
            );
            // Everything delivered again, and one event sent again at a new position.
            let again = counters.apply(&all).await.unwrap();
            assert_eq!(again.counted, 0, "{stop:?}, {retry}");
            let mut resent = all[3].clone();
            resent.position = "13".into();
            let copy = counters.apply(&[resent]).await.unwrap();
            assert_eq!((copy.counted, copy.duplicates), (0, 1), "{stop:?}, {retry}");
            assert_eq!(requests(&counters, &customers).await, 12);
        }
    }
}
