//! Usage queries: `tollgate usage` (a customer's counters per day and model, with totals)
//! and how complete the counters are.

use chrono::{DateTime, NaiveDate, Utc};
use schemas::usage_counts::total_counts;
use schemas::watermark::{Gap, InstanceProgress, complete_through};
use schemas::{DailyUsage, UsageCounts};
use serde::Serialize;
use store::{Counters, Registry, Watermarks};

use crate::dates::{check_date_range, month_to_date_unless_given};
use crate::error::{Result, WhileDoing};
use crate::lookup::existing_customer;

/// Longest range one `usage` query reads.
pub const MAX_USAGE_RANGE_DAYS: i64 = 3660;

/// How long a call can take between its `occurred_at` and its usage event (body 60 s,
/// upstream 300 s, stream drain 60 s, and margin): events this recent may still arrive, so
/// `complete_through` is held this far behind the newest event.
pub const COMPLETENESS_ALLOWANCE_MINUTES: i64 = 10;

/// A usage query. A missing end is today (UTC); a missing start is the first of the end's
/// month: with neither, the current month to date.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub customer_id: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// Up to when usage is complete, and the gaps holding it back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Completeness {
    /// Every event that occurred up to this time is counted (see `docs/exactly-once.md`):
    /// the newest event seen, held back to the contiguous prefix of any instance with a
    /// gap, minus [`COMPLETENESS_ALLOWANCE_MINUTES`] for calls still in flight. `None`
    /// before anything is metered.
    pub complete_through: Option<DateTime<Utc>>,
    /// `instance_seq` numbers not seen, per proxy instance, across all customers.
    pub gaps: Vec<Gap>,
}

/// A customer's usage over a range of UTC days. Serializes as `tollgate usage --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerUsage {
    pub customer_id: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// Per day and model, by day then model.
    pub days: Vec<DailyUsage>,
    pub totals: UsageCounts,
    pub complete_through: Option<DateTime<Utc>>,
    pub gaps: Vec<Gap>,
}

/// How complete the counters are now.
pub async fn completeness(watermarks: &dyn Watermarks) -> Result<Completeness> {
    let progress = watermarks
        .progress()
        .await
        .while_doing(|| "cannot read metering progress".into())?;
    Ok(Completeness {
        complete_through: complete_through(
            &progress,
            chrono::Duration::minutes(COMPLETENESS_ALLOWANCE_MINUTES),
        ),
        gaps: progress.iter().flat_map(InstanceProgress::gaps).collect(),
    })
}

