//! Applying a run of log entries to the projections: decode, quarantine what cannot be
//! metered, archive the raw records, count exactly once, write Parquet. Shared by the
//! polling consumer (which then commits its checkpoint) and the Kinesis Lambda handler
//! (whose event source mapping keeps the position).
//!
//! Every step is idempotent, so a run that fails anywhere can be applied again whole.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::ObjectStore;
use schemas::UsageEvent;
use schemas::name::Names;
use schemas::usage_frame::{decode_record_with, record_event_count};
use store::{
    ApplyReport, Archive, Counters, EventReader, LogEntry, Registry, SeqObservation, SourcedEvent,
    Watermarks,
};

use crate::Result;
use crate::alert_engine::AlertEngine;
use crate::parquet_buffer::{FlushPolicy, ParquetProjection};

mod parquet;
mod stats;

use crate::quarantine::{quarantine_line, quarantine_record};
use stats::count;
pub use stats::{ConsumerStats, MeteringRole, PassReport};

/// The most events a run reserves room for up front (a run of more grows as it decodes).
const MAX_RESERVED_EVENTS: usize = 1 << 20;

/// Applies runs of log entries to the counters, Parquet and (optionally) the archive.
pub struct BatchApplier {
    counters: Arc<dyn Counters>,
    pub(super) objects: Arc<dyn ObjectStore>,
    role: MeteringRole,
    pub(super) parquet: Option<ParquetProjection>,
    archive: Option<Arc<dyn Archive>>,
    registry: Option<Arc<dyn Registry>>,
    watermarks: Option<Arc<dyn Watermarks>>,
    alert_engine: Option<Arc<AlertEngine>>,
    known_customers: Mutex<HashSet<String>>,
    /// The log, to learn a partition's parents (after a reshard).
    log: Option<Arc<dyn EventReader>>,
    parents: Mutex<HashMap<String, Vec<String>>>,
    pub stats: Arc<ConsumerStats>,
}

impl std::fmt::Debug for BatchApplier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BatchApplier")
            .field("archive", &self.archive.is_some())
            .field("registry", &self.registry.is_some())
            .field("alerts", &self.alert_engine.is_some())
            .finish()
    }
}

