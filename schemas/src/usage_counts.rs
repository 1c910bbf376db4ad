//! The counter projection's records, and how events aggregate into them.
//!
//! Counters are kept per (customer, UTC day, model). A rejected call counts in
//! `rejected` only; every admitted call counts in `requests`, and failed ones also in
//! `errors`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::usage_event::UsageEvent;

/// Additive counts for one counter cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCounts {
    /// Admitted calls (every outcome but `rejected_limit`).
    pub requests: u64,
    /// Calls refused for limits.
    pub rejected: u64,
    /// Admitted calls that ended in a client or upstream error.
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl UsageCounts {
    /// The increments one event contributes.
    pub fn of_event(event: &UsageEvent) -> Self {
        Self {
            requests: u64::from(event.outcome.was_admitted()),
            rejected: u64::from(!event.outcome.was_admitted()),
            errors: u64::from(event.outcome.is_error()),
            input_tokens: event.input_tokens,
            output_tokens: event.output_tokens,
            cache_read_tokens: event.cache_read_tokens,
            cache_write_tokens: event.cache_write_tokens,
        }
    }

    /// Adds another set of counts, saturating.
    pub fn add(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.rejected = self.rejected.saturating_add(other.rejected);
        self.errors = self.errors.saturating_add(other.errors);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(other.cache_write_tokens);
    }

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One counter cell's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterKey {
    pub customer_id: String,
    pub day: NaiveDate,
    pub model_id: String,
}

impl CounterKey {
    /// The cell an event counts in.
    pub fn of_event(event: &UsageEvent) -> Self {
        Self {
            customer_id: event.customer_id.clone(),
            day: event.day(),
            model_id: event.model_id.clone(),
        }
    }
}

/// A read of one customer's counters: one day and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    pub day: NaiveDate,
    pub model_id: String,
    pub counts: UsageCounts,
}

/// Sums events into counter cells. The caller dedupes first; this counts what it is given.
pub fn aggregate_events<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
) -> BTreeMap<CounterKey, UsageCounts> {
    let mut cells: BTreeMap<CounterKey, UsageCounts> = BTreeMap::new();
    for event in events {
        cells
            .entry(CounterKey::of_event(event))
            .or_default()
            .add(&UsageCounts::of_event(event));
    }
    cells
}

/// Sums many cells into one total.
pub fn total_counts<'a>(counts: impl IntoIterator<Item = &'a UsageCounts>) -> UsageCounts {
    let mut total = UsageCounts::default();
    for item in counts {
        total.add(item);
    }
    total
}
