//! Tollgate's records and their persisted formats. Pure: types, encodings and checks, no I/O.
//!
//! Every persisted or wire format carries a version. The usage event's JSON, Arrow and
//! Parquet forms are all generated from one field list in [`usage_event`], so a field
//! cannot be added to one form and forgotten in another.

pub mod admin_credential;
pub mod alert;
pub mod arrow_column;
pub mod audit;
pub mod bedrock_stream;
pub mod bedrock_usage;
pub(crate) mod byte_hash;
pub mod customer;
pub mod digits;
pub mod error;
pub mod model_id;
pub mod model_names;
pub mod model_prices;
pub mod name;
pub mod parquet_codec;
pub mod parquet_file;
pub mod plan;
pub mod quota;
pub mod request_id;
pub mod seller;
pub mod token;
pub mod usage_counts;
pub mod usage_event;
pub mod usage_event_binary;
pub(crate) mod usage_event_json;
pub mod usage_frame;
pub mod watermark;

pub use admin_credential::{AdminCredential, AdminRole};
pub use audit::AuditEntry;
pub use customer::{ApiKey, Customer, CustomerStatus, EnforcementMode, KeyStatus, Limits};
pub use error::DecodeError;
pub use name::Name;
pub use quota::LimitKind;
pub use request_id::RequestId;
pub use token::{SecretToken, TokenHash, TokenShape};
pub use usage_counts::{ApiRequests, CounterKey, DailyUsage, HourlyUsage, UsageCounts};
pub use usage_event::{ApiSurface, Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};