/// `usage`: the customer's counters per day and model over the query's range (missing ends
/// default to the month to date, UTC), with totals and completeness. `Invalid` for a
/// reversed or overlong range, `NotFound` for an unknown customer.
pub async fn customer_usage(
    registry: &dyn Registry,
    counters: &dyn Counters,
    watermarks: &dyn Watermarks,
    query: &UsageQuery,
) -> Result<CustomerUsage> {
    let (start_date, end_date) =
        month_to_date_unless_given(query.start_date, query.end_date, Utc::now().date_naive());
    check_date_range(start_date, end_date, MAX_USAGE_RANGE_DAYS)?;
    existing_customer(registry, &query.customer_id).await?;
    let days = counters
        .read_daily(&query.customer_id, start_date, end_date)
        .await
        .while_doing(|| "cannot read usage counters".into())?;
    let totals = total_counts(days.iter().map(|day| &day.counts));
    let Completeness {
        complete_through,
        gaps,
    } = completeness(watermarks).await?;
    Ok(CustomerUsage {
        customer_id: query.customer_id.clone(),
        start_date,
        end_date,
        days,
        totals,
        complete_through,
        gaps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ControlError;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use chrono::Datelike;
    use schemas::Outcome;
    use store::SeqObservation;
    use store::memory::MemoryStore;

    async fn customer_with_usage_today(store: &MemoryStore) -> String {
        let issued = create_customer(store, &operator(), NewCustomer::named("A", "a@a.example"))
            .await
            .unwrap();
        let today = Utc::now().date_naive();
        let mut events = Vec::new();
        for (day, tokens) in [(today, 10), (today - chrono::Days::new(40), 1000)] {
            let event = store::contract::event_on(
                &issued.customer_id,
                day,
                "model-a",
                Outcome::Success,
                tokens,
                1,
            );
            events.push(store::contract::sourced_at(
                "0",
                events.len() as u64 + 1,
                event,
            ));
        }
        store.apply(&events).await.unwrap();
        issued.customer_id
    }

    #[tokio::test]
    async fn without_dates_usage_is_the_current_month_to_date() {
        let store = MemoryStore::new();
        let customer_id = customer_with_usage_today(&store).await;
        let query = UsageQuery {
            customer_id: customer_id.clone(),
            ..UsageQuery::default()
        };
        let usage = customer_usage(&store, &store, &store, &query)
            .await
            .unwrap();
        let today = Utc::now().date_naive();
        assert_eq!(usage.end_date, today);
        assert_eq!(usage.start_date, today.with_day(1).unwrap());
        assert_eq!(usage.totals.requests, 1, "only this month's call");
        assert_eq!(usage.totals.input_tokens, 10);
        assert_eq!(
            usage.complete_through, None,
            "nothing metered through watermarks yet"
        );
    }

    #[tokio::test]
    async fn given_dates_are_kept_and_checked() {
        let store = MemoryStore::new();
        let customer_id = customer_with_usage_today(&store).await;
        let today = Utc::now().date_naive();
        let query = UsageQuery {
            customer_id: customer_id.clone(),
            start_date: Some(today - chrono::Days::new(60)),
            end_date: Some(today),
        };
        let usage = customer_usage(&store, &store, &store, &query)
            .await
            .unwrap();
        assert_eq!(usage.totals.requests, 2);
        assert_eq!(usage.days.len(), 2);
        let reversed = UsageQuery {
            customer_id,
            start_date: Some(today),
            end_date: Some(today - chrono::Days::new(1)),
        };
        let error = customer_usage(&store, &store, &store, &reversed)
            .await
            .unwrap_err();
        assert!(matches!(error, ControlError::Invalid { .. }));
        let unknown = UsageQuery {
            customer_id: "nobody".into(),
            ..UsageQuery::default()
        };
        let error = customer_usage(&store, &store, &store, &unknown)
            .await
            .unwrap_err();
        assert!(matches!(error, ControlError::NotFound { .. }));
    }

    #[tokio::test]
    async fn completeness_is_held_back_by_the_allowance_and_gaps() {
        let store = MemoryStore::new();
        assert_eq!(completeness(&store).await.unwrap(), Completeness::default());
        let newest = DateTime::parse_from_rfc3339("2026-11-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let observe = |seq: u64, minutes_before: i64| SeqObservation {
            proxy_instance: "p1".into(),
            instance_seq: seq,
            occurred_at: newest - chrono::Duration::minutes(minutes_before),
        };
        store
            .observe(&[observe(1, 30), observe(2, 20)])
            .await
            .unwrap();
        let contiguous = completeness(&store).await.unwrap();
        assert_eq!(
            contiguous.complete_through,
            Some(newest - chrono::Duration::minutes(20 + COMPLETENESS_ALLOWANCE_MINUTES))
        );
        store.observe(&[observe(5, 0)]).await.unwrap();
        let gapped = completeness(&store).await.unwrap();
        assert_eq!(gapped.gaps.len(), 1);
        assert_eq!(
            (gapped.gaps[0].first_missing, gapped.gaps[0].last_missing),
            (3, 4)
        );
        assert_eq!(
            gapped.complete_through,
            Some(newest - chrono::Duration::minutes(20 + COMPLETENESS_ALLOWANCE_MINUTES)),
            "held back to the contiguous prefix"
        );
    }
}
