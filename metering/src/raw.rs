//! The raw events, as the source of truth for reconciliation and replay: the embedded event
//! log from its start, or the raw archive that Firehose keeps in S3 on AWS.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use schemas::UsageEvent;
use schemas::usage_frame::{decode_record, split_archive};
use store::backend::Ports;
use uuid::Uuid;

use crate::object_keys::archive_prefix;
use crate::{MeteringError, Result};

/// Raw records (frames of events, or single events written before frames), decoded, with
/// the count of what is not a usage event: unreadable records, and undecodable lines.
pub fn decode_all(records: impl IntoIterator<Item = Bytes>) -> (Vec<UsageEvent>, usize) {
    let mut events = Vec::new();
    let mut undecodable = 0;
    for record in records {
        match decode_record(&record) {
            Ok(lines) => {
                for line in lines {
                    match line.event {
                        Ok(event) => events.push(event),
                        Err(_) => undecodable += 1,
                    }
                }
            }
            Err(_) => undecodable += 1,
        }
    }
    (events, undecodable)
}

/// Every record of the embedded event log, every partition from its start.
pub async fn log_records(ports: &Ports) -> Result<Vec<Bytes>> {
    let mut records = Vec::new();
    for partition in ports.event_reader.partitions().await? {
        let mut after: Option<String> = None;
        loop {
            let batch = ports
                .event_reader
                .read(&partition.id, after.as_deref(), 10_000)
                .await?;
            let Some(last) = batch.entries.last() else {
                break;
            };
            after = Some(last.position.clone());
            records.extend(batch.entries.into_iter().map(|entry| entry.data));
        }
    }
    Ok(records)
}

/// Keeps the first event of each `event_id`; returns them and how many were dropped.
pub fn unique_events(events: Vec<UsageEvent>) -> (Vec<UsageEvent>, usize) {
    let mut seen: HashSet<Uuid> = HashSet::with_capacity(events.len());
    let total = events.len();
    let unique: Vec<UsageEvent> = events
        .into_iter()
        .filter(|event| seen.insert(event.event_id))
        .collect();
    let dropped = total - unique.len();
    (unique, dropped)
}

/// Every record of the raw archive: frames and newline-delimited JSON objects, back to
/// back, gzip or not.
pub async fn archive_records(objects: &Arc<dyn ObjectStore>) -> Result<Vec<Bytes>> {
    let listed: Vec<_> = objects.list(Some(&archive_prefix())).try_collect().await?;
    let mut records = Vec::new();
    for meta in listed {
        let body = objects.get(&meta.location).await?.bytes().await?;
        let text = if body.starts_with(&[0x1f, 0x8b]) {
            let mut decoded = Vec::new();
            flate2::read::MultiGzDecoder::new(body.as_ref())
                .read_to_end(&mut decoded)
                .map_err(|error| {
                    MeteringError::Invalid(format!(
                        "archive object {} is not valid gzip: {error}",
                        meta.location
                    ))
                })?;
            Bytes::from(decoded)
        } else {
            body
        };
        records.extend(split_archive(&text));
    }
    Ok(records)
}

/// Every raw record: the event log on the embedded backend, the archive on AWS.
pub async fn raw_records(ports: &Ports) -> Result<Vec<Bytes>> {
    match ports.archive {
        None => log_records(ports).await,
        Some(_) => archive_records(&ports.objects).await,
    }
}

/// The raw events sorted out the way the consumer sorts them.
#[derive(Debug, Clone, Default)]
pub struct RawEvents {
    /// Raw records read.
    pub records: usize,
    /// Records that are not usage events.
    pub undecodable: usize,
    /// Copies dropped by `event_id` (the first copy is kept).
    pub duplicates: usize,
    /// Unique events of known customers, in raw order.
    pub meterable: Vec<UsageEvent>,
    /// Unique events of customers the registry does not know (quarantined by the consumer).
    pub unknown_customer: Vec<UsageEvent>,
}

/// Reads the raw events and sorts them out: decoded, deduplicated by `event_id`, split by
/// whether the registry knows their customer.
pub async fn meterable_events(ports: &Ports) -> Result<RawEvents> {
    let records = raw_records(ports).await?;
    let count = records.len();
    let (decoded, undecodable) = decode_all(records);
    let (unique, duplicates) = unique_events(decoded);
    let customers: HashSet<String> = ports
        .registry
        .list_customers()
        .await?
        .into_iter()
        .map(|customer| customer.customer_id)
        .collect();
    let (meterable, unknown_customer) = unique
        .into_iter()
        .partition(|event| customers.contains(&event.customer_id));
    Ok(RawEvents {
        records: count,
        undecodable,
        duplicates,
        meterable,
        unknown_customer,
    })
}
