//! Consumer throughput per core (issue 10): decode, aggregate, Parquet encode, and the whole
//! `BatchApplier::apply_entries` path on the in-memory counters and object store.
//!
//! Run with `bench/consumer.sh` (or `cargo bench -p metering --bench pipeline`). Every bench
//! runs on one thread (a current-thread tokio runtime), so events/s is per core. Nothing
//! here asserts a speed; criterion prints the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use metering::BatchApplier;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use schemas::parquet_codec::encode_events_parquet;
use schemas::usage_counts::{aggregate_events, aggregate_hourly};
use schemas::{Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};
use store::contract::registry::{audit_for, new_customer, new_key};
use store::memory::MemoryStore;
use store::{Counters, LogEntry, Registry, SourcedEvent, Watermarks};
use uuid::Uuid;

/// Batch sizes measured: the consumer's default batch, and ten of them.
const BATCH_SIZES: [usize; 2] = [1_000, 10_000];
/// Distinct customers in the log.
const CUSTOMERS: usize = 20;
/// One record in this many is a redelivery of an earlier one (same bytes, another position).
const REDELIVERY_EVERY: usize = 50;
const PARTITION: &str = "shardId-000000000000";
const MODELS: [&str; 5] = [
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
    "mistral.mistral-large-2407-v1:0",
];
const PROXY_INSTANCES: [&str; 2] = ["proxy-ip-10-0-1-17-4242", "proxy-ip-10-0-2-31-977"];

/// A small deterministic generator (SplitMix64), so every run measures the same mix.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
    fn percent(&mut self) -> u64 {
        self.next() % 100
    }
}

/// One bench input: log entries as the consumer reads them, and the events they carry.
struct Workload {
    entries: Vec<LogEntry>,
    /// The decoded distinct events, in log order.
    events: Vec<UsageEvent>,
}

fn day_start() -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
}

/// A realistic event: one of the customers and models, a time in the day, tokens that fit
/// the outcome (rejected calls carry none; upstream errors none or few).
fn realistic_event(
    rng: &mut SplitMix,
    customers: &[(String, String)],
    occurred_at: DateTime<Utc>,
    sequences: &mut [u64; 2],
) -> UsageEvent {
    let (customer_id, key_id) = &customers[rng.between(0, customers.len() as u64 - 1) as usize];
    let model_id = MODELS[rng.between(0, MODELS.len() as u64 - 1) as usize];
    let operation = match rng.between(0, 3) {
        0 => Operation::Invoke,
        1 => Operation::InvokeStream,
        2 => Operation::Converse,
        _ => Operation::ConverseStream,
    };
    let outcome = match rng.percent() {
        0..=93 => Outcome::Success,
        94..=96 => Outcome::UpstreamError,
        97..=98 => Outcome::RejectedLimit,
        _ => Outcome::ClientAborted,
    };
    let called_bedrock = outcome != Outcome::RejectedLimit;
    let (input_tokens, output_tokens) = match outcome {
        Outcome::Success => (rng.between(20, 8_000), rng.between(1, 4_000)),
        Outcome::ClientAborted => (rng.between(20, 8_000), rng.between(0, 500)),
        _ => (0, 0),
    };
    let cache_read_tokens = if outcome == Outcome::Success && rng.percent() < 30 {
        rng.between(1_024, 16_000)
    } else {
        0
    };
    let cache_write_tokens = if outcome == Outcome::Success && rng.percent() < 10 {
        rng.between(1_024, 4_000)
    } else {
        0
    };
    let status = match outcome {
        Outcome::RejectedLimit => 429,
        Outcome::UpstreamError => [400, 429, 500, 503][rng.between(0, 3) as usize],
        _ => 200,
    };
    let upstream_latency_ms = rng.between(150, 20_000);
    let instance = rng.between(0, 1) as usize;
    sequences[instance] += 1;
    UsageEvent {
        event_id: Uuid::now_v7(),
        schema_version: USAGE_EVENT_SCHEMA_VERSION,
        occurred_at,
        customer_id: customer_id.clone(),
        key_id: key_id.clone(),
        request_id: Uuid::now_v7().to_string(),
        upstream_request_id: called_bedrock.then(|| Uuid::now_v7().to_string()),
        model_id: model_id.to_owned(),
        operation,
        status,
        outcome,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        latency_ms: if called_bedrock {
            upstream_latency_ms + rng.between(1, 5)
        } else {
            rng.between(0, 2)
        },
        upstream_latency_ms: called_bedrock.then_some(upstream_latency_ms),
        request_bytes: rng.between(200, 40_000),
        response_bytes: if called_bedrock {
            rng.between(100, 30_000)
        } else {
            180
        },
        proxy_instance: PROXY_INSTANCES[instance].to_owned(),
        instance_seq: sequences[instance],
    }
}

