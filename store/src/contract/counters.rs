//! The `Counters` contract suite.

use schemas::{ApiRequests, ApiSurface, Outcome, UsageCounts, UsageEvent};

use super::{day, event_on, unique};
use crate::StoreError;
use crate::counters::{ApplyReport, Counters, SourcedEvent};

/// Runs every scenario against one backend.
pub async fn run_all(counters: &dyn Counters) {
    applying_counts_requests_tokens_errors_and_rejections(counters).await;
    applying_the_same_batch_twice_counts_once(counters).await;
    overlapping_batches_count_each_event_once(counters).await;
    the_same_event_from_another_source_is_a_duplicate(counters).await;
    duplicates_within_one_batch_count_once(counters).await;
    concurrent_applies_of_one_batch_count_once(counters).await;
    concurrent_overlapping_batches_count_each_event_once(counters).await;
    the_same_number_from_two_producers_counts_twice(counters).await;
    partitions_are_applied_independently(counters).await;
    reads_filter_by_customer_and_day_range(counters).await;
    hourly_cells_count_each_event_once_per_hour(counters).await;
    admitted_calls_count_by_api_in_daily_and_hourly_cells(counters).await;
}

/// The events as consecutive records of `partition`, one event per record, from position 1.
fn sourced(events: &[UsageEvent], partition: &str) -> Vec<SourcedEvent> {
    sourced_from(events, partition, 1)
}

/// The events as consecutive records of `partition`, from position `first`.
fn sourced_from(events: &[UsageEvent], partition: &str, first: u64) -> Vec<SourcedEvent> {
    (first..)
        .zip(events)
        .map(|(position, event)| SourcedEvent {
            partition: partition.into(),
            position: position.to_string().into(),
            event: event.clone(),
        })
        .collect()
}

