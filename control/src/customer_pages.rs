//! Customers a page at a time (the admin API's list, the console's search), and one
//! customer's profile with its plan.
//!
//! Pages follow the registry's order (creation time, then id) from an opaque cursor that
//! holds the last customer's place in that order, so a page never repeats or skips a
//! customer when others are created meanwhile: new customers sort after every existing one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use schemas::plan::{PlanAssignment, assignment_on};
use schemas::{Customer, CustomerStatus};
use serde::Serialize;
use store::{Plans, Registry};

use crate::customers::{CustomerDetails, show_customer};
use crate::error::{ControlError, Result, WhileDoing};

/// The largest page.
pub const MAX_PAGE: usize = 1000;
/// The page size when none is asked for.
pub const DEFAULT_PAGE: usize = 100;

/// Which customers, and where to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerQuery {
    /// At most this many (1 to [`MAX_PAGE`]); [`DEFAULT_PAGE`] when `None`.
    pub limit: Option<usize>,
    /// The `next_token` of the previous page.
    pub next_token: Option<String>,
    pub status: Option<CustomerStatus>,
    /// Case-insensitive text in the name, email or id.
    pub text: Option<String>,
}

/// One page of customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    /// Pass it back for the next page; `None` on the last page.
    pub next_token: Option<String>,
}

/// A customer's place in the registry's order.
fn cursor_of(customer: &Customer) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "c1:{}:{}",
        customer.created_at.timestamp_millis(),
        customer.customer_id
    ))
}

fn bad_token() -> ControlError {
    ControlError::invalid(
        "next_token",
        "next_token is not one this API returned; pass the next_token of the previous page unchanged, or omit it for the first page",
    )
}

fn place_of(token: &str) -> Result<(DateTime<Utc>, String)> {
    let decoded = URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(bad_token)?;
    let rest = decoded.strip_prefix("c1:").ok_or_else(bad_token)?;
    let (millis, customer_id) = rest.split_once(':').ok_or_else(bad_token)?;
    let at = millis
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(bad_token)?;
    Ok((at, customer_id.to_owned()))
}

fn matches_text(customer: &Customer, text: &str) -> bool {
    let text = text.to_lowercase();
    customer.name.to_lowercase().contains(&text)
        || customer.email.to_lowercase().contains(&text)
        || customer.customer_id.contains(&text)
}

/// One page of customers in the registry's order, filtered by status and text.
pub async fn list_customers_page(
    registry: &dyn Registry,
    query: &CustomerQuery,
) -> Result<CustomerPage> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ControlError::invalid(
            "limit",
            format!("limit {limit} is out of range; ask for 1 to {MAX_PAGE} customers a page"),
        ));
    }
    let after = query.next_token.as_deref().map(place_of).transpose()?;
    let text = query
        .text
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let mut selected = registry
        .list_customers()
        .await
        .while_doing(|| "cannot list customers".into())?
        .into_iter()
        .filter(|customer| {
            after.as_ref().is_none_or(|(at, id)| {
                (customer.created_at, customer.customer_id.as_str()) > (*at, id.as_str())
            })
        })
        .filter(|customer| query.status.is_none_or(|status| customer.status == status))
        .filter(|customer| text.is_none_or(|text| matches_text(customer, text)));
    let customers: Vec<Customer> = selected.by_ref().take(limit).collect();
    let next_token = match (selected.next(), customers.last()) {
        (Some(_), Some(last)) => Some(cursor_of(last)),
        _ => None,
    };
    Ok(CustomerPage {
        customers,
        next_token,
    })
}

/// A customer as the admin API and the console show it: profile, limits, keys (never
/// tokens), the plan in effect today and every plan assignment.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerProfile {
    #[serde(flatten)]
    pub details: CustomerDetails,
    pub plan: Option<PlanAssignment>,
    pub plan_assignments: Vec<PlanAssignment>,
}

