//! Usage over time for the console's charts: calls, tokens, errors and limit rejections per
//! UTC hour or day, across every customer or for one, with Bedrock's cost per day. Every
//! bucket of the range is present, empty ones as zeros, so a chart's axis is continuous.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, NaiveTime, Utc};
use metering::cost::cost_of_usage;
use rust_decimal::Decimal;
use schemas::UsageCounts;
use schemas::model_prices::ModelPriceTable;
use serde::Serialize;
use store::{Counters, Registry};

use crate::dates::check_date_range;
use crate::error::{ControlError, Result, WhileDoing};
use crate::lookup::existing_customer;
use crate::usage::Granularity;

/// The most hours an hourly series covers: a week.
pub const MAX_SERIES_HOURS: u32 = 168;
/// The most days a daily series covers.
pub const MAX_SERIES_DAYS: i64 = 366;

/// Which buckets, and whose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesRange {
    /// The `hours` UTC hours ending with the current one.
    Hours(u32),
    /// The UTC days `start..=end`.
    Days { start: NaiveDate, end: NaiveDate },
}

/// One bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    /// The start of the hour or day.
    pub at: DateTime<Utc>,
    pub calls: u64,
    pub tokens: u64,
    pub errors: u64,
    pub rejected: u64,
    /// Bedrock's cost of the priced models, per day with a price table; `None` per hour
    /// (hourly counters do not keep the model).
    pub cost: Option<Decimal>,
}

/// A series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Series {
    pub granularity: Granularity,
    pub customer_id: Option<String>,
    pub points: Vec<SeriesPoint>,
    /// The cost's currency, with a price table.
    pub currency: Option<String>,
    /// Models used in the range without a price: the cost leaves them out.
    pub unpriced_models: Vec<String>,
}

fn point(at: DateTime<Utc>, counts: &UsageCounts, cost: Option<Decimal>) -> SeriesPoint {
    SeriesPoint {
        at,
        calls: counts.requests,
        tokens: counts.input_tokens + counts.output_tokens,
        errors: counts.errors,
        rejected: counts.rejected,
        cost,
    }
}

async fn whose(registry: &dyn Registry, customer_id: Option<&str>) -> Result<Vec<String>> {
    Ok(match customer_id {
        Some(customer_id) => vec![existing_customer(registry, customer_id).await?.customer_id],
        None => registry
            .list_customers()
            .await
            .while_doing(|| "cannot list customers".into())?
            .into_iter()
            .map(|customer| customer.customer_id)
            .collect(),
    })
}

/// The series over `range` for one customer or (`None`) all of them, as of `now`.
pub async fn series(
    registry: &dyn Registry,
    counters: &dyn Counters,
    table: Option<&ModelPriceTable>,
    customer_id: Option<&str>,
    range: &SeriesRange,
    now: DateTime<Utc>,
) -> Result<Series> {
    let customers = whose(registry, customer_id).await?;
    let mut series = match *range {
        SeriesRange::Hours(hours) => hourly(counters, &customers, hours, now).await?,
        SeriesRange::Days { start, end } => daily(counters, table, &customers, start, end).await?,
    };
    series.customer_id = customer_id.map(str::to_owned);
    Ok(series)
}

async fn hourly(
    counters: &dyn Counters,
    customers: &[String],
    hours: u32,
    now: DateTime<Utc>,
) -> Result<Series> {
    if !(1..=MAX_SERIES_HOURS).contains(&hours) {
        return Err(ControlError::invalid(
            "hours",
            format!("hours {hours} is out of range; ask for 1 to {MAX_SERIES_HOURS} hours"),
        ));
    }
    let last = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let first = last - Duration::hours(i64::from(hours) - 1);
    let mut buckets: BTreeMap<DateTime<Utc>, UsageCounts> = (0..i64::from(hours))
        .map(|offset| (first + Duration::hours(offset), UsageCounts::default()))
        .collect();
    for customer_id in customers {
        let cells = counters
            .read_hourly(customer_id, first, last)
            .await
            .while_doing(|| format!("cannot read the hourly usage of {customer_id}"))?;
        for cell in cells {
            if let Some(bucket) = buckets.get_mut(&cell.hour) {
                bucket.add(&cell.counts);
            }
        }
    }
    Ok(Series {
        granularity: Granularity::Hour,
        customer_id: None,
        points: buckets
            .iter()
            .map(|(at, counts)| point(*at, counts, None))
            .collect(),
        currency: None,
        unpriced_models: Vec::new(),
    })
}

