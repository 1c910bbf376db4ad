//! Totals across every customer over a range of UTC days: calls, tokens, errors, limit
//! rejections and active customers (the admin API's `summary`, the console's key figures).

use chrono::{NaiveDate, Utc};
use schemas::UsageCounts;
use schemas::usage_counts::total_counts;
use serde::Serialize;
use store::{Counters, Registry, Watermarks};

use crate::dates::{check_date_range, month_to_date_unless_given};
use crate::error::{Result, WhileDoing};
use crate::usage::{MAX_USAGE_RANGE_DAYS, completeness};

/// The totals of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// Every customer's counts summed: `requests` are admitted calls, `rejected` calls
    /// refused for limits, `errors` admitted calls that failed.
    pub totals: UsageCounts,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Customers with at least one call, admitted or refused, in the range.
    pub active_customers: usize,
    /// Customers registered, whatever their status.
    pub customers: usize,
    pub complete_through: Option<chrono::DateTime<Utc>>,
}

/// Totals across customers; missing ends default to the month to date (UTC).
pub async fn summary(
    registry: &dyn Registry,
    counters: &dyn Counters,
    watermarks: &dyn Watermarks,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
) -> Result<Summary> {
    let (start_date, end_date) = month_to_date_unless_given(start, end, Utc::now().date_naive());
    check_date_range(start_date, end_date, MAX_USAGE_RANGE_DAYS)?;
    let customers = registry
        .list_customers()
        .await
        .while_doing(|| "cannot list customers".into())?;
    let mut per_customer = Vec::with_capacity(customers.len());
    for customer in &customers {
        let days = counters
            .read_daily(&customer.customer_id, start_date, end_date)
            .await
            .while_doing(|| format!("cannot read the usage of {}", customer.customer_id))?;
        per_customer.push(total_counts(days.iter().map(|day| &day.counts)));
    }
    let totals = total_counts(per_customer.iter());
    let active_customers = per_customer
        .iter()
        .filter(|counts| counts.requests + counts.rejected > 0)
        .count();
    Ok(Summary {
        start_date,
        end_date,
        tokens: totals.input_tokens + totals.output_tokens,
        totals,
        active_customers,
        customers: customers.len(),
        complete_through: completeness(watermarks).await?.complete_through,
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

    #[tokio::test]
    async fn totals_sum_every_customer_and_count_the_active_ones() {
        let store = MemoryStore::new();
        let mut ids = Vec::new();
        for name in ["A", "B", "C"] {
            let issued = create_customer(
                &store,
                &operator(),
                NewCustomer::named(name, &format!("{name}@example.com")),
            )
            .await
            .unwrap();
            ids.push(issued.customer_id);
        }
        let today = Utc::now().date_naive();
        let events = [
            event_on(&ids[0], today, "m", Outcome::Success, 10, 5),
            event_on(&ids[0], today, "m", Outcome::UpstreamError, 0, 0),
            event_on(&ids[1], today, "m", Outcome::RejectedLimit, 0, 0),
            event_on(
                &ids[2],
                today - chrono::Days::new(45),
                "m",
                Outcome::Success,
                7,
                7,
            ),
        ];
        let sourced: Vec<_> = events
            .into_iter()
            .enumerate()
            .map(|(index, event)| sourced_at("0", index as u64 + 1, event))
            .collect();
        store.apply(&sourced).await.unwrap();
        let summary = summary(&store, &store, &store, None, None).await.unwrap();
        assert_eq!(summary.totals.requests, 2);
        assert_eq!(summary.totals.errors, 1);
        assert_eq!(summary.totals.rejected, 1);
        assert_eq!(summary.tokens, 15);
        assert_eq!(summary.active_customers, 2, "C called only last month");
        assert_eq!(summary.customers, 3);
        let reversed = super::summary(
            &store,
            &store,
            &store,
            Some(today),
            Some(today - chrono::Days::new(1)),
        )
        .await
        .unwrap_err();
        assert!(matches!(reversed, crate::ControlError::Invalid { .. }));
    }
}
