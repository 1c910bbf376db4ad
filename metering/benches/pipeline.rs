//! Consumer throughput per core (issue 10): decode, aggregate, Parquet encode, and the whole
//! `BatchApplier::apply_entries` path on the in-memory counters and object store.
//!
//! Run with `bench/consumer.sh` (or `cargo bench -p metering --bench pipeline`). Every bench
//! runs on one thread (a current-thread tokio runtime), so events/s is per core. Nothing
//! here asserts a speed; criterion prints the figures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use metering::BatchApplier;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use schemas::UsageEvent;
use schemas::name::Names;
use schemas::parquet_codec::encode_events_parquet;
use schemas::usage_counts::{aggregate_events, aggregate_hourly};
use schemas::usage_frame::{EventFormat, decode_events_with, decode_record_with};
use store::contract::registry::register_customers_with_keys;
use store::memory::MemoryStore;
use store::{Counters, LogEntry, Registry, SourcedEvent, Watermarks};

mod common;

/// The allocator of the production binaries, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::clock::BenchClock;
use common::workload::{FRAME_EVENTS, Layout, PARTITION, Workload, workload_in};

/// Batch sizes measured: the consumer's default batch, and ten of them.
const BATCH_SIZES: [usize; 2] = [1_000, 10_000];
/// Distinct customers in the log.
const CUSTOMERS: usize = 20;
/// The customers, registered in a registry the pipeline checks events against.
fn registry_with_customers(
    runtime: &tokio::runtime::Runtime,
) -> (Arc<MemoryStore>, Vec<(String, String)>) {
    let registry = Arc::new(MemoryStore::new());
    let customers = runtime.block_on(register_customers_with_keys(registry.as_ref(), CUSTOMERS));
    (registry, customers)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The entries' events, decoded as a consumer's run decodes them (one copy of each name).
fn sourced_events(entries: &[LogEntry]) -> Vec<SourcedEvent> {
    let mut names = Names::default();
    entries
        .iter()
        .flat_map(|entry| {
            decode_events_with(&entry.data, &mut names)
                .unwrap()
                .into_iter()
                .map(|event| SourcedEvent {
                    partition: entry.partition.as_str().into(),
                    position: entry.position.as_str().into(),
                    event,
                })
        })
        .collect()
}

/// The layouts the decode and the whole pipeline are measured on, by bench name: frames
/// of binary events (what proxies write), frames of JSON lines (what they wrote before
/// binary frames, and write with `--event-format json`), and one JSON event per record
/// (before frames; the layout of the figures before 2026-12-03).
fn layouts() -> [(&'static str, Layout); 3] {
    [
        (
            "",
            Layout::Frames {
                format: EventFormat::Binary,
                events: FRAME_EVENTS,
            },
        ),
        (
            "_json_frames",
            Layout::Frames {
                format: EventFormat::Json,
                events: FRAME_EVENTS,
            },
        ),
        ("_json_records", Layout::JsonRecords),
    ]
}

fn consumer_benches(criterion: &mut Criterion<BenchClock>) {
    let runtime = runtime();
    let (registry, customers) = registry_with_customers(&runtime);
    let workloads: Vec<(usize, Vec<(&str, Workload)>)> = BATCH_SIZES
        .iter()
        .map(|&size| {
            let laid_out: Vec<(&str, Workload)> = layouts()
                .into_iter()
                .map(|(name, layout)| (name, workload_in(size, &customers, layout)))
                .collect();
            // What each layout puts in the log: the bytes Kinesis would bill.
            for (name, load) in &laid_out {
                let bytes: usize = load.entries.iter().map(|entry| entry.data.len()).sum();
                eprintln!(
                    "log{name} ({size} events): {} records, {bytes} bytes, {} bytes per event",
                    load.entries.len(),
                    bytes / size
                );
            }
            (size, laid_out)
        })
        .collect();

    let mut group = criterion.benchmark_group("consumer");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat);

    for (size, laid_out) in &workloads {
        group.throughput(Throughput::Elements(*size as u64));

        // Raw record bytes to validated events, as `apply_entries` decodes a run's entries
        // (their names shared across the run).
        for (name, load) in laid_out {
            let id = BenchmarkId::new(format!("decode{name}"), size);
            group.bench_with_input(id, load, |bench, load| {
                bench.iter(|| {
                    let mut names = Names::default();
                    for entry in &load.entries {
                        black_box(decode_record_with(black_box(&entry.data), &mut names).unwrap());
                    }
                });
            });
        }
        let load = &laid_out[0].1;
        // The events as a consumer holds them after decoding (one copy of each name).
        let sourced = sourced_events(&load.entries);
        let decoded: Vec<UsageEvent> = sourced.iter().map(|each| each.event.clone()).collect();

        // The pure aggregation every counters backend runs on newly counted events.
        group.bench_with_input(
            BenchmarkId::new("aggregate", size),
            &decoded,
            |bench, decoded| {
                bench.iter(|| {
                    black_box(aggregate_events(black_box(decoded)));
                    black_box(aggregate_hourly(black_box(decoded)));
                });
            },
        );

        // Dedupe and aggregation through the Counters port, on a fresh in-memory backend.
        group.bench_with_input(
            BenchmarkId::new("counters_apply_memory", size),
            &sourced,
            |bench, sourced| {
                bench.iter_batched(
                    MemoryStore::new,
                    |counters| {
                        black_box(runtime.block_on(counters.apply(sourced)).unwrap());
                        counters
                    },
                    BatchSize::PerIteration,
                );
            },
        );

        // One day's events to Parquet bytes, as the sink writes them.
        group.bench_with_input(
            BenchmarkId::new("parquet_encode", size),
            &decoded,
            |bench, decoded| {
                bench.iter(|| black_box(encode_events_parquet(black_box(decoded)).unwrap()));
            },
        );

        pipeline_benches(&mut group, &runtime, &registry, *size, laid_out);
    }
    group.finish();
}

/// The whole path: decode, registry check, dedupe and aggregate into the in-memory
/// counters, watermarks, Parquet into an in-memory object store, for each layout.
fn pipeline_benches(
    group: &mut criterion::BenchmarkGroup<'_, BenchClock>,
    runtime: &tokio::runtime::Runtime,
    registry: &Arc<MemoryStore>,
    size: usize,
    laid_out: &[(&str, Workload)],
) {
    for (name, load) in laid_out {
        let id = BenchmarkId::new(format!("pipeline{name}"), size);
        group.bench_with_input(id, load, |bench, load| {
            bench.iter_batched(
                || {
                    let store = Arc::new(MemoryStore::new());
                    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                    BatchApplier::new(store.clone() as Arc<dyn Counters>, objects)
                        .with_registry(Some(registry.clone() as Arc<dyn Registry>))
                        .with_watermarks(Some(store as Arc<dyn Watermarks>))
                },
                |applier| {
                    let report = runtime
                        .block_on(applier.apply_entries(PARTITION, &load.entries))
                        .unwrap();
                    assert_eq!(report.records_quarantined, 0);
                    assert_eq!(report.duplicates_skipped, load.duplicates);
                    assert_eq!(report.events_counted, load.events.len());
                    applier
                },
                BatchSize::PerIteration,
            );
        });
    }
}

criterion_group! {
    name = benches;
    config = common::clock::criterion();
    targets = consumer_benches
}
criterion_main!(benches);
