//! Tollgate's operator use cases, as plain async functions over the ports: customers, keys,
//! limits, plans, usage queries, invoices, reports, alerts, the projections' checks and
//! rebuilds, admin tokens, and the audit trail every change writes.
//!
//! Adapters (the `tollgate` CLI, the admin API) parse their input into the typed inputs
//! here, call one function, and render its typed result. Validation, audit entries and
//! error kinds ([`ControlError`]) are defined here once.

pub mod admin_tokens;
pub mod alerts;
pub mod audit;
pub mod customer_pages;
pub mod customers;
pub mod dates;
pub mod error;
pub mod idempotency;
pub mod inputs;
pub mod invoices;
pub mod keys;
pub mod limit_usage;
pub mod limits;
pub mod lookup;
pub mod margins;
pub mod overview;
pub mod plans;
pub mod projections;
pub mod quarantine;
pub mod reports;
pub mod series;
pub mod summary;
pub mod usage;

#[cfg(test)]
mod test_support;

pub use audit::Actor;
pub use error::{ControlError, Failure, Result};
