//! Usage reports: `tollgate report` over a range of days. Rendering (HTML, CSV) is the
//! adapter's.

use chrono::NaiveDate;
use metering::report::{CustomerUsage, Report, build_report};
use schemas::Customer;
use store::{Counters, Registry};

use crate::dates::check_date_range;
use crate::error::Result;
use crate::lookup::existing_customer;

/// Longest range one report reads.
pub const MAX_REPORT_DAYS: i64 = 366;

/// A report: `report`.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// First day, inclusive (UTC).
    pub start_date: NaiveDate,
    /// Last day, inclusive (UTC).
    pub end_date: NaiveDate,
    /// Only this customer; every customer when `None`.
    pub customer_id: Option<String>,
}

/// A built report and how many customers it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltReport {
    pub report: Report,
    pub customers: usize,
}

async fn usage_of(
    counters: &dyn Counters,
    customer: &Customer,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<CustomerUsage> {
    Ok(CustomerUsage {
        customer_id: customer.customer_id.clone(),
        name: customer.name.clone(),
        cells: counters
            .read_daily(&customer.customer_id, start, end)
            .await?,
    })
}

/// `report`: the report's views over the range. `progress(done, total)` is called as each
/// customer's usage is read. `Invalid` for a reversed or overlong range, `NotFound` for an
/// unknown customer.
pub async fn usage_report(
    registry: &dyn Registry,
    counters: &dyn Counters,
    request: &ReportRequest,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<BuiltReport> {
    check_date_range(request.start_date, request.end_date, MAX_REPORT_DAYS)?;
    let customers: Vec<Customer> = match &request.customer_id {
        Some(customer_id) => vec![existing_customer(registry, customer_id).await?],
        None => registry.list_customers().await?,
    };
    let total = customers.len() as u64;
    let mut usage = Vec::with_capacity(customers.len());
    for customer in &customers {
        usage.push(usage_of(counters, customer, request.start_date, request.end_date).await?);
        progress(usage.len() as u64, total);
    }
    Ok(BuiltReport {
        report: build_report(request.start_date, request.end_date, &usage),
        customers: customers.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ControlError;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::operator;
    use schemas::Outcome;
    use store::memory::MemoryStore;

    #[tokio::test]
    async fn reports_cover_the_range_and_the_customers_asked_for() {
        let store = MemoryStore::new();
        let today = chrono::Utc::now().date_naive();
        let issued = create_customer(
            &store,
            &operator(),
            NewCustomer::named("Acme", "a@a.example"),
        )
        .await
        .unwrap();
        create_customer(
            &store,
            &operator(),
            NewCustomer::named("Other", "o@o.example"),
        )
        .await
        .unwrap();
        let event = store::contract::event_on(
            &issued.customer_id,
            today,
            "model-a",
            Outcome::Success,
            3,
            4,
        );
        store
            .apply(&[store::contract::sourced_at("0", 1, event)])
            .await
            .unwrap();
        let calls = std::sync::Mutex::new(Vec::new());
        let progress = |done: u64, total: u64| calls.lock().unwrap().push((done, total));
        let request = ReportRequest {
            start_date: today - chrono::Days::new(6),
            end_date: today,
            customer_id: None,
        };
        let built = usage_report(&store, &store, &request, &progress)
            .await
            .unwrap();
        assert_eq!(built.customers, 2);
        assert_eq!(built.report.start, request.start_date);
        assert_eq!(*calls.lock().unwrap(), [(1, 2), (2, 2)]);
        let shown = serde_json::to_string(&built.report).unwrap();
        assert!(shown.contains("Acme"), "{shown}");

        let one = ReportRequest {
            customer_id: Some(issued.customer_id.clone()),
            ..request.clone()
        };
        assert_eq!(
            usage_report(&store, &store, &one, &|_, _| {})
                .await
                .unwrap()
                .customers,
            1
        );
        let reversed = ReportRequest {
            start_date: today,
            end_date: today - chrono::Days::new(1),
            customer_id: None,
        };
        let error = usage_report(&store, &store, &reversed, &|_, _| {})
            .await
            .unwrap_err();
        assert!(matches!(error, ControlError::Invalid { .. }));
    }
}
