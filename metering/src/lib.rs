//! Tollgate's metering consumer: it tails the event log from its checkpoint, quarantines
//! records it cannot decode, applies the rest to the counters (exactly once per
//! `event_id`), writes them to Parquet under `usage/dt=YYYY-MM-DD/`, and only then
//! commits the checkpoint.

pub mod alert_engine;
pub mod alerts;
pub mod apply;
pub mod compact;
pub mod compact_lambda;
pub mod consumer;
pub mod cost;
pub mod error;
mod fault;
pub mod invoice;
pub mod lambda;
pub mod live_compaction;
pub mod log_retention;
pub mod object_keys;
pub mod parquet_buffer;
pub mod parquet_projection;
pub mod parquet_sink;
pub mod poller;
pub mod quarantine;
pub mod quarantine_requeue;
pub mod rating;
pub mod raw;
pub mod reconcile;
pub mod replay;
pub mod report;
pub mod settings;

pub use apply::{BatchApplier, ConsumerStats, PassReport};
pub use consumer::{ConsumerSettings, MeteringConsumer};
pub use error::{MeteringError, Result};
