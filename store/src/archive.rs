//! The `Archive` port: the raw, replayable copy of every usage event (Firehose to S3 on
//! AWS). On the embedded backend the event log itself is the archive.

use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Result, StoreError};

/// An append-only archive of raw event records.
///
/// Contract: `Ok` means every record given is durable in the archive. The archive is
/// at-least-once: a call retried after an `Err` may store some records twice, so readers
/// of the archive dedupe by `event_id`.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Archives records, each one JSON document.
    async fn archive(&self, records: &[Bytes]) -> Result<()>;
}

/// An archive in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryArchive {
    records: Mutex<Vec<Bytes>>,
}

impl MemoryArchive {
    /// Everything archived so far.
    pub fn records(&self) -> Vec<Bytes> {
        self.records
            .lock()
            .map(|records| records.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Archive for MemoryArchive {
    async fn archive(&self, records: &[Bytes]) -> Result<()> {
        self.records
            .lock()
            .map_err(|_| StoreError::Task("memory archive lock poisoned".into()))?
            .extend_from_slice(records);
        Ok(())
    }
}
