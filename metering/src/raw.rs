//! The raw events, as the source of truth for reconciliation and replay: the embedded event
//! log with the archive its retention wrote, the raw archive that Firehose keeps in S3 on AWS, or, when no
//! archive is configured, the Kinesis stream, which holds only its retention
//! ([`store::RawSource`]). Every report says which one was read.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use schemas::UsageEvent;
use schemas::usage_frame::{decode_record, split_archive};
use store::backend::Ports;
use store::dedupe::compare_positions;
use store::{LogArchiveName, RawSource};
use uuid::Uuid;

use crate::{MeteringError, Result};

/// Records asked for per read of the log.
const LOG_READ_RECORDS: usize = 10_000;

/// Which kind of source the raw events were read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawSourceKind {
    /// The raw archive (S3 on AWS).
    Archive,
    /// The event log kept from its start (the memory store).
    #[default]
    EventLog,
    /// The archive the log's retention wrote, then the log after it (the embedded store).
    ArchiveAndEventLog,
    /// The Kinesis stream, which keeps only its retention.
    KinesisStream,
}

/// Which raw events a reconciliation or replay read, and how far back they can go.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RawSourceReport {
    pub kind: RawSourceKind,
    /// `s3://bucket/prefix/`, the embedded database, or the stream's name.
    pub location: String,
    /// How long the source keeps an event, when it keeps only a window (the stream).
    pub retention_hours: Option<u64>,
    /// When it keeps only a window: the oldest arrival it can still hold (the read's time
    /// minus the retention). Events that arrived earlier are missing from it.
    pub holds_events_since: Option<DateTime<Utc>>,
}

impl RawSourceReport {
    /// Describes `source` as read at `now`.
    pub fn describe(source: &RawSource, now: DateTime<Utc>) -> Self {
        match source {
            RawSource::WholeLog { location } => Self {
                kind: RawSourceKind::EventLog,
                location: location.clone(),
                retention_hours: None,
                holds_events_since: None,
            },
            RawSource::ArchivedLog { location, .. } => Self {
                kind: RawSourceKind::ArchiveAndEventLog,
                location: location.clone(),
                retention_hours: None,
                holds_events_since: None,
            },
            RawSource::Archive { location, .. } => Self {
                kind: RawSourceKind::Archive,
                location: location.clone(),
                retention_hours: None,
                holds_events_since: None,
            },
            RawSource::RetainedLog {
                stream_name,
                retention,
            } => Self {
                kind: RawSourceKind::KinesisStream,
                location: stream_name.clone(),
                retention_hours: Some(retention.as_secs() / 3600),
                holds_events_since: Some(
                    chrono::Duration::from_std(*retention)
                        .ok()
                        .and_then(|retention| now.checked_sub_signed(retention))
                        .unwrap_or(DateTime::<Utc>::MIN_UTC),
                ),
            },
        }
    }

    /// Whether the source can hold every event of the UTC days from `first_day` on: false
    /// when it keeps only a window that starts after `first_day` began.
    pub fn covers_days_from(&self, first_day: NaiveDate) -> bool {
        self.holds_events_since
            .is_none_or(|since| first_day.and_time(chrono::NaiveTime::MIN).and_utc() >= since)
    }
}

/// Raw records, decoded, with the count of those that are not usage events.
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

/// Every record of the event log, every partition from its start: each partition is read
/// until a read is caught up with its tip or reaches the end of a closed partition, never
/// merely until a read returns nothing (a Kinesis shard can answer empty pages first).
pub async fn log_records(ports: &Ports) -> Result<Vec<Bytes>> {
    log_records_after(ports, &HashMap::new()).await
}

