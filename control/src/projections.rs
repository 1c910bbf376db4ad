//! The projections' checks and rebuilds: `reconcile` (raw events against counters and
//! Parquet), `replay` (rebuild into fresh projections) and `compact` (merge a day's
//! Parquet files). The work is `metering`'s; this layer checks the operator's input.

use chrono::NaiveDate;
use metering::compact::{CompactionReport, CompactionSettings, TARGET_FILE_BYTES, compact_day};
use metering::log_retention::{LogRetentionSettings, RetentionReport, retire_settled_log};
use metering::reconcile::Reconciliation;
use metering::replay::{ReplayReport, ReplayTarget};
use store::backend::Ports;

use crate::dates::check_date_range;
use crate::error::{ControlError, Result};
use crate::lookup::existing_customer;

/// Longest range one `reconcile` reads.
pub const MAX_RECONCILE_DAYS: i64 = 366;

/// A reconciliation: `reconcile`.
#[derive(Debug, Clone)]
pub struct ReconcileRequest {
    /// First day, inclusive (UTC).
    pub start_date: NaiveDate,
    /// Last day, inclusive (UTC).
    pub end_date: NaiveDate,
    /// Only this customer; every customer when `None`.
    pub customer_id: Option<String>,
}

/// `reconcile`: compares the raw events (the event log on the embedded backend, the raw
/// archive on AWS, or the Kinesis stream's window when no archive is configured; the
/// result names its source) with the counters and Parquet, per customer and day. Drift is
/// a result ([`Reconciliation::has_drift`]), not an error. `Invalid` for a reversed or
/// overlong range, `NotFound` for an unknown customer.
pub async fn reconcile(ports: &Ports, request: &ReconcileRequest) -> Result<Reconciliation> {
    check_date_range(request.start_date, request.end_date, MAX_RECONCILE_DAYS)?;
    if let Some(customer_id) = &request.customer_id {
        existing_customer(ports.registry.as_ref(), customer_id).await?;
    }
    Ok(metering::reconcile::reconcile(
        ports,
        request.start_date,
        request.end_date,
        request.customer_id.as_deref(),
    )
    .await?)
}

/// `replay`: rebuilds counters and Parquet from every raw event of `source` into
/// `target`, which should be fresh. Running it again gives the same result.
/// `progress(done, total)` is called as events are applied.
pub async fn replay(
    source: &Ports,
    target: &ReplayTarget,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ReplayReport> {
    Ok(metering::replay::replay(source, target, progress).await?)
}

/// `compact`: merges `day`'s Parquet files into large files of its unique events. A batch
/// file is merged once Parquet's progress has passed it (or, for a partition without
/// progress, once it is older than `settle_after`, the longest a record is retried).
pub async fn compact(
    ports: &Ports,
    day: NaiveDate,
    settle_after: std::time::Duration,
) -> Result<CompactionReport> {
    let settings = CompactionSettings {
        settle_after,
        target_file_bytes: TARGET_FILE_BYTES,
    };
    Ok(compact_day(&ports.objects, day, &settings).await?)
}

/// `archive-log`: moves the embedded log's settled records appended more than `window`
/// ago into the data directory's archive, deletes them from the database and gives the
/// space back (what `serve` does periodically). Running it again changes nothing.
/// `Invalid` on a backend whose log expires records itself (AWS).
pub async fn archive_log(ports: &Ports, window: std::time::Duration) -> Result<RetentionReport> {
    if ports.log_retention.is_none() {
        return Err(ControlError::Invalid {
            field: "backend",
            message: "archive-log moves the embedded log's records; on --backend aws the stream expires records itself and Firehose archives them".into(),
        });
    }
    let settings = LogRetentionSettings {
        window,
        ..LogRetentionSettings::default()
    };
    Ok(retire_settled_log(ports, &settings, chrono::Utc::now()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ControlError;
    use crate::customers::{NewCustomer, create_customer};
    use crate::test_support::{memory_ports, operator};
    use schemas::Outcome;
    use store::LogRecord;
    use store::memory::MemoryStore;

    async fn one_logged_event(ports: &Ports) -> (String, NaiveDate) {
        let issued = create_customer(
            ports.registry.as_ref(),
            &operator(),
            NewCustomer::named("A", "a@a.example"),
        )
        .await
        .unwrap();
        let today = chrono::Utc::now().date_naive();
        let event = store::contract::event_on(
            &issued.customer_id,
            today,
            "model-a",
            Outcome::Success,
            2,
            3,
        );
        let record = LogRecord {
            partition_key: issued.customer_id.clone(),
            data: event.encode_json().unwrap().into(),
        };
        ports.event_appender.append(&[record]).await.unwrap();
        (issued.customer_id, today)
    }

    #[tokio::test]
    async fn reconcile_finds_events_not_yet_metered_as_drift_and_checks_its_input() {
        let (_, ports) = memory_ports();
        let (customer_id, today) = one_logged_event(&ports).await;
        let request = ReconcileRequest {
            start_date: today,
            end_date: today,
            customer_id: Some(customer_id),
        };
        let found = reconcile(&ports, &request).await.unwrap();
        assert_eq!(found.raw_events, 1);
        assert!(
            found.has_drift(),
            "the counters have not seen it: {found:?}"
        );
        let unknown = ReconcileRequest {
            customer_id: Some("nobody".into()),
            ..request.clone()
        };
        let error = reconcile(&ports, &unknown).await.unwrap_err();
        assert!(matches!(error, ControlError::NotFound { .. }));
        let reversed = ReconcileRequest {
            start_date: today,
            end_date: today - chrono::Days::new(1),
            customer_id: None,
        };
        let error = reconcile(&ports, &reversed).await.unwrap_err();
        assert!(matches!(error, ControlError::Invalid { .. }));
    }

    #[tokio::test]
    async fn replay_rebuilds_the_counters_into_a_fresh_target() {
        let (_, ports) = memory_ports();
        let (customer_id, today) = one_logged_event(&ports).await;
        let target_counters = std::sync::Arc::new(MemoryStore::new());
        let target = ReplayTarget {
            counters: target_counters.clone(),
            objects: std::sync::Arc::new(object_store::memory::InMemory::new()),
        };
        let report = replay(&ports, &target, &|_, _| {}).await.unwrap();
        assert_eq!((report.events, report.newly_counted), (1, 1));
        let again = replay(&ports, &target, &|_, _| {}).await.unwrap();
        assert_eq!(again.newly_counted, 0, "idempotent");
        use store::Counters;
        let cells = target_counters
            .read_daily(&customer_id, today, today)
            .await
            .unwrap();
        assert_eq!(cells[0].counts.requests, 1);
    }

    #[tokio::test]
    async fn compacting_a_day_without_files_does_nothing() {
        let (_, ports) = memory_ports();
        let day = chrono::Utc::now().date_naive();
        let report = compact(&ports, day, std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(report.day, day);
        assert_eq!((report.files_merged, report.files_written), (0, 0));
    }

    #[tokio::test]
    async fn archive_log_is_refused_where_the_log_expires_records_itself() {
        let (_store, ports) = memory_ports();
        let refused = archive_log(&ports, std::time::Duration::ZERO)
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                ControlError::Invalid {
                    field: "backend",
                    ..
                }
            ),
            "{refused:?}"
        );
    }
}
