use std::sync::Arc;

use chrono::Utc;
use futures::TryStreamExt;
use schemas::usage_frame::{FrameCodec, encode_frame};
use schemas::{Outcome, UsageEvent};
use store::LogRecord;
use store::backend::{BackendSettings, Ports};
use store::contract::registry::register_customers;
use uuid::Uuid;

use super::*;
use crate::raw::{RawSourceKind, decode_all, raw_records};
use crate::reconcile::{Reconciliation, reconcile};
use crate::replay::{ReplayTarget, replay};
use crate::{ConsumerSettings, MeteringConsumer};

const PARTITION: &str = "0";

struct Installation {
    directory: tempfile::TempDir,
    ports: Ports,
    customers: Vec<String>,
    /// Every event appended, in log order.
    appended: Vec<Uuid>,
}

fn position(seq: u64) -> String {
    format!("{seq:020}")
}

fn now_window() -> LogRetentionSettings {
    LogRetentionSettings {
        window: Duration::ZERO,
        ..LogRetentionSettings::default()
    }
}

async fn installation() -> Installation {
    let directory = tempfile::tempdir().unwrap();
    let settings = BackendSettings::Embedded {
        database: directory.path().join("tollgate.db"),
        data_dir: directory.path().to_owned(),
    };
    let ports = settings.open().await.unwrap();
    let customers = register_customers(ports.registry.as_ref(), 2).await;
    Installation {
        directory,
        ports,
        customers,
        appended: Vec::new(),
    }
}

impl Installation {
    /// Appends `frames` records of `events_per_frame` events each.
    async fn append_frames(&mut self, frames: usize, events_per_frame: usize) {
        let today = Utc::now().date_naive();
        let mut records = Vec::new();
        for frame in 0..frames {
            let customer = &self.customers[frame % self.customers.len()];
            let events: Vec<UsageEvent> = (0..events_per_frame)
                .map(|index| {
                    store::contract::event_on(
                        customer,
                        today,
                        "model-a",
                        Outcome::Success,
                        100 + index as u64,
                        7,
                    )
                })
                .collect();
            self.appended
                .extend(events.iter().map(|event| event.event_id));
            records.push(LogRecord {
                partition_key: customer.clone(),
                data: encode_frame(&events, FrameCodec::Zstd).unwrap().into(),
            });
        }
        let results = self.ports.event_appender.append(&records).await.unwrap();
        assert!(results.iter().all(Result::is_ok));
    }

    async fn drain(&self) {
        MeteringConsumer::from_ports(&self.ports, ConsumerSettings::default(), None)
            .drain()
            .await
            .unwrap();
    }

    async fn reconcile(&self) -> Reconciliation {
        let today = Utc::now().date_naive();
        reconcile(&self.ports, today, today, None).await.unwrap()
    }

    /// The events replay rebuilds into a fresh directory.
    async fn replayed_events(&self) -> usize {
        let target = tempfile::tempdir().unwrap();
        let projections = BackendSettings::Embedded {
            database: self.directory.path().join("tollgate.db"),
            data_dir: self.directory.path().to_owned(),
        }
        .open_projections(Some(target.path()), None, None)
        .await
        .unwrap();
        let report = replay(
            &self.ports,
            &ReplayTarget {
                counters: projections.counters,
                objects: projections.objects,
            },
            &|_, _| {},
        )
        .await
        .unwrap();
        assert_eq!(report.newly_counted, report.events);
        report.events
    }

    async fn retire(&self, settings: &LogRetentionSettings) -> RetentionReport {
        // A millisecond ahead: records are old enough when appended strictly before the
        // window's start, and the ones just appended can share `now`'s millisecond.
        let now = Utc::now() + chrono::Duration::milliseconds(1);
        retire_settled_log(&self.ports, settings, now)
            .await
            .unwrap()
    }

    fn retention(&self) -> Arc<dyn LogRetention> {
        self.ports.log_retention.clone().unwrap()
    }

    /// The archive's files and their sizes.
    async fn archive_files(&self) -> Vec<(String, u64)> {
        let archive =
            store::objects::local_object_store(&self.directory.path().join("archive")).unwrap();
        let mut files: Vec<(String, u64)> = archive
            .list(None)
            .map_ok(|meta| (meta.location.to_string(), meta.size))
            .try_collect()
            .await
            .unwrap();
        files.retain(|(name, _)| name.ends_with(".gz"));
        files.sort();
        files
    }

    /// The event ids the raw source yields, in order.
    async fn raw_event_ids(&self) -> Vec<Uuid> {
        let (events, undecodable) = decode_all(raw_records(&self.ports).await.unwrap());
        assert_eq!(undecodable, 0);
        events.iter().map(|event| event.event_id).collect()
    }
}

fn assert_reconciles(reconciliation: &Reconciliation, events: usize) {
    assert_eq!(reconciliation.raw_events, events, "{reconciliation:?}");
    assert_eq!(reconciliation.raw_duplicates, 0, "{reconciliation:?}");
    assert!(!reconciliation.has_drift(), "{reconciliation:?}");
    assert_eq!(
        reconciliation.source.kind,
        RawSourceKind::ArchiveAndEventLog
    );
}