/// Every record of the event log after the given position of each partition (from the
/// start of a partition not given), read as [`log_records`] reads.
pub async fn log_records_after(
    ports: &Ports,
    after_positions: &HashMap<String, String>,
) -> Result<Vec<Bytes>> {
    let mut records = Vec::new();
    for partition in ports.event_reader.partitions().await? {
        let mut after: Option<String> = after_positions.get(&partition.id).cloned();
        loop {
            let batch = ports
                .event_reader
                .read(&partition.id, after.as_deref(), LOG_READ_RECORDS)
                .await?;
            if let Some(last) = batch.entries.last() {
                after = Some(last.position.clone());
            }
            records.extend(batch.entries.into_iter().map(|entry| entry.data));
            if batch.caught_up || batch.end_of_partition {
                break;
            }
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

/// Every record of the raw archive rooted at `objects`: frames and newline-delimited JSON
/// objects, back to back, gzip or not.
pub async fn archive_records(objects: &Arc<dyn ObjectStore>) -> Result<Vec<Bytes>> {
    let listed: Vec<_> = objects.list(None).try_collect().await?;
    let mut records = Vec::new();
    for meta in listed {
        records.extend(archive_object_records(objects, &meta.location).await?);
    }
    Ok(records)
}

/// The records of one archive object, gzip or not.
async fn archive_object_records(
    objects: &Arc<dyn ObjectStore>,
    location: &object_store::path::Path,
) -> Result<Vec<Bytes>> {
    {
        let body = objects.get(location).await?.bytes().await?;
        let text = if body.starts_with(&[0x1f, 0x8b]) {
            let mut decoded = Vec::new();
            flate2::read::MultiGzDecoder::new(body.as_ref())
                .read_to_end(&mut decoded)
                .map_err(|error| {
                    MeteringError::Invalid(format!(
                        "archive object {location} is not valid gzip: {error}"
                    ))
                })?;
            Bytes::from(decoded)
        } else {
            body
        };
        Ok(split_archive(&text))
    }
}

/// The embedded log's raw records, in log order: the files its retention archived, by
/// position, then the log after the highest archived position of each partition. A record
/// both archived and still in the log (a crash between archiving and deleting) is read
/// once, from the archive. Files the retention did not write (no positions in their name)
/// are read first.
pub async fn archived_log_records(
    ports: &Ports,
    archive: &Arc<dyn ObjectStore>,
) -> Result<Vec<Bytes>> {
    let listed: Vec<_> = archive.list(None).try_collect().await?;
    let mut files: Vec<(Option<LogArchiveName>, object_store::path::Path)> = listed
        .into_iter()
        .map(|meta| (LogArchiveName::parse(meta.location.as_ref()), meta.location))
        .collect();
    files.sort_by(
        |(left, left_path), (right, right_path)| match (left, right) {
            (Some(left), Some(right)) => (&left.partition, left.first.len(), &left.first).cmp(&(
                &right.partition,
                right.first.len(),
                &right.first,
            )),
            _ => (left.is_some(), left_path).cmp(&(right.is_some(), right_path)),
        },
    );
    let mut records = Vec::new();
    let mut archived_through: HashMap<String, String> = HashMap::new();
    for (name, location) in files {
        records.extend(archive_object_records(archive, &location).await?);
        if let Some(name) = name {
            let highest = archived_through
                .entry(name.partition)
                .or_insert(name.last.clone());
            if compare_positions(&name.last, highest) == std::cmp::Ordering::Greater {
                *highest = name.last;
            }
        }
    }
    records.extend(log_records_after(ports, &archived_through).await?);
    Ok(records)
}

/// Every raw record of the ports' raw source: the archive when one is configured, else the
/// event log.
pub async fn raw_records(ports: &Ports) -> Result<Vec<Bytes>> {
    match &ports.raw_source {
        RawSource::Archive { objects, .. } => archive_records(objects).await,
        RawSource::ArchivedLog { archive, .. } => archived_log_records(ports, archive).await,
        RawSource::WholeLog { .. } | RawSource::RetainedLog { .. } => log_records(ports).await,
    }
}

/// The raw events sorted out the way the consumer sorts them.
#[derive(Debug, Clone, Default)]
pub struct RawEvents {
    /// Where they were read.
    pub source: RawSourceReport,
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
    let source = RawSourceReport::describe(&ports.raw_source, Utc::now());
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
        .partition(|event| customers.contains(event.customer_id.as_str()));
    Ok(RawEvents {
        source,
        records: count,
        undecodable,
        duplicates,
        meterable,
        unknown_customer,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use store::memory::MemoryStore;
    use store::{EventAppender, LogRecord};

    use super::*;

    fn ports_over(store: &Arc<MemoryStore>, reader: Arc<dyn store::EventReader>) -> Ports {
        Ports {
            event_reader: reader,
            ..Ports::in_memory(store)
        }
    }

    #[tokio::test]
    async fn the_log_is_read_on_through_empty_reads_until_caught_up() {
        let store = Arc::new(MemoryStore::new());
        let records: Vec<LogRecord> = (0..3)
            .map(|index| LogRecord {
                partition_key: "c".into(),
                data: Bytes::from(format!("record-{index}")),
            })
            .collect();
        store.append(&records).await.unwrap();
        let reader = Arc::new(store::contract::event_reader::EmptyReadsFirst::new(
            store.clone(),
            6,
        ));
        let read = log_records(&ports_over(&store, reader)).await.unwrap();
        assert_eq!(read.len(), 3, "six empty reads first are not the end");
    }

    #[tokio::test]
    async fn the_archive_is_read_from_its_own_root_gzip_or_not() {
        use std::io::Write;
        let archive: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
        archive
            .put(
                &"dt=2026-12-01/one.gz".into(),
                PutPayload::from(gzip.finish().unwrap()),
            )
            .await
            .unwrap();
        archive
            .put(
                &"dt=2026-12-02/two".into(),
                PutPayload::from_static(b"{\"a\":3}\n\n"),
            )
            .await
            .unwrap();
        let store = Arc::new(MemoryStore::new());
        let mut ports = ports_over(&store, store.clone());
        ports.raw_source = RawSource::Archive {
            objects: archive,
            location: "s3://b/archive/".into(),
        };
        let mut records = raw_records(&ports).await.unwrap();
        records.sort();
        assert_eq!(
            records,
            vec![
                Bytes::from("{\"a\":1}"),
                Bytes::from("{\"a\":2}"),
                Bytes::from("{\"a\":3}")
            ]
        );
    }

    #[test]
    fn a_stream_source_holds_only_its_retention_window() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 17, 0, 0).unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let stream = RawSourceReport::describe(
            &RawSource::RetainedLog {
                stream_name: "events".into(),
                retention: Duration::from_secs(24 * 3600),
            },
            now,
        );
        assert_eq!(stream.kind, RawSourceKind::KinesisStream);
        assert_eq!(stream.location, "events");
        assert_eq!(stream.retention_hours, Some(24));
        assert_eq!(
            stream.holds_events_since,
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 17, 0, 0).unwrap())
        );
        assert!(stream.covers_days_from(day(1)));
        assert!(
            !stream.covers_days_from(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()),
            "the 30th began before the window"
        );

        let archive = RawSourceReport::describe(
            &RawSource::Archive {
                objects: Arc::new(InMemory::new()),
                location: "s3://b/archive/".into(),
            },
            now,
        );
        assert_eq!(
            (
                archive.kind,
                archive.location.as_str(),
                archive.retention_hours
            ),
            (RawSourceKind::Archive, "s3://b/archive/", None)
        );
        assert!(archive.covers_days_from(day(1) - chrono::Days::new(400)));
        let log = RawSourceReport::describe(
            &RawSource::WholeLog {
                location: "the log".into(),
            },
            now,
        );
        assert_eq!(log.kind, RawSourceKind::EventLog);
        assert!(log.covers_days_from(day(1) - chrono::Days::new(400)));
    }
}
