//! Each customer's daily and monthly caps with what the counters hold against them: the
//! console's usage bars. The levels are the counters' (admitted requests, input plus output
//! tokens), as the proxy's eventual limiter reads them; per-minute rates are left out, since
//! the counters keep days, not minutes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemas::Customer;
use schemas::quota::{Level, LimitKind, LimitStatus, WindowKind, WindowLevels, month_start};
use store::Counters;

use crate::error::{Result, WhileDoing};

/// One customer's daily and monthly caps as they stand at `now`: empty when none is set
/// (and then the counters are not read).
pub async fn limit_usage(
    counters: &dyn Counters,
    customer: &Customer,
    now: DateTime<Utc>,
) -> Result<Vec<LimitStatus>> {
    let capped = |window: WindowKind| {
        LimitKind::ALL
            .iter()
            .any(|kind| kind.window() == window && kind.cap(&customer.limits).is_some())
    };
    if !capped(WindowKind::Day) && !capped(WindowKind::Month) {
        return Ok(Vec::new());
    }
    let today = now.date_naive();
    let from = if capped(WindowKind::Month) {
        month_start(today)
    } else {
        today
    };
    let cells = counters
        .read_daily(&customer.customer_id, from, today)
        .await
        .while_doing(|| format!("cannot read the usage of {}", customer.customer_id))?;
    let levels = WindowLevels {
        minute: Level::default(),
        day: Level::of_days(&cells, today, today),
        month: Level::of_days(&cells, from, today),
    };
    Ok(schemas::quota::statuses(&customer.limits, now, &levels)
        .into_iter()
        .filter(|status| status.limit != LimitKind::RequestsPerMinute.as_str())
        .collect())
}

/// [`limit_usage`] for each of `customers`, by id.
pub async fn limit_usage_of(
    counters: &dyn Counters,
    customers: &[Customer],
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Vec<LimitStatus>>> {
    let mut usage = BTreeMap::new();
    for customer in customers {
        usage.insert(
            customer.customer_id.clone(),
            limit_usage(counters, customer, now).await?,
        );
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer};
    use crate::limits::Cap;
    use crate::test_support::operator;
    use schemas::Outcome;
    use store::Registry;
    use store::contract::{event_on, sourced_at};
    use store::memory::MemoryStore;

    #[tokio::test]
    async fn caps_show_what_the_counters_hold_and_uncapped_customers_show_none() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let today = now.date_naive();
        let mut capped = NewCustomer::named("Capped", "c@example.com");
        capped.limits.daily_request_limit = Some(Cap::Limit(10));
        capped.limits.monthly_token_limit = Some(Cap::Limit(1_000));
        capped.limits.requests_per_minute = Some(Cap::Limit(5));
        let capped = create_customer(&store, &operator(), capped).await.unwrap();
        let free = create_customer(
            &store,
            &operator(),
            NewCustomer::named("Free", "f@example.com"),
        )
        .await
        .unwrap();
        let events = [
            event_on(&capped.customer_id, today, "m", Outcome::Success, 100, 50),
            event_on(
                &capped.customer_id,
                today,
                "m",
                Outcome::UpstreamError,
                0,
                0,
            ),
            event_on(
                &capped.customer_id,
                today,
                "m",
                Outcome::RejectedLimit,
                0,
                0,
            ),
        ];
        let sourced: Vec<_> = events
            .into_iter()
            .enumerate()
            .map(|(index, event)| sourced_at("0", index as u64 + 1, event))
            .collect();
        store::Counters::apply(&store, &sourced).await.unwrap();
        let customers = store.list_customers().await.unwrap();
        let usage = limit_usage_of(&store, &customers, now).await.unwrap();
        let bars = &usage[&capped.customer_id];
        let named: Vec<(&str, u64, u64)> = bars
            .iter()
            .map(|bar| (bar.limit, bar.used, bar.limit_value))
            .collect();
        // Two admitted calls (the refusal is not counted), 150 tokens; no per-minute bar.
        assert_eq!(
            named,
            [("daily_requests", 2, 10), ("monthly_tokens", 150, 1_000)]
        );
        assert_eq!(bars[1].remaining, 850);
        assert!(usage[&free.customer_id].is_empty());
    }
}