#[tokio::test]
async fn settled_records_move_to_the_archive_and_the_database_shrinks() {
    let mut installation = installation().await;
    installation.append_frames(600, 40).await;
    installation.drain().await;
    assert_reconciles(&installation.reconcile().await, 24_000);
    assert_eq!(installation.replayed_events().await, 24_000);

    let report = installation.retire(&now_window()).await;
    assert!(report.applicable);
    assert_eq!(report.records_archived(), 600);
    assert_eq!(report.records_deleted(), 600);
    assert_eq!(report.before.records, 600);
    assert_eq!(report.after.records, 0);
    assert!(
        report.after.database_bytes < report.before.database_bytes / 2,
        "the file shrank: {report:?}"
    );
    assert!(report.bytes_reclaimed > 0, "{report:?}");
    assert!(!installation.archive_files().await.is_empty());

    // Replay and reconcile read the archive: the same events, counted the same.
    assert_reconciles(&installation.reconcile().await, 24_000);
    assert_eq!(installation.replayed_events().await, 24_000);

    // New records after the archived ones are read from the log, after the archive.
    installation.append_frames(10, 5).await;
    installation.drain().await;
    assert_reconciles(&installation.reconcile().await, 24_050);
    assert_eq!(installation.raw_event_ids().await, installation.appended);
    let again = installation.retire(&now_window()).await;
    assert_eq!((again.records_archived(), again.after.records), (10, 0));
    assert_reconciles(&installation.reconcile().await, 24_050);
    assert_eq!(installation.raw_event_ids().await, installation.appended);
}

#[tokio::test]
async fn a_record_some_reader_has_not_passed_stays_in_the_log() {
    let mut installation = installation().await;
    installation.append_frames(10, 2).await;
    let report = installation.retire(&now_window()).await;
    assert_eq!(
        report.records_archived(),
        0,
        "no consumer has read anything"
    );
    assert_eq!(
        report.partitions[0].held_back_by.as_deref(),
        Some("no consumer has a checkpoint")
    );

    installation.drain().await;
    installation.append_frames(5, 2).await;
    // A second consumer is behind the first: it has read 3 records.
    installation
        .ports
        .checkpoints
        .commit_checkpoint("audit-export", PARTITION, &position(3))
        .await
        .unwrap();
    let report = installation.retire(&now_window()).await;
    assert_eq!(report.records_archived(), 3);
    assert_eq!(
        report.partitions[0].held_back_by.as_deref(),
        Some("audit-export")
    );
    assert_eq!(report.after.records, 12);

    // It catches up; the records the metering consumer has not read (11 to 15) stay.
    installation
        .ports
        .checkpoints
        .commit_checkpoint("audit-export", PARTITION, &position(15))
        .await
        .unwrap();
    let report = installation.retire(&now_window()).await;
    assert_eq!(report.records_archived(), 7);
    assert_eq!(report.partitions[0].settled_through, Some(position(10)));
    assert_eq!(report.after.records, 5);

    // Nothing younger than the window leaves, settled or not.
    installation.drain().await;
    let within_window = LogRetentionSettings {
        window: Duration::from_secs(3600),
        ..LogRetentionSettings::default()
    };
    let report = installation.retire(&within_window).await;
    assert_eq!((report.records_archived(), report.after.records), (0, 5));
    assert_reconciles(&installation.reconcile().await, 30);
    assert_eq!(installation.raw_event_ids().await, installation.appended);
}

#[tokio::test]
async fn the_parquet_projection_behind_the_counters_holds_the_log_back() {
    let mut installation = installation().await;
    installation.append_frames(8, 2).await;
    // Parquet has written through record 5 (it buffers across batches); the counters'
    // consumer is at record 8.
    ParquetState {
        through: Some(position(5)),
        ..ParquetState::default()
    }
    .store(&installation.ports.objects, PARTITION)
    .await
    .unwrap();
    installation
        .ports
        .checkpoints
        .commit_checkpoint("metering", PARTITION, &position(8))
        .await
        .unwrap();
    let report = installation.retire(&now_window()).await;
    assert_eq!(
        report.partitions[0].held_back_by.as_deref(),
        Some("parquet")
    );
    assert_eq!(report.partitions[0].settled_through, Some(position(5)));
    assert_eq!((report.records_archived(), report.after.records), (5, 3));
    assert_eq!(installation.raw_event_ids().await, installation.appended);
}

#[tokio::test]
async fn running_it_again_changes_nothing() {
    let mut installation = installation().await;
    installation.append_frames(20, 3).await;
    installation.drain().await;
    let first = installation.retire(&now_window()).await;
    assert_eq!(first.records_archived(), 20);
    let files = installation.archive_files().await;
    let second = installation.retire(&now_window()).await;
    assert_eq!(
        (second.records_archived(), second.records_deleted()),
        (0, 0)
    );
    assert_eq!(second.partitions[0].archived_through, Some(position(20)));
    assert_eq!(installation.archive_files().await, files);
    assert_reconciles(&installation.reconcile().await, 60);
}

#[tokio::test]
async fn a_crash_between_archiving_and_deleting_counts_nothing_twice() {
    let mut installation = installation().await;
    installation.append_frames(30, 4).await;
    installation.drain().await;
    // The run archives, then dies before deleting: the records are in both.
    let archived = installation
        .retention()
        .archive_settled(PARTITION, &position(30), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (archived.records, archived.archived_through),
        (30, Some(position(30)))
    );
    assert_eq!(
        installation.retention().footprint().await.unwrap().records,
        30
    );
    // Read by position, the overlap is read once: no duplicate to drop by event_id.
    assert_reconciles(&installation.reconcile().await, 120);
    assert_eq!(installation.raw_event_ids().await, installation.appended);
    assert_eq!(installation.replayed_events().await, 120);

    // The next run deletes what the archive holds, and writes nothing again.
    let files = installation.archive_files().await;
    let report = installation.retire(&now_window()).await;
    assert_eq!(
        (report.records_archived(), report.records_deleted()),
        (0, 30)
    );
    assert_eq!(installation.archive_files().await, files);
    assert_reconciles(&installation.reconcile().await, 120);
    assert_eq!(installation.raw_event_ids().await, installation.appended);
}