/// One customer's profile. `NotFound` for an unknown id.
pub async fn customer_profile(
    registry: &dyn Registry,
    plans: &dyn Plans,
    customer_id: &str,
) -> Result<CustomerProfile> {
    let details = show_customer(registry, customer_id).await?;
    let plan_assignments = plans
        .plan_assignments(customer_id)
        .await
        .while_doing(|| format!("cannot read the plan of customer {customer_id}"))?;
    let plan = assignment_on(&plan_assignments, Utc::now().date_naive()).cloned();
    Ok(CustomerProfile {
        details,
        plan,
        plan_assignments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{NewCustomer, create_customer, disable_customer};
    use crate::test_support::operator;
    use store::memory::MemoryStore;

    async fn customers(store: &MemoryStore, count: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for index in 0..count {
            let issued = create_customer(
                store,
                &operator(),
                NewCustomer::named(
                    &format!("Customer {index}"),
                    &format!("c{index}@example.com"),
                ),
            )
            .await
            .unwrap();
            ids.push(issued.customer_id);
        }
        ids
    }

    #[tokio::test]
    async fn pages_cover_every_customer_once_even_with_creates_between_pages() {
        let store = MemoryStore::new();
        let mut expected = customers(&store, 7).await;
        let mut seen = Vec::new();
        let mut query = CustomerQuery {
            limit: Some(3),
            ..CustomerQuery::default()
        };
        loop {
            let page = list_customers_page(&store, &query).await.unwrap();
            assert!(page.customers.len() <= 3);
            seen.extend(page.customers.iter().map(|c| c.customer_id.clone()));
            if seen.len() == 3 {
                // Created while the operator pages: it comes at the end, once.
                expected.extend(customers(&store, 1).await);
            }
            match page.next_token {
                Some(token) => query.next_token = Some(token),
                None => break,
            }
        }
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn filters_by_status_and_text_and_checks_limits_and_tokens() {
        let store = MemoryStore::new();
        let ids = customers(&store, 4).await;
        disable_customer(&store, &operator(), &ids[2])
            .await
            .unwrap();
        let disabled = list_customers_page(
            &store,
            &CustomerQuery {
                status: Some(CustomerStatus::Disabled),
                ..CustomerQuery::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(disabled.customers.len(), 1);
        assert_eq!(disabled.customers[0].customer_id, ids[2]);
        assert_eq!(disabled.next_token, None);
        let by_text = list_customers_page(
            &store,
            &CustomerQuery {
                text: Some("C3@EXAMPLE".into()),
                ..CustomerQuery::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(by_text.customers[0].customer_id, ids[3]);
        for limit in [0, MAX_PAGE + 1] {
            let error = list_customers_page(
                &store,
                &CustomerQuery {
                    limit: Some(limit),
                    ..CustomerQuery::default()
                },
            )
            .await
            .unwrap_err();
            assert!(matches!(
                error,
                ControlError::Invalid { field: "limit", .. }
            ));
        }
        for token in ["garbage", "", "YzE6eDp5"] {
            let error = list_customers_page(
                &store,
                &CustomerQuery {
                    next_token: Some(token.into()),
                    ..CustomerQuery::default()
                },
            )
            .await
            .unwrap_err();
            assert!(
                matches!(
                    error,
                    ControlError::Invalid {
                        field: "next_token",
                        ..
                    }
                ),
                "{token}"
            );
        }
    }

    #[tokio::test]
    async fn a_profile_holds_keys_and_the_plan_in_effect() {
        let store = MemoryStore::new();
        let ids = customers(&store, 1).await;
        let profile = customer_profile(&store, &store, &ids[0]).await.unwrap();
        assert_eq!(profile.details.keys.len(), 1);
        assert_eq!(profile.plan, None);
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["customer"]["customer_id"], ids[0].as_str());
        let unknown = customer_profile(&store, &store, "nobody")
            .await
            .unwrap_err();
        assert!(matches!(unknown, ControlError::NotFound { .. }));
    }
}
