//! Usage queries: `tollgate usage` (a customer's counters per day and model, with totals)
//! and how complete the counters are.

use chrono::{DateTime, NaiveDate, Utc};
use schemas::usage_counts::total_counts;
use schemas::watermark::{Gap, InstanceProgress, complete_through};
use schemas::{DailyUsage, HourlyUsage, UsageCounts};
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
    /// Per day and model only (`Day`), or also per hour (`Hour`).
    pub granularity: Granularity,
}

/// How finely usage is broken down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Per UTC day and model.
    #[default]
    Day,
    /// Also per UTC hour (all models together), for ranges up to [`MAX_HOURLY_RANGE_DAYS`].
    Hour,
}

/// The longest range hourly usage is given for.
pub const MAX_HOURLY_RANGE_DAYS: i64 = 92;

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
    /// Per hour, with `Granularity::Hour` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<Vec<HourlyUsage>>,
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
    let hours = match query.granularity {
        Granularity::Day => None,
        Granularity::Hour => {
            Some(hourly(counters, &query.customer_id, start_date, end_date).await?)
        }
    };
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
        hours,
        complete_through,
        gaps,
    })
}

/// The customer's hourly cells over whole UTC days.
async fn hourly(
    counters: &dyn Counters,
    customer_id: &str,
    start_date: NaiveDate,
    end_date: NaiveDate,
) -> Result<Vec<HourlyUsage>> {
    check_date_range(start_date, end_date, MAX_HOURLY_RANGE_DAYS).map_err(|error| {
        error.while_doing(format!(
            "hourly usage covers at most {MAX_HOURLY_RANGE_DAYS} days; ask for daily usage or a shorter range"
        ))
    })?;
    let from = start_date.and_time(chrono::NaiveTime::MIN).and_utc();
    let to = end_date
        .and_hms_opt(23, 0, 0)
        .map_or(from, |last| last.and_utc());
    counters
        .read_hourly(customer_id, from, to)
        .await
        .while_doing(|| "cannot read hourly usage counters".into())
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
            granularity: Granularity::Day,
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
            granularity: Granularity::Day,
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
    async fn hourly_usage_is_given_per_hour_over_short_ranges() {
        let store = MemoryStore::new();
        let customer_id = customer_with_usage_today(&store).await;
        let today = Utc::now().date_naive();
        let query = UsageQuery {
            customer_id: customer_id.clone(),
            start_date: Some(today - chrono::Days::new(1)),
            end_date: Some(today),
            granularity: Granularity::Hour,
        };
        let usage = customer_usage(&store, &store, &store, &query)
            .await
            .unwrap();
        let hours = usage.hours.unwrap();
        assert_eq!(hours.len(), 1);
        assert_eq!(
            hours[0].hour,
            today.and_hms_opt(12, 0, 0).unwrap().and_utc()
        );
        assert_eq!(hours[0].counts.input_tokens, 10);
        let daily = customer_usage(
            &store,
            &store,
            &store,
            &UsageQuery {
                granularity: Granularity::Day,
                ..query.clone()
            },
        )
        .await
        .unwrap();
        assert!(
            !serde_json::to_string(&daily).unwrap().contains("\"hours\""),
            "daily usage serializes as before"
        );
        let too_long = UsageQuery {
            start_date: Some(today - chrono::Days::new(200)),
            ..query
        };
        let error = customer_usage(&store, &store, &store, &too_long)
            .await
            .unwrap_err();
        assert!(matches!(error, ControlError::Invalid { .. }), "{error}");
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
