//! What is in quarantine, and sending it through the log again once its cause is fixed (a
//! consumer upgraded to read a newer frame, a customer registered): `tollgate quarantine
//! list` and `tollgate quarantine requeue`.
//!
//! A requeued record is appended to the log as it was; a quarantined event of a frame is
//! appended as a frame of that one event, in its format. Each event keeps its producer and
//! sequence number, so the consumer counts it once however often it is sent: an event
//! requeued twice (a crash between the append and the deletion of its quarantine objects)
//! is a duplicate it skips. What still cannot be metered is quarantined again, under the
//! new log position.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use store::{EventAppender, LogRecord};

use schemas::usage_frame::{EventFormat, single_event_frame};

use crate::Result;
use crate::object_keys::{QUARANTINE_PREFIX, quarantine_reason_path};
use crate::quarantine::description_field;

/// Records appended per call to the log.
const APPEND_CHUNK: usize = 100;

/// The partition key of a requeued record whose original key is unknown.
pub const REQUEUE_PARTITION_KEY: &str = "quarantine-requeue";

/// One quarantined record, or one event of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedItem {
    /// The object holding its bytes.
    pub payload_key: String,
    pub partition: String,
    pub position: String,
    /// The event's place in its record's frame (from 1); `None` for a whole record.
    pub line: Option<usize>,
    pub partition_key: String,
    /// The format of a quarantined event (`json` or `binary`); events quarantined before
    /// binary frames existed were JSON.
    pub format: Option<String>,
    pub reason: String,
    pub bytes: u64,
}

/// What `requeue` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequeueReport {
    /// Records appended to the log again, their quarantine objects removed.
    pub requeued: usize,
    /// Records the log refused this time; they stay in quarantine (run it again).
    pub refused: usize,
}

/// Every quarantined item, in key order.
pub async fn list_quarantined(objects: &Arc<dyn ObjectStore>) -> Result<Vec<QuarantinedItem>> {
    let mut listed: Vec<_> = objects
        .list(Some(&Path::from(QUARANTINE_PREFIX)))
        .try_collect()
        .await?;
    listed.sort_by(|a, b| a.location.cmp(&b.location));
    let mut items = Vec::new();
    for meta in listed {
        let Some(reason_key) = quarantine_reason_path(&meta.location) else {
            continue;
        };
        let description = match objects.get(&reason_key).await {
            Ok(found) => String::from_utf8_lossy(&found.bytes().await?).into_owned(),
            Err(object_store::Error::NotFound { .. }) => String::new(),
            Err(error) => return Err(error.into()),
        };
        items.push(QuarantinedItem {
            payload_key: meta.location.to_string(),
            partition: description_field(&description, "partition")
                .unwrap_or("")
                .to_owned(),
            position: description_field(&description, "position")
                .unwrap_or("")
                .to_owned(),
            line: description_field(&description, "line")
                .and_then(|line| line.split_whitespace().next())
                .and_then(|number| number.parse().ok()),
            partition_key: description_field(&description, "partition_key")
                .unwrap_or("")
                .to_owned(),
            format: description_field(&description, "format").map(str::to_owned),
            reason: description_field(&description, "reason")
                .unwrap_or("")
                .to_owned(),
            bytes: meta.size,
        });
    }
    Ok(items)
}

/// The record that sends `item` (whose bytes are `payload`) through the log again.
fn record_for(item: &QuarantinedItem, payload: Bytes) -> std::io::Result<LogRecord> {
    let data = match item.line {
        None => payload,
        Some(_) => {
            let format = item
                .format
                .as_deref()
                .and_then(EventFormat::from_quarantine_name)
                .unwrap_or(EventFormat::Json);
            Bytes::from(single_event_frame(format, &payload)?)
        }
    };
    // A payload whose description is lost has no key; Kinesis refuses an empty one, and the
    // consumer reads a record the same under any key.
    let partition_key = if item.partition_key.is_empty() {
        REQUEUE_PARTITION_KEY.to_owned()
    } else {
        item.partition_key.clone()
    };
    Ok(LogRecord {
        partition_key,
        data,
    })
}

/// Appends every quarantined item to `log` again and removes the quarantine objects of
/// those the log took. See the module's documentation for why this counts nothing twice.
pub async fn requeue_quarantined(
    objects: &Arc<dyn ObjectStore>,
    log: &dyn EventAppender,
) -> Result<RequeueReport> {
    let items = list_quarantined(objects).await?;
    let mut report = RequeueReport::default();
    for chunk in items.chunks(APPEND_CHUNK) {
        let mut records = Vec::with_capacity(chunk.len());
        for item in chunk {
            let payload = objects
                .get(&Path::from(item.payload_key.as_str()))
                .await?
                .bytes()
                .await?;
            let record = record_for(item, payload)
                .map_err(|error| crate::MeteringError::Invalid(error.to_string()))?;
            records.push(record);
        }
        let results = log.append(&records).await?;
        for (item, result) in chunk.iter().zip(results) {
            if result.is_err() {
                report.refused += 1;
                continue;
            }
            let stem = item.payload_key.trim_end_matches(".payload");
            objects
                .delete(&Path::from(item.payload_key.as_str()))
                .await?;
            match objects
                .delete(&Path::from(format!("{stem}.reason.txt")))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            report.requeued += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
#[path = "quarantine_requeue_tests.rs"]
mod tests;
