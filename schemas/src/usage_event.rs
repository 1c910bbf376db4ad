//! `UsageEvent` v1: one immutable record per answered call, and its JSON and Arrow forms.
//!
//! The field list below is the single definition. The `define_usage_event!` macro turns
//! it into the struct (whose serde form is the JSON encoding), the Arrow schema, and the
//! conversions to and from an Arrow `RecordBatch`.

use std::borrow::Borrow;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DecodeError;
use crate::arrow_column::{ArrowColumn, StringEnum};
use crate::name::Name;
use crate::request_id::RequestId;

/// The version written into every new event's `schema_version`.
pub const USAGE_EVENT_SCHEMA_VERSION: u16 = 1;

/// Which Bedrock runtime operation the call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Invoke,
    InvokeStream,
    Converse,
    ConverseStream,
    /// CountTokens: counts a request's input tokens without running the model. Bedrock
    /// does not bill it, and the proxy does not meter it (no event carries it).
    CountTokens,
}

impl StringEnum for Operation {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::InvokeStream => "invoke_stream",
            Self::Converse => "converse",
            Self::ConverseStream => "converse_stream",
            Self::CountTokens => "count_tokens",
        }
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "invoke" => Some(Self::Invoke),
            "invoke_stream" => Some(Self::InvokeStream),
            "converse" => Some(Self::Converse),
            "converse_stream" => Some(Self::ConverseStream),
            "count_tokens" => Some(Self::CountTokens),
            _ => None,
        }
    }
}
crate::string_enum_column!(Operation);

/// Which of the proxy's APIs the customer called: the request's shape, whatever Bedrock
/// operation served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiSurface {
    /// Bedrock runtime's own routes (`/model/{modelId}/invoke`, `…/converse`, …), as the
    /// AWS SDKs call them.
    Bedrock,
    /// The original specification's route: `POST /prod/bedrock` with `modelId` in the body.
    Spec,
    /// Anthropic's Messages API (`POST /v1/messages`).
    Anthropic,
    /// OpenAI's Chat Completions API (`POST /v1/chat/completions`).
    #[serde(rename = "openai")]
    OpenAi,
}

impl ApiSurface {
    /// Every surface, in the order reports list them.
    pub const ALL: [Self; 4] = [Self::Bedrock, Self::Spec, Self::Anthropic, Self::OpenAi];
}

impl StringEnum for ApiSurface {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Bedrock => "bedrock",
            Self::Spec => "spec",
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
        }
    }
    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|surface| surface.as_str() == text)
    }
}
crate::string_enum_column!(ApiSurface);

/// How the call ended, from the customer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Bedrock answered 2xx.
    Success,
    /// Tollgate refused the request as invalid after admitting it (reserved: today such
    /// requests are refused before admission and not metered).
    ClientError,
    /// Bedrock answered with an error (throttling, validation, model or service errors),
    /// refused the service's own access, or could not be reached or timed out.
    UpstreamError,
    /// Tollgate refused the call because a limit was reached; Bedrock was not called.
    RejectedLimit,
    /// The client went away before the answer was complete.
    ClientAborted,
}

impl Outcome {
    /// Whether the call was admitted and sent towards Bedrock (every outcome but a limit rejection).
    pub fn was_admitted(self) -> bool {
        !matches!(self, Self::RejectedLimit)
    }
    /// Whether the call counts as an error in reports and alerts.
    pub fn is_error(self) -> bool {
        matches!(self, Self::ClientError | Self::UpstreamError)
    }
}

impl StringEnum for Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ClientError => "client_error",
            Self::UpstreamError => "upstream_error",
            Self::RejectedLimit => "rejected_limit",
            Self::ClientAborted => "client_aborted",
        }
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "success" => Some(Self::Success),
            "client_error" => Some(Self::ClientError),
            "upstream_error" => Some(Self::UpstreamError),
            "rejected_limit" => Some(Self::RejectedLimit),
            "client_aborted" => Some(Self::ClientAborted),
            _ => None,
        }
    }
}
crate::string_enum_column!(Outcome);

/// Events written into the Parquet columns per block (see `write_parquet_columns`).
const WRITE_BLOCK_ROWS: usize = 128;

