//! Looking up the records a use case acts on, with a `NotFound` that names the id and how
//! to list the known ones.

use schemas::Customer;
use store::{Registry, StoreError};

use crate::error::{ControlError, Result};

/// `NotFound` naming an unknown customer id and how to list the known ones.
pub fn unknown_customer_id(customer_id: &str) -> ControlError {
    ControlError::not_found(format!(
        "unknown customer id {customer_id:?}; run `tollgate list` to see customer ids"
    ))
}

/// A store failure on a customer: `NotFound` becomes [`unknown_customer_id`].
pub(crate) fn unknown_customer(customer_id: &str, error: StoreError) -> ControlError {
    match error {
        StoreError::NotFound { .. } => unknown_customer_id(customer_id),
        other => ControlError::from(other),
    }
}

/// The stored customer, or `NotFound` naming the id.
pub async fn existing_customer(registry: &dyn Registry, customer_id: &str) -> Result<Customer> {
    registry
        .customer(customer_id)
        .await?
        .ok_or_else(|| unknown_customer_id(customer_id))
}
