//! The simulation loop: time advances in ticks of `--frame-ms`; each tick the proxies
//! append their frames and every shard's consumer invokes when its batch is due.

use crate::config::{ParquetFlush, SimulationConfig};
use crate::consumer::{ConsumerTotals, ShardConsumer};
use crate::figures::{Figures, KinesisTotals};
use crate::memory_table::MemoryTable;
use crate::workload::Workload;

/// Runs the scenario and returns its figures.
pub fn simulate(config: &SimulationConfig) -> anyhow::Result<Figures> {
    let table = MemoryTable::new();
    let mut workload = Workload::new(config);
    let mut consumers: Vec<ShardConsumer> = (0..config.shards.max(1))
        .map(|index| ShardConsumer::new(index, config))
        .collect();
    let mut totals = ConsumerTotals::default();
    let mut kinesis = KinesisTotals::default();
    let tick = config.frame_ms.max(1);
    let mut now_ms = 0;
    while !workload.exhausted() {
        now_ms += tick;
        for record in workload.tick(now_ms, tick)? {
            kinesis.add(&record, now_ms);
            consumers[record.shard as usize].append(record);
        }
        for consumer in &mut consumers {
            consumer.poll(now_ms, false, &table, config, &mut totals)?;
        }
    }
    let generated_until_ms = now_ms;
    while consumers.iter().any(|consumer| !consumer.is_idle()) {
        now_ms += tick;
        for consumer in &mut consumers {
            consumer.poll(now_ms, true, &table, config, &mut totals)?;
        }
    }
    let mut parquet_objects = 0;
    let mut parquet_bytes = 0.0;
    let seconds = (generated_until_ms as f64 / 1000.0).max(1e-9);
    let parquet_steady_per_hour = consumers
        .iter()
        .map(|consumer| {
            let rate = consumer.parquet.events as f64 / seconds;
            consumer.parquet.steady_objects_per_hour(rate)
        })
        .sum();
    for consumer in &mut consumers {
        if config.parquet != ParquetFlush::PerRun {
            consumer.parquet.flush();
        }
        parquet_objects += consumer.parquet.objects;
        parquet_bytes += consumer.parquet.object_bytes;
    }
    Ok(Figures {
        events: config.events,
        daily_requests: table.daily_requests(),
        total_rate: workload.total_rate(),
        simulated_seconds: generated_until_ms as f64 / 1000.0,
        producers_started: workload.producers_started,
        kinesis,
        consumers: totals,
        table: table.usage(),
        load: table.item_load(),
        parquet_objects,
        parquet_bytes,
        parquet_steady_per_hour,
        config: config.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CustomerOrder;

    fn small() -> SimulationConfig {
        let mut config = SimulationConfig::issue_17();
        config.events = 20_000;
        config.customers = 50;
        config.producers = 8;
        config.shards = 2;
        config.hot_customer_rate = 2_000.0;
        config.producer_lifetime_s = 2.0;
        config
    }

    #[test]
    fn every_event_is_counted_once_and_the_run_is_reproducible() {
        let figures = simulate(&small()).unwrap();
        assert_eq!(figures.daily_requests, 20_000);
        assert_eq!(figures.consumers.events_counted, 20_000);
        assert_eq!(figures.consumers.duplicates, 0);
        assert_eq!(figures.table.failed_conditions, 0);
        assert!(figures.producers_started > 8, "proxies came and went");
        let again = simulate(&small()).unwrap();
        assert_eq!(figures.consumers, again.consumers);
        assert_eq!(figures.table.update_calls, again.table.update_calls);
    }

    #[test]
    fn a_redelivered_run_counts_nothing_twice_and_pays_a_failed_condition_per_cell() {
        let mut config = small();
        config.redelivered_share = 1.0;
        let figures = simulate(&config).unwrap();
        assert_eq!(
            figures.daily_requests, 20_000,
            "each event in its day cell once"
        );
        assert_eq!(figures.consumers.redelivered_runs, figures.consumers.runs);
        // The retry finds every cell stamped by the attempt that died: each of its cell
        // writes fails its condition, reads the stamp and adds nothing.
        let table = &figures.table;
        assert!(table.failed_conditions > 0);
        assert_eq!(table.update_calls, 2 * table.failed_conditions);
        let once = simulate(&small()).unwrap();
        assert_eq!(once.table.failed_conditions, 0);
        let watermark_and_registry_reads = once.table.get_calls as f64 / once.consumers.runs as f64
            * figures.consumers.runs as f64;
        assert!(
            (table.get_calls as f64
                - table.failed_conditions as f64
                - watermark_and_registry_reads)
                .abs()
                < 0.05 * table.get_calls as f64,
            "a stamp read per failed condition, and the reads a run makes anyway"
        );
    }

    #[test]
    fn sequential_customers_on_one_shard_write_about_two_cells_per_run() {
        let mut config = small();
        config.customer_order = CustomerOrder::Sequential;
        config.customers = 2;
        config.shards = 1;
        config.producers = 1;
        config.producer_lifetime_s = 0.0;
        config.hot_customer_rate = 1_000.0;
        let figures = simulate(&config).unwrap();
        let runs = figures.consumers.runs;
        // One day cell per model (three models) and one hour cell per run, a few more at
        // the turn from the first customer to the second.
        assert!(figures.table.update_calls >= 4 * runs, "{figures:?}");
        assert!(figures.table.update_calls <= 4 * runs + 4, "{figures:?}");
    }
}