macro_rules! define_usage_event {
    ( $( $(#[$attribute:meta])* $field:ident : $field_type:ty ),+ $(,)? ) => {
        /// One immutable usage record. Never contains the bearer token.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct UsageEvent {
            $( $(#[$attribute])* pub $field: $field_type, )+
        }

        /// The column names, in schema order.
        pub const USAGE_EVENT_COLUMNS: &[&str] = &[ $( stringify!($field) ),+ ];

        /// The Arrow schema of usage events, derived from the field list.
        pub fn usage_event_arrow_schema() -> Schema {
            Schema::new(vec![ $(
                Field::new(
                    stringify!($field),
                    <$field_type as ArrowColumn>::data_type(),
                    <$field_type as ArrowColumn>::nullable(),
                )
            ),+ ])
        }

        /// The Glue/Athena columns of usage events (name, Hive type), derived from the
        /// Arrow schema; the table is partitioned by `dt` (the UTC day, `YYYY-MM-DD`).
        pub fn usage_event_glue_columns() -> Vec<(String, &'static str)> {
            usage_event_arrow_schema()
                .fields()
                .iter()
                .map(|field| {
                    let hive = match field.data_type() {
                        arrow_schema::DataType::Int32 => "int",
                        arrow_schema::DataType::Int64 => "bigint",
                        arrow_schema::DataType::Timestamp(..) => "timestamp",
                        arrow_schema::DataType::Utf8 => "string",
                        _ => "unsupported",
                    };
                    (field.name().clone(), hive)
                })
                .collect()
        }

        /// Converts events (owned or borrowed) to one Arrow batch, one row per event, in order.
        pub fn events_to_record_batch<E: Borrow<UsageEvent>>(events: &[E]) -> Result<RecordBatch, DecodeError> {
            let columns: Vec<ArrayRef> = vec![ $(
                <$field_type as ArrowColumn>::build_column(events.iter().map(|event| &event.borrow().$field))
            ),+ ];
            RecordBatch::try_new(Arc::new(usage_event_arrow_schema()), columns)
                .map_err(|error| DecodeError::Arrow(error.to_string()))
        }

        /// Pushes every event's values into the Parquet columns of a file being written
        /// (one chunk per field, in schema order), a block of [`WRITE_BLOCK_ROWS`] events
        /// at a time, a column at a time within the block: the block's events stay in the
        /// cache while each column reads them, and a column whose values are integers takes
        /// the block's in one run rather than a call per value. (A column at a time over a
        /// whole batch read every event once per column, and was slower once the events
        /// outgrew the cache.)
        pub(crate) fn write_parquet_columns<E: Borrow<UsageEvent>>(
            events: &[E],
            columns: &mut [crate::parquet_file::ColumnChunk],
        ) {
            for block in events.chunks(WRITE_BLOCK_ROWS) {
                let mut columns = columns.iter_mut();
                $(
                    if let Some(column) = columns.next() {
                        <$field_type as ArrowColumn>::write_parquet_run(
                            block.iter().map(|event| &event.borrow().$field),
                            column,
                        );
                    }
                )+
            }
        }

        /// Reads events back from an Arrow batch. Columns are found by name.
        pub fn events_from_record_batch(batch: &RecordBatch) -> Result<Vec<UsageEvent>, DecodeError> {
            $(
                let mut $field = match batch.column_by_name(stringify!($field)) {
                    Some(column) => <$field_type as ArrowColumn>::read_column(
                        stringify!($field),
                        column.as_ref(),
                    )?,
                    // A file written before an optional field existed reads it as absent.
                    None => <$field_type as ArrowColumn>::absent(batch.num_rows())
                        .ok_or(DecodeError::MissingColumn { column: stringify!($field) })?,
                }
                .into_iter();
            )+
            let mut events = Vec::with_capacity(batch.num_rows());
            for _ in 0..batch.num_rows() {
                events.push(UsageEvent { $(
                    $field: $field.next().ok_or(DecodeError::Arrow(format!(
                        "column {} is shorter than the batch",
                        stringify!($field)
                    )))?,
                )+ });
            }
            Ok(events)
        }
    };
}

define_usage_event! {
    /// UUIDv7 assigned when the proxy accepted the request; the dedupe key of every projection.
    event_id: Uuid,
    /// Version of this record's format; see [`USAGE_EVENT_SCHEMA_VERSION`].
    schema_version: u16,
    /// When the proxy accepted the request, UTC, millisecond precision.
    #[serde(with = "rfc3339_millis")]
    occurred_at: DateTime<Utc>,
    /// The calling customer.
    customer_id: Name,
    /// The public id of the key used (never the token).
    key_id: Name,
    /// Tollgate's request id, returned to the client as `x-amzn-requestid`.
    request_id: RequestId,
    /// Bedrock's request id, when Bedrock answered.
    upstream_request_id: Option<RequestId>,
    /// The model id as the client gave it.
    model_id: Name,
    /// The Bedrock runtime operation.
    operation: Operation,
    /// The API the customer called. Absent only in events written before it was recorded
    /// (their JSON has no `api`, their Parquet files no `api` column).
    #[serde(default)]
    api: Option<ApiSurface>,
    /// The HTTP status returned to the client.
    status: u16,
    /// How the call ended.
    outcome: Outcome,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    /// Total time from accepting the request to the end of the answer.
    latency_ms: u64,
    /// Time spent waiting on Bedrock; absent when Bedrock was not called.
    upstream_latency_ms: Option<u64>,
    request_bytes: u64,
    response_bytes: u64,
    /// The proxy process that wrote the event.
    proxy_instance: Name,
    /// Monotonic per `proxy_instance`, starting at 1, so gaps in the log can be detected.
    instance_seq: u64,
}

impl UsageEvent {
    /// The UTC calendar day the event counts in.
    pub fn day(&self) -> NaiveDate {
        self.occurred_at.date_naive()
    }

    /// Encodes the event as versioned JSON, the format of the event log and the archive.
    pub fn encode_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// Truncates a timestamp to the millisecond precision that every format keeps.
pub fn truncate_to_millis(timestamp: DateTime<Utc>) -> DateTime<Utc> {
    timestamp.trunc_subsecs(3)
}

mod rfc3339_millis {
    //! `occurred_at` as an RFC 3339 string with milliseconds and a `Z`.
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)?;
        Ok(super::truncate_to_millis(parsed.with_timezone(&Utc)))
    }
}

#[cfg(test)]
#[path = "usage_event_tests.rs"]
pub(crate) mod tests;
