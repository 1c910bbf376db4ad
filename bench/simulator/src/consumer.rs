//! One shard's consumer, as the metering Lambda's event source mapping drives it: it waits
//! for `--batch-records` records or the batching window, invokes, and the invocation applies
//! the batch in runs of `--run-records`: it decodes the frames (`schemas::usage_frame`) and
//! applies them with the real DynamoDB apply
//! (`store::aws::counter_apply`, `store::aws::dynamo_watermarks`) over the in-memory table.
//! Invocations of one shard never overlap (`ParallelizationFactor: 1`).

use std::collections::VecDeque;
use std::time::Duration;

use futures::executor::block_on;
use schemas::usage_frame::decode_events;
use store::aws::counter_apply::{ApplyStop, CELL_WRITES_IN_FLIGHT, apply_events, apply_partition};
use store::aws::dynamo_watermarks::observe_on;
use store::{SeqObservation, SourcedEvent};

use crate::config::{ConsumerKind, SimulationConfig};
use crate::item_load::Writer;
use crate::kinesis::{sequence_number, shard_id};
use crate::memory_table::{MemoryTable, TableUsage};
use crate::parquet_policy::ParquetBuffer;
use crate::rng::SeededRng;
use crate::workload::Record;

/// How long a producer's ranges are kept (the backends' default dedupe retention).
const DEDUPE_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);

#[derive(Debug)]
struct QueuedRecord {
    position: String,
    arrival_ms: u64,
    data: bytes::Bytes,
    events: usize,
}

/// What the consumers did, summed over shards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerTotals {
    pub invocations: u64,
    pub runs: u64,
    pub records: u64,
    /// Events the applies reported counting (a retry reports only what it added itself).
    pub events_counted: u64,
    pub duplicates: u64,
    pub redelivered_runs: u64,
    /// Invocation time, modelled (`--invocation-ms`, `--dynamo-ms` per round trip).
    pub busy_ms: f64,
    /// From a record's arrival to the end of the run that counted it: the counters' lag.
    pub max_lag_ms: f64,
    pub lag_ms_sum: f64,
    pub checkpoints: u64,
}

/// One shard's queue and consumer.
#[derive(Debug)]
pub struct ShardConsumer {
    index: u32,
    partition: String,
    queue: VecDeque<QueuedRecord>,
    appended: u64,
    busy_until_ms: f64,
    rng: SeededRng,
    /// Customers this consumer's process has looked up in the registry (it caches them).
    known_customers: std::collections::HashSet<String>,
    pub parquet: ParquetBuffer,
}

impl ShardConsumer {
    pub fn new(index: u32, config: &SimulationConfig) -> Self {
        Self {
            index,
            partition: shard_id(index),
            queue: VecDeque::new(),
            appended: 0,
            busy_until_ms: 0.0,
            rng: SeededRng::new(config.seed ^ (u64::from(index) + 1).wrapping_mul(0x9E37)),
            known_customers: std::collections::HashSet::new(),
            parquet: ParquetBuffer::new(config),
        }
    }

    /// Appends a record to the shard (its sequence number is the shard's next).
    pub fn append(&mut self, record: Record) {
        self.appended += 1;
        self.parquet
            .add_record(record.bytes, record.events as u64, record.arrival_ms as f64);
        self.queue.push_back(QueuedRecord {
            position: sequence_number(self.index, self.appended),
            arrival_ms: record.arrival_ms,
            data: record.data,
            events: record.events,
        });
    }

    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Invokes the consumer at `now_ms` if it is free and its batch is due; `draining`
    /// treats the window as passed (no more records will come).
    pub fn poll(
        &mut self,
        now_ms: u64,
        draining: bool,
        table: &MemoryTable,
        config: &SimulationConfig,
        totals: &mut ConsumerTotals,
    ) -> anyhow::Result<()> {
        let (batch_records, window_ms) = match config.consumer {
            ConsumerKind::Lambda => (config.batch_records, config.batching_window_s * 1000.0),
            ConsumerKind::Poller => (config.run_records, 0.0),
        };
        let Some(oldest) = self.queue.front() else {
            return Ok(());
        };
        if config.consumer_starts_after_appends && !draining {
            return Ok(());
        }
        let waited = now_ms.saturating_sub(oldest.arrival_ms) as f64;
        if (now_ms as f64) < self.busy_until_ms
            || (self.queue.len() < batch_records && waited < window_ms && !draining)
        {
            return Ok(());
        }
        let mut batch = batch_records.min(self.queue.len());
        totals.invocations += 1;
        totals.records += batch as u64;
        let mut clock = now_ms as f64 + config.invocation_ms;
        while batch > 0 {
            let run_length = config.run_records.max(1).min(batch);
            let run: Vec<QueuedRecord> = self.queue.drain(..run_length).collect();
            batch -= run_length;
            clock = self.apply_run(run, clock, table, config, totals)?;
        }
        totals.busy_ms += clock - now_ms as f64;
        self.busy_until_ms = clock;
        Ok(())
    }