async fn daily(
    counters: &dyn Counters,
    table: Option<&ModelPriceTable>,
    customers: &[String],
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Series> {
    check_date_range(start, end, MAX_SERIES_DAYS)?;
    let mut by_day: BTreeMap<NaiveDate, BTreeMap<String, UsageCounts>> = start
        .iter_days()
        .take_while(|day| *day <= end)
        .map(|day| (day, BTreeMap::new()))
        .collect();
    for customer_id in customers {
        let cells = counters
            .read_daily(customer_id, start, end)
            .await
            .while_doing(|| format!("cannot read the usage of {customer_id}"))?;
        for cell in cells {
            if let Some(day) = by_day.get_mut(&cell.day) {
                day.entry(cell.model_id).or_default().add(&cell.counts);
            }
        }
    }
    let mut unpriced = Vec::new();
    let points = by_day
        .iter()
        .map(|(day, models)| {
            let counts = schemas::usage_counts::total_counts(models.values());
            let cost = table.map(|table| {
                let cost = cost_of_usage(table, models);
                unpriced.extend(cost.unpriced_models);
                cost.total
            });
            point(day.and_time(NaiveTime::MIN).and_utc(), &counts, cost)
        })
        .collect();
    unpriced.sort();
    unpriced.dedup();
    Ok(Series {
        granularity: Granularity::Day,
        customer_id: None,
        points,
        currency: table.map(|table| table.currency.clone()),
        unpriced_models: unpriced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use schemas::Outcome;
    use store::contract::{event_on, sourced_at};
    use store::memory::MemoryStore;

    fn table() -> ModelPriceTable {
        ModelPriceTable::from_toml(
            "schema_version = 1\ncurrency = \"USD\"\nas_of = \"2026-12-01\"\n\n[[prices]]\npattern = \"model-a\"\ninput_per_million = \"1.00\"\noutput_per_million = \"5.00\"\nsource = \"https://aws.amazon.com/bedrock/pricing/\"\n",
        )
        .unwrap()
    }

    async fn two_customers_with_usage(store: &MemoryStore, today: NaiveDate) -> Vec<String> {
        let mut ids = Vec::new();
        for name in ["A", "B"] {
            let issued = create_customer(
                store,
                &operator(),
                NewCustomer::named(name, &format!("{name}@example.com")),
            )
            .await
            .unwrap();
            ids.push(issued.customer_id);
        }
        let yesterday = today - chrono::Days::new(1);
        let events = [
            event_on(&ids[0], today, "model-a", Outcome::Success, 1_000_000, 0),
            event_on(&ids[1], today, "model-a", Outcome::Success, 0, 200_000),
            event_on(&ids[1], today, "model-b", Outcome::UpstreamError, 0, 0),
            event_on(&ids[0], yesterday, "model-b", Outcome::Success, 10, 10),
            event_on(&ids[1], yesterday, "model-a", Outcome::RejectedLimit, 0, 0),
        ];
        let sourced: Vec<_> = events
            .into_iter()
            .enumerate()
            .map(|(index, event)| sourced_at("0", index as u64 + 1, event))
            .collect();
        store.apply(&sourced).await.unwrap();
        ids
    }

    #[tokio::test]
    async fn daily_series_sum_customers_and_price_each_day_by_hand() {
        let store = MemoryStore::new();
        let today = Utc::now().date_naive();
        let ids = two_customers_with_usage(&store, today).await;
        let start = today - chrono::Days::new(2);
        let range = SeriesRange::Days { start, end: today };
        let all = series(&store, &store, Some(&table()), None, &range, Utc::now())
            .await
            .unwrap();
        assert_eq!(all.points.len(), 3, "every day, the empty one too");
        assert_eq!(all.points[0].calls, 0);
        assert_eq!(all.points[0].cost, Some(Decimal::ZERO));
        let (yesterday, last) = (&all.points[1], &all.points[2]);
        assert_eq!(
            (yesterday.calls, yesterday.tokens, yesterday.rejected),
            (1, 20, 1)
        );
        assert_eq!((last.calls, last.errors, last.tokens), (3, 1, 1_200_000));
        // 1,000,000 input × $1.00 + 200,000 output × $5.00 per million = $2.00.
        assert_eq!(last.cost, Some(Decimal::new(200, 2)));
        assert_eq!(all.unpriced_models, ["model-b"], "never priced as free");
        assert_eq!(all.currency.as_deref(), Some("USD"));
        let one = series(&store, &store, None, Some(&ids[0]), &range, Utc::now())
            .await
            .unwrap();
        assert_eq!(one.points[2].tokens, 1_000_000);
        assert_eq!(one.points[2].cost, None, "no price table, no cost");
        assert_eq!(one.customer_id.as_deref(), Some(ids[0].as_str()));
    }

    #[tokio::test]
    async fn hourly_series_cover_the_hours_ending_now_and_refuse_bad_ranges() {
        let store = MemoryStore::new();
        let today = Utc::now().date_naive();
        let now = today.and_hms_opt(12, 30, 0).unwrap().and_utc();
        two_customers_with_usage(&store, today).await;
        let hours = series(&store, &store, None, None, &SeriesRange::Hours(24), now)
            .await
            .unwrap();
        assert_eq!(hours.points.len(), 24);
        let last = hours.points.last().unwrap();
        assert_eq!(last.at, today.and_hms_opt(12, 0, 0).unwrap().and_utc());
        assert_eq!((last.calls, last.errors, last.tokens), (3, 1, 1_200_000));
        let total: u64 = hours.points.iter().map(|point| point.calls).sum();
        assert_eq!(
            total, 3,
            "yesterday noon is 24.5 hours back, outside the range"
        );
        for bad in [0, MAX_SERIES_HOURS + 1] {
            let error = series(&store, &store, None, None, &SeriesRange::Hours(bad), now)
                .await
                .unwrap_err();
            assert!(matches!(error, ControlError::Invalid { .. }), "{bad}");
        }
        let unknown = series(
            &store,
            &store,
            None,
            Some("nobody"),
            &SeriesRange::Hours(24),
            now,
        )
        .await
        .unwrap_err();
        assert!(matches!(unknown, ControlError::NotFound { .. }));
    }
}
