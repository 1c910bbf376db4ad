//! Quarantine for log records that cannot be decoded: the full payload and the reason are
//! kept as objects, so nothing is dropped and an operator can inspect or replay them.
//!
//! Keys are deterministic per record (`quarantine/<partition>/<position>.payload` and
//! `.reason.txt`), so a retried batch rewrites the same objects.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use store::LogEntry;

use crate::Result;

/// The prefix of quarantined records.
pub const QUARANTINE_PREFIX: &str = "quarantine";

fn component(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The payload's object path of a quarantined record.
pub fn payload_path(entry: &LogEntry) -> Path {
    Path::from(format!(
        "{QUARANTINE_PREFIX}/{}/{}.payload",
        component(&entry.partition),
        component(&entry.position)
    ))
}

fn reason_path(entry: &LogEntry) -> Path {
    Path::from(format!(
        "{QUARANTINE_PREFIX}/{}/{}.reason.txt",
        component(&entry.partition),
        component(&entry.position)
    ))
}

/// Writes a record's full payload and the reason it was quarantined.
pub async fn quarantine_record(
    objects: &Arc<dyn ObjectStore>,
    entry: &LogEntry,
    reason: &str,
) -> Result<()> {
    objects
        .put(&payload_path(entry), PutPayload::from(entry.data.clone()))
        .await?;
    let description = format!(
        "partition: {}\nposition: {}\npartition_key: {}\nreason: {reason}\n",
        entry.partition, entry.position, entry.partition_key
    );
    objects
        .put(
            &reason_path(entry),
            PutPayload::from(description.into_bytes()),
        )
        .await?;
    Ok(())
}