    /// Applies one run (twice when it is redelivered); returns the clock after it.
    fn apply_run(
        &mut self,
        run: Vec<QueuedRecord>,
        clock: f64,
        table: &MemoryTable,
        config: &SimulationConfig,
        totals: &mut ConsumerTotals,
    ) -> anyhow::Result<f64> {
        let arrivals: Vec<(u64, usize)> = run
            .iter()
            .map(|record| (record.arrival_ms, record.events))
            .collect();
        let last_position = run
            .last()
            .map(|record| record.position.clone())
            .unwrap_or_default();
        let mut sourced = Vec::with_capacity(arrivals.iter().map(|(_, events)| events).sum());
        let partition: std::sync::Arc<str> = self.partition.as_str().into();
        for record in run {
            let position: std::sync::Arc<str> = record.position.into();
            sourced.extend(
                decode_events(&record.data)?
                    .into_iter()
                    .map(|event| SourcedEvent {
                        partition: partition.clone(),
                        position: position.clone(),
                        event,
                    }),
            );
        }
        let observations: Vec<SeqObservation> = sourced
            .iter()
            .map(|sourced| SeqObservation {
                proxy_instance: sourced.event.proxy_instance.as_str().into(),
                instance_seq: sourced.event.instance_seq,
                occurred_at: sourced.event.occurred_at,
            })
            .collect();
        let before = table.usage();
        let mut clock = clock;
        table.set_writer(Writer {
            second: (clock / 1000.0) as u64,
            shard: self.index,
        });
        // The applier checks each customer in the registry once per process (cached), and
        // the polling consumer reads its checkpoint before each batch.
        for event in &sourced {
            if !self
                .known_customers
                .contains(event.event.customer_id.as_str())
            {
                self.known_customers
                    .insert(event.event.customer_id.to_string());
                table.read_registry_customer(&event.event.customer_id);
            }
        }
        if config.consumer == ConsumerKind::Poller {
            table.read_checkpoint(&self.partition);
        }
        if self.rng.next_unit() < config.redelivered_share {
            // The first attempt dies (a timeout) after its cells, before its producers'
            // ranges; the retry applies the whole run again.
            totals.redelivered_runs += 1;
            let stop = Some(ApplyStop::AfterProducers(0));
            let interrupted = block_on(apply_partition(table, DEDUPE_RETENTION, &sourced, stop));
            anyhow::ensure!(interrupted.is_err(), "the interrupted apply finished");
            clock += round_trips(&table.usage().since(&before)) * config.dynamo_ms;
            table.set_writer(Writer {
                second: (clock / 1000.0) as u64,
                shard: self.index,
            });
        }
        let retried_from = table.usage();
        let report = block_on(apply_events(table, DEDUPE_RETENTION, &sourced))?;
        block_on(observe_on(table, &observations))?;
        if config.consumer == ConsumerKind::Poller {
            table.put_checkpoint(&self.partition, &last_position);
            totals.checkpoints += 1;
        }
        totals.events_counted += report.counted as u64;
        totals.duplicates += report.duplicates as u64;
        clock += round_trips(&table.usage().since(&retried_from)) * config.dynamo_ms;
        totals.runs += 1;
        self.parquet.add(sourced.len() as u64, clock);
        for (arrival_ms, events) in arrivals {
            let lag = clock - arrival_ms as f64;
            totals.max_lag_ms = totals.max_lag_ms.max(lag);
            totals.lag_ms_sum += lag * events as f64;
        }
        Ok(clock)
    }
}

/// Sequential DynamoDB round trips of a run: the batch read, the cell writes 16 at a time,
/// then one producer's or instance's read or put after another.
pub fn round_trips(used: &TableUsage) -> f64 {
    (used.batch_get_calls
        + used.update_calls.div_ceil(CELL_WRITES_IN_FLIGHT as u64)
        + used.get_calls
        + used.put_calls) as f64
}