/// `records` log entries spread over one UTC day, encoded with the proxy's encoder
/// (`UsageEvent::encode_json`); one in [`REDELIVERY_EVERY`] repeats an earlier record.
fn workload(records: usize, customers: &[(String, String)]) -> Workload {
    let mut rng = SplitMix(0x7011_6A7E ^ records as u64);
    let mut sequences = [0_u64; 2];
    let step_ms = 86_400_000 / records as i64;
    let start = day_start();
    let mut events = Vec::with_capacity(records);
    let mut entries: Vec<LogEntry> = Vec::with_capacity(records);
    for index in 0..records {
        let data = if index % REDELIVERY_EVERY == REDELIVERY_EVERY - 1 {
            entries[index - 7].data.clone()
        } else {
            let jitter = rng.between(0, step_ms as u64 - 1) as i64;
            let at = start + chrono::Duration::milliseconds(index as i64 * step_ms + jitter);
            let event = realistic_event(&mut rng, customers, at, &mut sequences);
            let data = Bytes::from(event.encode_json().unwrap());
            events.push(event);
            data
        };
        let partition_key = UsageEvent::decode_json(&data).unwrap().customer_id;
        entries.push(LogEntry {
            partition: PARTITION.to_owned(),
            position: format!("{:020}", index + 1),
            partition_key,
            data,
        });
    }
    Workload { entries, events }
}

/// The customers, registered in a registry the pipeline checks events against.
fn registry_with_customers(
    runtime: &tokio::runtime::Runtime,
) -> (Arc<MemoryStore>, Vec<(String, String)>) {
    let registry = Arc::new(MemoryStore::new());
    let mut customers = Vec::with_capacity(CUSTOMERS);
    runtime.block_on(async {
        for _ in 0..CUSTOMERS {
            let customer = new_customer();
            let key = new_key(&customer.customer_id);
            registry
                .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
                .await
                .unwrap();
            customers.push((customer.customer_id, key.key_id));
        }
    });
    (registry, customers)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sourced_events(entries: &[LogEntry]) -> Vec<SourcedEvent> {
    entries
        .iter()
        .map(|entry| SourcedEvent {
            partition: entry.partition.clone(),
            position: entry.position.clone(),
            event: UsageEvent::decode_json(&entry.data).unwrap(),
        })
        .collect()
}

fn consumer_benches(criterion: &mut Criterion) {
    let runtime = runtime();
    let (registry, customers) = registry_with_customers(&runtime);
    let workloads: Vec<(usize, Workload)> = BATCH_SIZES
        .iter()
        .map(|&size| (size, workload(size, &customers)))
        .collect();

    let mut group = criterion.benchmark_group("consumer");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat);

    for (size, load) in &workloads {
        group.throughput(Throughput::Elements(*size as u64));

        // Raw record bytes to a validated event, as `apply_entries` decodes each entry.
        group.bench_with_input(BenchmarkId::new("decode", size), load, |bench, load| {
            bench.iter(|| {
                for entry in &load.entries {
                    black_box(UsageEvent::decode_json(black_box(&entry.data)).unwrap());
                }
            });
        });

        // The pure aggregation every counters backend runs on newly counted events.
        group.bench_with_input(BenchmarkId::new("aggregate", size), load, |bench, load| {
            bench.iter(|| {
                black_box(aggregate_events(black_box(&load.events)));
                black_box(aggregate_hourly(black_box(&load.events)));
            });
        });

        // Dedupe and aggregation through the Counters port, on a fresh in-memory backend.
        let sourced = sourced_events(&load.entries);
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

        // One day's events to Parquet bytes (ZSTD), as the sink writes them.
        group.bench_with_input(
            BenchmarkId::new("parquet_encode", size),
            load,
            |bench, load| {
                bench.iter(|| black_box(encode_events_parquet(black_box(&load.events)).unwrap()));
            },
        );

        // The whole path: decode, registry check, dedupe and aggregate into the in-memory
        // counters, watermarks, Parquet into an in-memory object store.
        group.bench_with_input(BenchmarkId::new("pipeline", size), load, |bench, load| {
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
                    assert_eq!(
                        report.duplicates_skipped,
                        load.entries.len() / REDELIVERY_EVERY
                    );
                    applier
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, consumer_benches);
criterion_main!(benches);
