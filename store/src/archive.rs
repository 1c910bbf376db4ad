//! The raw archive: the `Archive` port that writes the raw, replayable copy of every usage
//! event (Firehose to S3 on AWS), and [`RawSource`], where reconciliation and replay read
//! the raw events back. On the embedded backend the event log and the archive its retention
//! writes (`crate::log_retention`) are read together.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::ObjectStore;

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

/// Where reconciliation and replay read the raw events: what the installation keeps of
/// every event. Chosen by the backend's settings, never by whether this process writes the
/// archive: on AWS the template's Firehose archives the stream itself.
#[derive(Debug, Clone)]
pub enum RawSource {
    /// The event log, kept from its start (the embedded SQLite log; the memory log).
    WholeLog {
        /// Which log, for messages.
        location: String,
    },
    /// The archive a log's retention wrote (files named by
    /// [`crate::LogArchiveName`]), then the log after the highest archived position: the
    /// embedded backend.
    ArchivedLog {
        /// The archive's files, rooted at the data directory's `archive/`.
        archive: Arc<dyn ObjectStore>,
        /// Where the archive and the log are, for messages.
        location: String,
    },
    /// The raw archive: objects of newline-delimited JSON events, gzip or not.
    Archive {
        /// The archive's objects, rooted at its prefix.
        objects: Arc<dyn ObjectStore>,
        /// Where it is (`s3://bucket/prefix/`), for messages.
        location: String,
    },
    /// The event log alone, which keeps each record only for `retention` (a Kinesis stream
    /// when no archive is configured): events that arrived earlier are not in it.
    RetainedLog {
        /// The stream's name.
        stream_name: String,
        /// How long the stream keeps a record.
        retention: Duration,
    },
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
