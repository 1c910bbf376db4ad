//! Tollgate's ports and their backends.
//!
//! Each external system sits behind one small trait:
//! - [`EventAppender`], [`EventReader`] and [`Checkpoints`]: the append-only log of usage
//!   events, appended by the proxy, read per partition by consumers from their checkpoints;
//! - [`Registry`]: customers, keys (looked up by token hash), limits and the audit trail;
//! - [`Plans`]: the plan catalogue (immutable plan versions) and plan assignments;
//! - [`Counters`]: per customer, day and model counters, and per customer and hour (the
//!   alert rules' history), applied exactly once per `event_id` by the rules in [`dedupe`];
//! - [`Quotas`]: atomic reservations against limit windows (strict enforcement);
//! - [`Watermarks`]: per proxy instance progress of the consumer;
//! - [`Alerts`]: raised alerts, recorded once per rule, customer and window;
//! - [`Notifier`]: where alerts are delivered (log, signed webhook, SNS);
//! - [`Archive`]: the raw archive of every event (Firehose on AWS);
//! - [`Spool`]: the proxy's local buffer of events the log has not taken yet;
//! - [`LogRetention`]: moving a log's settled records into the archive (the embedded log).
//!
//! The model provider the proxy forwards to (Bedrock) is the proxy's own port,
//! `proxy::upstream::ModelRuntime`: nothing else calls it.
//!
//! Parquet, archive and quarantine objects go through the `object_store` crate directly.
//! Backends: [`embedded`] (one SQLite file, the default), [`aws`] (DynamoDB, Kinesis,
//! Firehose, S3, SNS) and [`memory`] (tests); [`backend`] opens one backend's [`backend::Ports`]
//! from the configuration. Every failure is a [`StoreError`] of one kind (not found,
//! conflict, corrupt, unavailable, rejected, config), whatever the backend.

pub mod admin_credentials;
pub mod alerts;
pub mod archive;
pub mod aws;
pub mod backend;
pub mod counters;
pub mod dedupe;
pub mod embedded;
pub mod error;
pub mod event_log;
pub mod idempotency;
pub mod log_retention;
pub mod memory;
pub mod notify;
pub mod objects;
pub mod plans;
pub mod quotas;
pub mod registry;
pub mod spool;
pub mod watermarks;

#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

pub use admin_credentials::AdminCredentials;
pub use alerts::Alerts;
pub use archive::{Archive, RawSource};
pub use counters::{ApplyReport, Counters, SourcedEvent};
pub use error::{Result, StoreError};
pub use event_log::{
    AppendFailure, AppendResult, Checkpoints, EventAppender, EventReader, LogEntry, LogRecord,
    PartitionInfo, ReadBatch, appends_on_the_calling_thread,
};
pub use idempotency::IdempotencyKeys;
pub use log_retention::{ArchivedRecords, LogArchiveName, LogFootprint, LogRetention};
pub use notify::Notifier;
pub use plans::Plans;
pub use quotas::{QuotaAdjustment, QuotaCharge, Quotas, Reservation};
pub use registry::{KeyUse, Registry};
pub use spool::{Spool, SpoolLevel, peek_on, pop_on};
pub use watermarks::{SeqObservation, Watermarks};
