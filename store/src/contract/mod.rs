//! Contract test suites, one per port, shared by every backend.
//!
//! A backend's tests call `run_all` with a fresh instance. Scenarios use random ids, so
//! they can also run against shared emulator tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin_credentials;
pub mod alerts;
pub mod checkpoints;
pub mod counters;
pub mod event_appender;
pub mod event_reader;
pub mod idempotency;
pub mod notify;
pub mod plans;
pub mod quotas;
pub mod registry;
pub mod spool;
pub mod watermarks;

use chrono::{NaiveDate, TimeZone, Utc};
use schemas::{ApiSurface, Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};
use uuid::Uuid;

/// A unique id for one scenario's records.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7().simple())
}

/// The next sequence number of [`contract_producer`].
static NEXT_CONTRACT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The producer of every event [`event_on`] makes: one per test process, so events made by
/// different runs against a shared emulator never share a `(producer, seq)`.
pub fn contract_producer() -> &'static str {
    static PRODUCER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PRODUCER.get_or_init(|| unique("contract"))
}

/// An event of `customer` on `day` (noon UTC) with the given model, outcome and tokens,
/// numbered next in [`contract_producer`]'s sequence.
pub fn event_on(
    customer_id: &str,
    day: NaiveDate,
    model_id: &str,
    outcome: Outcome,
    input_tokens: u64,
    output_tokens: u64,
) -> UsageEvent {
    let noon = day.and_hms_opt(12, 0, 0).unwrap();
    UsageEvent {
        event_id: Uuid::now_v7(),
        schema_version: USAGE_EVENT_SCHEMA_VERSION,
        occurred_at: Utc.from_utc_datetime(&noon),
        customer_id: customer_id.into(),
        key_id: "key_contract".into(),
        request_id: Uuid::now_v7().into(),
        upstream_request_id: None,
        model_id: model_id.into(),
        operation: Operation::Invoke,
        api: Some(ApiSurface::Bedrock),
        status: if outcome == Outcome::RejectedLimit {
            429
        } else {
            200
        },
        outcome,
        input_tokens,
        output_tokens,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        latency_ms: 1,
        upstream_latency_ms: None,
        request_bytes: 10,
        response_bytes: 20,
        proxy_instance: contract_producer().into(),
        instance_seq: NEXT_CONTRACT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    }
}

/// `event` as the record at `position` of `partition` (a batch is such records, positions
/// increasing).
pub fn sourced_at(partition: &str, position: u64, event: UsageEvent) -> crate::SourcedEvent {
    crate::SourcedEvent {
        partition: partition.into(),
        position: position.to_string().into(),
        event,
    }
}

/// A fixed day used by the scenarios.
pub fn day(offset: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1 + offset).unwrap()
}