/// Applies a batch; a retryable refusal (another consumer holds the partition) is retried
/// until the batch goes through, as the consumers do.
async fn apply_until_done(counters: &dyn Counters, batch: &[SourcedEvent]) -> ApplyReport {
    for _ in 0..50 {
        match counters.apply(batch).await {
            Ok(report) => return report,
            Err(StoreError::Unavailable(_) | StoreError::Conflict(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => panic!("apply failed: {error}"),
        }
    }
    panic!("apply kept being refused")
}

async fn total(counters: &dyn Counters, customer_id: &str) -> UsageCounts {
    let cells = counters
        .read_daily(customer_id, day(0), day(27))
        .await
        .unwrap();
    schemas::usage_counts::total_counts(cells.iter().map(|cell| &cell.counts))
}

async fn applying_counts_requests_tokens_errors_and_rejections(counters: &dyn Counters) {
    let customer = unique("cust");
    let events = vec![
        event_on(&customer, day(0), "model-a", Outcome::Success, 10, 20),
        event_on(&customer, day(0), "model-a", Outcome::UpstreamError, 5, 0),
        event_on(&customer, day(0), "model-b", Outcome::RejectedLimit, 0, 0),
        event_on(&customer, day(1), "model-a", Outcome::Success, 1, 2),
    ];
    let report = counters
        .apply(&sourced(&events, &unique("p")))
        .await
        .unwrap();
    assert_eq!(report.counted, 4);
    assert_eq!(report.duplicates, 0);

    let cells = counters
        .read_daily(&customer, day(0), day(1))
        .await
        .unwrap();
    let summary: Vec<(chrono::NaiveDate, &str, u64, u64, u64, u64, u64)> = cells
        .iter()
        .map(|cell| {
            (
                cell.day,
                cell.model_id.as_str(),
                cell.counts.requests,
                cell.counts.rejected,
                cell.counts.errors,
                cell.counts.input_tokens,
                cell.counts.output_tokens,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (day(0), "model-a", 2, 0, 1, 15, 20),
            (day(0), "model-b", 0, 1, 0, 0, 0),
            (day(1), "model-a", 1, 0, 0, 1, 2),
        ]
    );
}

async fn applying_the_same_batch_twice_counts_once(counters: &dyn Counters) {
    let customer = unique("cust");
    let events: Vec<_> = (0..3)
        .map(|_| event_on(&customer, day(2), "model-a", Outcome::Success, 7, 3))
        .collect();
    let batch = sourced(&events, &unique("p"));
    counters.apply(&batch).await.unwrap();
    let again = counters.apply(&batch).await.unwrap();
    assert_eq!(again.counted, 0);
    assert_eq!(again.duplicates, 3, "a retry's events are already counted");
    let counts = total(counters, &customer).await;
    assert_eq!(
        (counts.requests, counts.input_tokens, counts.output_tokens),
        (3, 21, 9)
    );
}

async fn overlapping_batches_count_each_event_once(counters: &dyn Counters) {
    let customer = unique("cust");
    let events: Vec<_> = (0..4)
        .map(|_| event_on(&customer, day(3), "model-a", Outcome::Success, 1, 1))
        .collect();
    let all = sourced(&events, &unique("p"));
    counters.apply(&all[0..3]).await.unwrap();
    let second = counters.apply(&all[0..4]).await.unwrap();
    assert_eq!((second.counted, second.duplicates), (1, 3));
    let third = counters.apply(&all[2..4]).await.unwrap();
    assert_eq!((third.counted, third.duplicates), (0, 2));
    assert_eq!(total(counters, &customer).await.requests, 4);
}

async fn the_same_event_from_another_source_is_a_duplicate(counters: &dyn Counters) {
    let customer = unique("cust");
    let event = event_on(&customer, day(4), "model-a", Outcome::Success, 2, 2);
    let later = event_on(&customer, day(4), "model-a", Outcome::Success, 2, 2);
    let partition = unique("p");
    counters
        .apply(&sourced(std::slice::from_ref(&event), &partition))
        .await
        .unwrap();
    // The proxy sent the same record again (an append that timed out but had succeeded):
    // it sits at a later position, next to a new event.
    let resent = counters
        .apply(&sourced_from(&[event.clone(), later], &partition, 2))
        .await
        .unwrap();
    assert_eq!((resent.counted, resent.duplicates), (1, 1));
    // The copy can also land in another partition (a reshard moved its producer's key).
    let copy_elsewhere = counters
        .apply(&sourced(&[event], &unique("p")))
        .await
        .unwrap();
    assert_eq!((copy_elsewhere.counted, copy_elsewhere.duplicates), (0, 1));
    assert_eq!(total(counters, &customer).await.requests, 2);
}

async fn duplicates_within_one_batch_count_once(counters: &dyn Counters) {
    let customer = unique("cust");
    let event = event_on(&customer, day(5), "model-a", Outcome::Success, 4, 4);
    let batch = sourced(&[event.clone(), event], &unique("p"));
    let report = counters.apply(&batch).await.unwrap();
    assert_eq!((report.counted, report.duplicates), (1, 1));
    assert_eq!(total(counters, &customer).await.input_tokens, 4);
}

async fn concurrent_applies_of_one_batch_count_once(counters: &dyn Counters) {
    let customer = unique("cust");
    let events: Vec<_> = (0..20)
        .map(|_| event_on(&customer, day(6), "model-a", Outcome::Success, 1, 0))
        .collect();
    let batch = sourced(&events, &unique("p"));
    let (first, second) = tokio::join!(
        apply_until_done(counters, &batch),
        apply_until_done(counters, &batch)
    );
    assert_eq!(first.counted + second.counted, 20);
    assert_eq!(total(counters, &customer).await.requests, 20);
}

/// Two consumers reading one partition at once, from different places (an operator ran two
/// metering processes): every event is counted once. A backend may refuse one of them for
/// a while (a retryable error) but never loses or doubles an event.
async fn concurrent_overlapping_batches_count_each_event_once(counters: &dyn Counters) {
    let customer = unique("cust");
    let events: Vec<_> = (0..30)
        .map(|_| event_on(&customer, day(7), "model-a", Outcome::Success, 1, 0))
        .collect();
    let all = sourced(&events, &unique("p"));
    let (first, second, third) = tokio::join!(
        apply_until_done(counters, &all[0..20]),
        apply_until_done(counters, &all[0..30]),
        apply_until_done(counters, &all[0..10]),
    );
    let after = apply_until_done(counters, &all).await;
    assert_eq!(after.counted, 0);
    assert_eq!(first.counted + second.counted + third.counted, 30);
    assert_eq!(total(counters, &customer).await.requests, 30);
}

async fn the_same_number_from_two_producers_counts_twice(counters: &dyn Counters) {
    let customer = unique("cust");
    let mut first = event_on(&customer, day(8), "model-a", Outcome::Success, 1, 0);
    let mut second = first.clone();
    first.proxy_instance = unique("producer").into();
    second.proxy_instance = unique("producer").into();
    second.event_id = uuid::Uuid::now_v7();
    first.instance_seq = 1;
    second.instance_seq = 1;
    let report = counters
        .apply(&sourced(&[first, second], &unique("p")))
        .await
        .unwrap();
    assert_eq!((report.counted, report.duplicates), (2, 0));
    assert_eq!(total(counters, &customer).await.requests, 2);
}

/// Positions are per partition: the same positions in two partitions are different records.
async fn partitions_are_applied_independently(counters: &dyn Counters) {
    let customer = unique("cust");
    let events: Vec<_> = (0..4)
        .map(|_| event_on(&customer, day(9), "model-a", Outcome::Success, 1, 0))
        .collect();
    let mut batch = sourced(&events[0..2], &unique("p"));
    batch.extend(sourced(&events[2..4], &unique("p")));
    let report = counters.apply(&batch).await.unwrap();
    assert_eq!((report.counted, report.duplicates), (2 + 2, 0));
    assert_eq!(total(counters, &customer).await.requests, 4);
}

async fn reads_filter_by_customer_and_day_range(counters: &dyn Counters) {
    let customer = unique("cust");
    let other = unique("cust");
    let events = vec![
        event_on(&customer, day(10), "m", Outcome::Success, 1, 1),
        event_on(&customer, day(11), "m", Outcome::Success, 1, 1),
        event_on(&customer, day(12), "m", Outcome::Success, 1, 1),
        event_on(&other, day(11), "m", Outcome::Success, 1, 1),
    ];
    counters
        .apply(&sourced(&events, &unique("p")))
        .await
        .unwrap();
    let cells = counters
        .read_daily(&customer, day(11), day(11))
        .await
        .unwrap();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].day, day(11));
    assert_eq!(cells[0].counts.requests, 1);
    assert!(
        counters
            .read_daily(&unique("nobody"), day(0), day(27))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn hourly_cells_count_each_event_once_per_hour(counters: &dyn Counters) {
    use chrono::{Duration, Utc};
    use schemas::usage_counts::hour_start;
    let customer = unique("cust");
    let other = unique("cust");
    // Hourly cells are kept for a retention counted back from now, so the hours are recent.
    let this_hour = hour_start(Utc::now());
    let at = |hours_ago: i64, minute: i64, outcome: Outcome, customer: &str| {
        let mut event = event_on(customer, day(0), "m", outcome, 10, 5);
        event.occurred_at = this_hour - Duration::hours(hours_ago) + Duration::minutes(minute);
        event
    };
    let events = vec![
        at(3, 1, Outcome::Success, &customer),
        at(3, 59, Outcome::UpstreamError, &customer),
        at(1, 30, Outcome::RejectedLimit, &customer),
        at(0, 0, Outcome::Success, &customer),
        at(1, 0, Outcome::Success, &other),
    ];
    let batch = sourced(&events, &unique("p"));
    counters.apply(&batch).await.unwrap();
    counters.apply(&batch).await.unwrap();
    let hours = counters
        .read_hourly(&customer, this_hour - Duration::hours(3), this_hour)
        .await
        .unwrap();
    let summary: Vec<(i64, u64, u64, u64, u64)> = hours
        .iter()
        .map(|cell| {
            (
                (this_hour - cell.hour).num_hours(),
                cell.counts.requests,
                cell.counts.rejected,
                cell.counts.errors,
                cell.counts.input_tokens,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(3, 2, 0, 1, 20), (1, 0, 1, 0, 10), (0, 1, 0, 0, 10)],
        "oldest first, empty hours omitted, each event once"
    );
    let narrow = counters
        .read_hourly(
            &customer,
            this_hour - Duration::hours(2),
            this_hour - Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(narrow.len(), 1, "the range is inclusive and filters");
    assert!(
        counters
            .read_hourly(&customer, this_hour, this_hour - Duration::hours(1))
            .await
            .unwrap()
            .is_empty(),
        "an empty range reads nothing"
    );
}

/// Admitted calls count under the API their event names, in the daily and the hourly cells;
/// a rejected call under none, and an event written before the API was recorded (no `api`)
/// in `requests` only. Applied twice, counted once.
async fn admitted_calls_count_by_api_in_daily_and_hourly_cells(counters: &dyn Counters) {
    use chrono::Utc;
    use schemas::usage_counts::hour_start;
    let customer = unique("cust");
    let this_hour = hour_start(Utc::now());
    let through = |api: Option<ApiSurface>, outcome: Outcome| {
        let mut event = event_on(&customer, this_hour.date_naive(), "m", outcome, 3, 4);
        event.occurred_at = this_hour;
        event.api = api;
        event
    };
    let events = vec![
        through(Some(ApiSurface::Bedrock), Outcome::Success),
        through(Some(ApiSurface::Spec), Outcome::Success),
        through(Some(ApiSurface::Anthropic), Outcome::ClientAborted),
        through(Some(ApiSurface::OpenAi), Outcome::Success),
        through(Some(ApiSurface::OpenAi), Outcome::UpstreamError),
        through(Some(ApiSurface::OpenAi), Outcome::RejectedLimit),
        through(None, Outcome::Success),
    ];
    let batch = sourced(&events, &unique("p"));
    apply_until_done(counters, &batch).await;
    apply_until_done(counters, &batch).await;
    let expected = ApiRequests {
        bedrock: 1,
        spec: 1,
        anthropic: 1,
        openai: 2,
    };
    let today = this_hour.date_naive();
    let daily = counters.read_daily(&customer, today, today).await.unwrap();
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0].counts.by_api, expected);
    assert_eq!((daily[0].counts.requests, daily[0].counts.rejected), (6, 1));
    let hourly = counters
        .read_hourly(&customer, this_hour, this_hour)
        .await
        .unwrap();
    assert_eq!(hourly.len(), 1);
    assert_eq!(hourly[0].counts.by_api, expected);
}
