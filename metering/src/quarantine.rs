//! Quarantine for log records that cannot be decoded: the full payload and the reason are
//! kept as objects, so nothing is dropped and an operator can inspect or replay them.
//!
//! Keys are [`QuarantineObjectKey`]s, deterministic per record, so a retried batch rewrites
//! the same objects.

use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use store::LogEntry;

use crate::Result;
use crate::object_keys::QuarantineObjectKey;

/// A field of a quarantine description: the reason object holds one `name: value` line per
/// field (`partition`, `position`, `line` for an event of a frame, `format` for an event,
/// `partition_key`, `reason`), written by [`quarantine_record`] and [`quarantine_line`].
pub fn description_field<'a>(description: &'a str, name: &str) -> Option<&'a str> {
    description.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(": "))
    })
}

/// The key of a log entry's quarantined objects.
pub fn quarantine_key(entry: &LogEntry) -> QuarantineObjectKey {
    QuarantineObjectKey {
        partition: entry.partition.clone(),
        position: entry.position.clone(),
    }
}

/// Writes a record's full payload and the reason it was quarantined.
pub async fn quarantine_record(
    objects: &Arc<dyn ObjectStore>,
    entry: &LogEntry,
    reason: &str,
) -> Result<()> {
    let description = format!(
        "partition: {}\nposition: {}\npartition_key: {}\nreason: {reason}\n",
        entry.partition, entry.position, entry.partition_key
    );
    write_quarantined(
        objects,
        quarantine_key(entry),
        entry.data.clone(),
        description,
    )
    .await
}

/// Writes one event line of a frame (the rest of the frame was metered) and the reason:
/// under the record's position followed by `-<line>` (counted from 1).
pub async fn quarantine_line(
    objects: &Arc<dyn ObjectStore>,
    entry: &LogEntry,
    line: usize,
    bytes: bytes::Bytes,
    reason: &str,
) -> Result<()> {
    let key = QuarantineObjectKey {
        partition: entry.partition.clone(),
        position: format!("{}-{line}", entry.position),
    };
    // The event's bytes are in the frame's format: `tollgate quarantine requeue` needs it.
    let format = schemas::usage_frame::record_format(&entry.data)
        .unwrap_or_default()
        .quarantine_name();
    let description = format!(
        "partition: {}\nposition: {}\nline: {line} of the record's frame\nformat: {format}\npartition_key: {}\nreason: {reason}\n",
        entry.partition, entry.position, entry.partition_key
    );
    write_quarantined(objects, key, bytes, description).await
}

async fn write_quarantined(
    objects: &Arc<dyn ObjectStore>,
    key: QuarantineObjectKey,
    payload: bytes::Bytes,
    description: String,
) -> Result<()> {
    objects
        .put(&key.payload_path(), PutPayload::from(payload))
        .await?;
    objects
        .put(
            &key.reason_path(),
            PutPayload::from(description.into_bytes()),
        )
        .await?;
    Ok(())
}