impl BatchApplier {
    /// An applier writing counters and Parquet objects.
    pub fn new(counters: Arc<dyn Counters>, objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            parquet: Some(ParquetProjection::new(
                Arc::clone(&objects),
                FlushPolicy::EVERY_BATCH,
            )),
            role: MeteringRole::All,
            counters,
            objects,
            archive: None,
            registry: None,
            watermarks: None,
            alert_engine: None,
            known_customers: Mutex::new(HashSet::new()),
            log: None,
            parents: Mutex::new(HashMap::new()),
            stats: Arc::new(ConsumerStats::default()),
        }
    }

    /// An applier over a backend's ports: archive and unknown-customer checks included.
    pub fn from_ports(ports: &store::backend::Ports) -> Self {
        Self::new(ports.counters.clone(), ports.objects.clone())
            .with_archive(ports.archive.clone())
            .with_registry(Some(ports.registry.clone()))
            .with_watermarks(Some(ports.watermarks.clone()))
            .with_log(Some(ports.event_reader.clone()))
    }

    /// The object store Parquet and quarantine are written to.
    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.objects)
    }

    /// Writes only the projections of `role`.
    pub fn with_role(mut self, role: MeteringRole) -> Self {
        self.role = role;
        if role == MeteringRole::Counters {
            self.parquet = None;
        }
        self
    }

    /// Also looks up a new partition's parents in the log, so Parquet carries their
    /// producer numbers over a reshard.
    pub fn with_log(mut self, log: Option<Arc<dyn EventReader>>) -> Self {
        self.log = log;
        self
    }

    /// The partitions `partition` was split or merged from (none without a log, or when
    /// the log does not list it).
    pub(super) async fn parents_of(&self, partition: &str) -> Result<Vec<String>> {
        let Some(log) = &self.log else {
            return Ok(Vec::new());
        };
        if let Some(parents) = self
            .parents
            .lock()
            .ok()
            .and_then(|known| known.get(partition).cloned())
        {
            return Ok(parents);
        }
        let listed = log.partitions().await?;
        let found = listed
            .iter()
            .find(|info| info.id == partition)
            .map(|info| info.parents.clone())
            .unwrap_or_default();
        if let Ok(mut known) = self.parents.lock() {
            for info in listed {
                known.insert(info.id, info.parents);
            }
        }
        Ok(found)
    }

    /// Also records each applied event's place in its proxy instance's sequence.
    pub fn with_watermarks(mut self, watermarks: Option<Arc<dyn Watermarks>>) -> Self {
        self.watermarks = watermarks;
        self
    }

    /// Also evaluates the alert rules after each run is counted.
    pub fn with_alert_engine(mut self, engine: Option<Arc<AlertEngine>>) -> Self {
        self.alert_engine = engine;
        self
    }

    /// The alert engine's counters, when alerts are evaluated.
    pub fn alert_stats(&self) -> Option<Arc<crate::alert_engine::AlertStats>> {
        self.alert_engine
            .as_ref()
            .map(|engine| Arc::clone(&engine.stats))
    }

    /// Also archives every decoded record before counting it.
    pub fn with_archive(mut self, archive: Option<Arc<dyn Archive>>) -> Self {
        self.archive = archive;
        self
    }

    /// Also quarantines events whose customer the registry does not know.
    pub fn with_registry(mut self, registry: Option<Arc<dyn Registry>>) -> Self {
        self.registry = registry;
        self
    }

    async fn customer_is_known(&self, customer_id: &str) -> Result<bool> {
        let Some(registry) = &self.registry else {
            return Ok(true);
        };
        if self
            .known_customers
            .lock()
            .is_ok_and(|known| known.contains(customer_id))
        {
            return Ok(true);
        }
        let known = registry.customer(customer_id).await?.is_some();
        if known && let Ok(mut cache) = self.known_customers.lock() {
            cache.insert(customer_id.to_owned());
        }
        Ok(known)
    }

    /// Whether the registry knows `customer_id`, asked once per run (`known_here` holds the
    /// customers this run found known).
    async fn known_in_run(
        &self,
        known_here: &mut HashSet<String, foldhash::fast::RandomState>,
        customer_id: &str,
    ) -> Result<bool> {
        if known_here.contains(customer_id) {
            return Ok(true);
        }
        let known = self.customer_is_known(customer_id).await?;
        if known {
            known_here.insert(customer_id.to_owned());
        }
        Ok(known)
    }

    /// Applies `entries` (in log order, all from `partition`) to this applier's
    /// projections. Every step is idempotent by log position and producer sequence number,
    /// so the same run, or a run that starts at the same entry and goes further or stops
    /// sooner, can be applied again after a failure.
    ///
    /// The steps, in order: decode (quarantining what cannot be metered), archive the raw
    /// records, count the events (`Counters::apply`), take them into Parquet (its own
    /// progress, see `parquet_projection`), record the instances' sequence numbers,
    /// evaluate the alert rules on the events taken.
    pub async fn apply_entries(&self, partition: &str, entries: &[LogEntry]) -> Result<PassReport> {
        self.apply_steps(partition, entries, self.role != MeteringRole::Parquet)
            .await
    }

    /// Takes `entries` into Parquet only: records the counters already hold, read again
    /// because Parquet's progress is behind the counters' checkpoint (after a restart, or
    /// a failed flush). Nothing is quarantined, counted, observed or alerted on again.
    pub async fn project_parquet_only(
        &self,
        partition: &str,
        entries: &[LogEntry],
    ) -> Result<PassReport> {
        self.apply_steps(partition, entries, false).await
    }

    async fn apply_steps(
        &self,
        partition: &str,
        entries: &[LogEntry],
        counting: bool,
    ) -> Result<PassReport> {
        let Some(last) = entries.last() else {
            return Ok(PassReport::default());
        };
        let run = self.decode_run(partition, entries, counting).await?;
        let applied = if counting {
            if let Some(archive) = &self.archive {
                archive_records(archive.as_ref(), &run.raw_records).await?;
            }
            self.count_events(&run.sourced).await?
        } else {
            ApplyReport::default()
        };
        let taken = self
            .take_into_parquet(partition, &last.position, &run.sourced)
            .await?;
        if counting {
            if let Some(watermarks) = &self.watermarks {
                watermarks.observe(&run.observations).await?;
            }
            if let Some(engine) = &self.alert_engine {
                // Without Parquet, a redelivered run is alerted on again (alerts are
                // recorded once; only the burst tally of a minute can repeat).
                let alerting: Vec<&UsageEvent> = match taken {
                    Some(taken) => taken,
                    None => run.sourced.iter().map(|sourced| &sourced.event).collect(),
                };
                if !alerting.is_empty() {
                    engine.evaluate(&alerting).await?;
                }
            }
        }
        let report = PassReport {
            records_read: entries.len(),
            events_counted: applied.counted,
            duplicates_skipped: applied.duplicates,
            records_quarantined: run.quarantined,
        };
        self.record_pass(partition, &report);
        Ok(report)
    }

    /// Decodes a run of entries: each is a frame of events (or, written before frames, one
    /// event). What cannot be metered (an unreadable record, an undecodable line, an
    /// unknown customer, an event without its producer's number) is quarantined with its
    /// reason; the sequence numbers of every decodable event are kept, quarantined or not,
    /// so the completeness watermark accounts for them.
    /// Without `quarantine`, what cannot be metered is only skipped (another pass or
    /// consumer quarantines it).
    async fn decode_run(
        &self,
        partition: &str,
        entries: &[LogEntry],
        quarantine: bool,
    ) -> Result<DecodedRun> {
        // Room for every event the records declare (frames say how many they carry), so
        // a run of large frames does not grow its vectors by copying; bounded, as a
        // damaged header can declare anything.
        let declared: usize = entries
            .iter()
            .map(|entry| record_event_count(&entry.data))
            .fold(0, usize::saturating_add)
            .min(MAX_RESERVED_EVENTS);
        let mut run = DecodedRun {
            sourced: Vec::with_capacity(declared),
            raw_records: Vec::with_capacity(entries.len()),
            observations: Vec::with_capacity(declared),
            quarantined: 0,
        };
        // The customers this run found known: the shared cache (a lock) and the registry
        // are asked once per customer per run, not once per event.
        let mut known_here: HashSet<String, foldhash::fast::RandomState> = HashSet::default();
        // One copy of the partition for the run, and of each position for its record's events.
        let shared_partition: Arc<str> = partition.into();
        // One copy of each customer's, key's, model's and producer's name for the run.
        let mut names = Names::default();
        for entry in entries {
            let position: Arc<str> = entry.position.as_str().into();
            let lines = match decode_record_with(&entry.data, &mut names) {
                Ok(lines) => lines,
                Err(_) if !quarantine => continue,
                Err(error) => {
                    let reason = error.to_string();
                    tracing::error!(partition, position = %entry.position, reason = %reason, "usage record quarantined");
                    quarantine_record(&self.objects, entry, &reason).await?;
                    run.quarantined += 1;
                    continue;
                }
            };
            let whole_record = lines.len() == 1;
            let mut metered_any = false;
            for (index, line) in lines.into_iter().enumerate() {
                if let Ok(event) = &line.event {
                    run.observations.push(SeqObservation {
                        // The run's one copy of the producer's name.
                        proxy_instance: event.proxy_instance.shared(),
                        instance_seq: event.instance_seq,
                        occurred_at: event.occurred_at,
                    });
                }
                let reason = match line.event {
                    Ok(event) if event.proxy_instance.is_empty() || event.instance_seq == 0 => {
                        "the event has no producer sequence number (proxy_instance and instance_seq); it cannot be counted exactly once".to_owned()
                    }
                    Ok(event) if self.known_in_run(&mut known_here, &event.customer_id).await? => {
                        metered_any = true;
                        run.sourced.push(SourcedEvent {
                            partition: Arc::clone(&shared_partition),
                            position: Arc::clone(&position),
                            event,
                        });
                        continue;
                    }
                    Ok(event) => format!("unknown customer {:?}", event.customer_id),
                    Err(error) => error.to_string(),
                };
                if !quarantine {
                    continue;
                }
                tracing::error!(partition, position = %entry.position, line = index + 1, reason = %reason, "usage event quarantined");
                if whole_record {
                    quarantine_record(&self.objects, entry, &reason).await?;
                } else {
                    quarantine_line(&self.objects, entry, index + 1, line.bytes, &reason).await?;
                }
                run.quarantined += 1;
            }
            if metered_any && self.archive.is_some() {
                run.raw_records.push(entry.data.clone());
            }
        }
        Ok(run)
    }

    /// Counts the events in the counters, exactly once per producer number, between the
    /// crash points the fault tests use.
    async fn count_events(&self, sourced: &[SourcedEvent]) -> Result<ApplyReport> {
        if sourced.is_empty() {
            return Ok(self.counters.apply(sourced).await?);
        }
        crate::fault::crash_point("abort-before-counters");
        let applied = self.counters.apply(sourced).await?;
        crate::fault::crash_point("abort-after-counters");
        Ok(applied)
    }

    /// Adds a pass to the consumer's statistics.
    fn record_pass(&self, partition: &str, report: &PassReport) {
        let stats = &self.stats;
        stats
            .records_read
            .fetch_add(count(report.records_read), Ordering::Relaxed);
        stats
            .events_counted
            .fetch_add(count(report.events_counted), Ordering::Relaxed);
        stats
            .duplicates_skipped
            .fetch_add(count(report.duplicates_skipped), Ordering::Relaxed);
        stats
            .records_quarantined
            .fetch_add(count(report.records_quarantined), Ordering::Relaxed);
        if report.duplicates_skipped > 0 {
            tracing::info!(
                partition,
                duplicates = report.duplicates_skipped,
                "duplicate usage events skipped"
            );
        }
    }
}

/// A run of log entries, decoded.
struct DecodedRun {
    /// The events to count, each with its log position.
    sourced: Vec<SourcedEvent>,
    /// Their records as read, for the archive (kept only when there is one).
    raw_records: Vec<Bytes>,
    /// The sequence number of every decodable event, quarantined or not.
    observations: Vec<SeqObservation>,
    quarantined: usize,
}

async fn archive_records(archive: &dyn Archive, records: &[Bytes]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    archive.archive(records).await?;
    Ok(())
}
