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
    let key = quarantine_key(entry);
    objects
        .put(&key.payload_path(), PutPayload::from(entry.data.clone()))
        .await?;
    let description = format!(
        "partition: {}\nposition: {}\npartition_key: {}\nreason: {reason}\n",
        entry.partition, entry.position, entry.partition_key
    );
    objects
        .put(
            &key.reason_path(),
            PutPayload::from(description.into_bytes()),
        )
        .await?;
    Ok(())
}
