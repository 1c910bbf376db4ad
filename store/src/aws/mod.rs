//! The AWS backends: Kinesis (event log appender and reader), DynamoDB (registry, plans,
//! counters, checkpoints),
//! Firehose (raw archive), S3 (Parquet, quarantine) through `object_store`, and SNS (alerts).
//!
//! Each client is built once from one [`AwsSettings`]; `endpoint_url` points every service
//! at an emulator in tests. Every client counts its requests and billable units in
//! [`meter::process_meter`]. Table designs are in `docs/architecture.md`.

mod attributes;
mod conditional;
pub mod counter_apply;
pub mod dynamo_admin_credentials;
pub mod dynamo_alerts;
mod dynamo_cells;
pub mod dynamo_checkpoints;
pub mod dynamo_counters;
pub mod dynamo_idempotency;
pub mod dynamo_plans;
pub mod dynamo_producers;
pub mod dynamo_quotas;
pub mod dynamo_registry;
pub mod dynamo_watermarks;
pub mod errors;
pub mod firehose_archive;
pub mod item_table;
pub mod kinesis_log;
pub mod meter;
pub mod meter_hooks;
mod registry_items;
mod registry_profile;
mod registry_transactions;
pub mod s3_objects;
pub mod settings;
pub mod sns_notifier;

pub use dynamo_admin_credentials::DynamoAdminCredentials;
pub use dynamo_alerts::DynamoAlerts;
pub use dynamo_checkpoints::DynamoCheckpoints;
pub use dynamo_counters::DynamoCounters;
pub use dynamo_idempotency::DynamoIdempotency;
pub use dynamo_plans::DynamoPlans;
pub use dynamo_quotas::DynamoQuotas;
pub use dynamo_registry::DynamoRegistry;
pub use dynamo_watermarks::DynamoWatermarks;
pub use firehose_archive::FirehoseArchive;
pub use kinesis_log::KinesisEventLog;
pub use settings::{AwsBackend, AwsSettings};
pub use sns_notifier::SnsNotifier;
