//! The report's sections.

use std::fmt::Write;

use super::{
    Figures, SHARD_RECORDS_PER_SECOND, TARGET_DOLLARS_PER_MILLION, TARGET_ITEM_WRITES_PER_SECOND,
    TARGET_ITEMS_PER_TRANSACTION,
};
use crate::config::{ConsumerKind, CustomerOrder, ParquetFlush};

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

impl Figures {
    pub(super) fn write_scenario(&self, out: &mut String) {
        let config = &self.config;
        let customers = match config.customer_order {
            CustomerOrder::Zipf => format!(
                "{} customers (Zipf s={:.2}, the busiest at {:.0} events/s)",
                config.customers, config.zipf_exponent, config.hot_customer_rate
            ),
            CustomerOrder::Sequential => {
                format!("{} customers one after another", config.customers)
            }
        };
        let consumer = match config.consumer {
            ConsumerKind::Lambda => format!(
                "metering Lambda: batches of {} records or {} s, applied in runs of {}",
                config.batch_records, config.batching_window_s, config.run_records
            ),
            ConsumerKind::Poller => format!(
                "polling consumer: batches of {} records, a checkpoint after each",
                config.run_records
            ),
        };
        let _ = writeln!(
            out,
            "scenario: {} events at {:.0} events/s ({:.1} simulated s), {} shards, {} proxies at a time ({} over the run, mean life {} s), {customers}, {} models, a frame per proxy every {} ms; {consumer}; seed {}",
            self.events,
            self.total_rate,
            self.simulated_seconds,
            config.shards,
            config.producers,
            self.producers_started,
            config.producer_lifetime_s,
            config.models,
            config.frame_ms,
            config.seed
        );
        let exact = if self.daily_requests == self.events {
            "each once"
        } else {
            "MISMATCH"
        };
        let _ = writeln!(
            out,
            "exactly once: the day cells hold {} requests for {} events ({exact}); {} runs redelivered",
            self.daily_requests, self.events, self.consumers.redelivered_runs
        );
        let records = self.kinesis.records.max(1) as f64;
        let _ = writeln!(
            out,
            "kinesis: {:.0} records and {:.0} KiB ingested per M events ({:.1} events, {:.0} bytes per record); busiest shard-second {} records (limit {SHARD_RECORDS_PER_SECOND}), {:.2} MB",
            self.per_million(records),
            self.per_million(self.kinesis.ingested_kib as f64),
            self.events as f64 / records,
            self.kinesis.bytes as f64 / records,
            self.kinesis.max_shard_records_per_second,
            self.kinesis.max_shard_bytes_per_second as f64 / 1e6
        );
    }

    pub(super) fn write_dynamodb(&self, out: &mut String) {
        let table = &self.table;
        let _ = writeln!(
            out,
            "dynamodb per M events: {:.0} WRU, {:.0} RRU; calls: UpdateItem {:.0}, PutItem {:.0}, GetItem {:.0}, BatchGetItem {:.0} ({:.0} keys); failed conditions {:.0}",
            self.per_million(table.write_units),
            self.per_million(table.read_units),
            self.per_million(table.update_calls as f64),
            self.per_million(table.put_calls as f64),
            self.per_million(table.get_calls as f64),
            self.per_million(table.batch_get_calls as f64),
            self.per_million(table.batch_get_keys as f64),
            self.per_million(table.failed_conditions as f64),
        );
        let [one, two, three, more] = table.writes_by_units;
        let _ = writeln!(
            out,
            "item writes by size: {one} at 1 WRU, {two} at 2, {three} at 3, {more} at 4 or more; largest item {} bytes ({})",
            table.largest_item.0, table.largest_item.1
        );
        let _ = writeln!(
            out,
            "transactions: 0 TransactWriteItems (0 per batch, largest 0 items; limit {TARGET_ITEMS_PER_TRANSACTION}): every write is a single-item conditional write"
        );
    }

    pub(super) fn write_load(&self, out: &mut String) {
        let load = &self.load;
        let _ = writeln!(
            out,
            "hottest item: {} writes in simulated second {}: {} (target at most {TARGET_ITEM_WRITES_PER_SECOND}/s)",
            load.hottest.writes, load.hottest.second, load.hottest.key
        );
        let shared = load.shared_counter_item_seconds as f64;
        let _ = writeln!(
            out,
            "two or more shards on one counter item in one second: {} of {} item-seconds ({:.1}%), {} writes; failed conditions they caused: 0 (each shard conditions on its own stamp, at#<shard>)",
            load.shared_counter_item_seconds,
            load.counter_item_seconds,
            100.0 * shared / load.counter_item_seconds.max(1) as f64,
            load.writes_in_shared_seconds
        );
        let flush = match self.config.parquet {
            ParquetFlush::PerRun => "one per run".to_owned(),
            ParquetFlush::Function => format!(
                "a Parquet function per shard, batches of {} records, {} s or Lambda's 6 MB payload",
                self.config.parquet_batch_records, self.config.parquet_window_s
            ),
            ParquetFlush::Buffered => format!(
                "buffered per shard, {} MB or {} min",
                self.config.parquet_flush_mb, self.config.parquet_flush_minutes
            ),
        };
        let consumers = &self.consumers;
        let _ = writeln!(
            out,
            "parquet ({flush}): {:.0} objects per hour at this rate, {:.1} per M events; this run wrote {} objects of {:.2} MB on average",
            self.parquet_objects_per_hour(),
            self.per_million(self.parquet_objects_per_hour() * self.simulated_seconds / 3600.0),
            self.parquet_objects,
            self.parquet_bytes / self.parquet_objects.max(1) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "consumer: {:.0} invocations and {:.0} runs per M events, {:.0} records a run; counters' lag mean {:.2} s, max {:.2} s (modelled: {} ms a call, {} ms an invocation)",
            self.per_million(consumers.invocations as f64),
            self.per_million(consumers.runs as f64),
            consumers.records as f64 / consumers.runs.max(1) as f64,
            consumers.lag_ms_sum / self.events.max(1) as f64 / 1000.0,
            consumers.max_lag_ms / 1000.0,
            self.config.dynamo_ms,
            self.config.invocation_ms
        );
    }

    pub(super) fn write_cost(&self, out: &mut String) {
        let dollars = self.dollars();
        let _ = writeln!(
            out,
            "cost per M events, on demand: DynamoDB {:.4} + Kinesis in {:.4} + out {:.4} + S3 {:.4} + Lambda {:.4} = ${:.4} (target {TARGET_DOLLARS_PER_MILLION:.2})",
            dollars.dynamodb,
            dollars.kinesis_in,
            dollars.kinesis_out,
            dollars.s3,
            dollars.lambda,
            dollars.total()
        );
        let _ = writeln!(
            out,
            "targets: cost {}; hottest item {}; transactions {}",
            verdict(dollars.total() <= TARGET_DOLLARS_PER_MILLION),
            verdict(self.load.hottest.writes <= TARGET_ITEM_WRITES_PER_SECOND),
            verdict(true)
        );
    }
}
