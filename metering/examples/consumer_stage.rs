//! One stage of the consumer pipeline, run a given number of times on the consumer benches'
//! events (`benches/common/workload.rs`), for counting its instructions under valgrind:
//! `bench/consumer-instructions.sh` runs it with 0 and with N repetitions and prints the
//! difference per event. Instruction counts do not move with the machine's load, so they
//! compare two builds where timings on a shared machine cannot.
//!
//!   consumer_stage decode|counters|parquet|pipeline EVENTS REPETITIONS
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::hint::black_box;
use std::sync::Arc;

use metering::BatchApplier;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use schemas::UsageEvent;
use schemas::name::Names;
use schemas::parquet_codec::encode_events_parquet;
use schemas::usage_frame::{EventFormat, decode_events_with, decode_record_with};
use store::contract::registry::register_customers_with_keys;
use store::memory::MemoryStore;
use store::{Counters, Registry, SourcedEvent, Watermarks};

#[path = "../benches/common/workload.rs"]
#[allow(dead_code)]
mod workload;

use workload::{FRAME_EVENTS, Layout, PARTITION, Workload, workload_in};

/// The allocator of the production binaries, as in the benches.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Distinct customers in the log, as in the pipeline bench.
const CUSTOMERS: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(stage), Some(events), Some(repetitions)) = (
        args.get(1),
        args.get(2).and_then(|text| text.parse::<usize>().ok()),
        args.get(3).and_then(|text| text.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: consumer_stage decode|counters|parquet|pipeline EVENTS REPETITIONS");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = Arc::new(MemoryStore::new());
    let customers = runtime.block_on(register_customers_with_keys(registry.as_ref(), CUSTOMERS));
    let load = workload_in(
        events,
        &customers,
        Layout::Frames {
            format: EventFormat::Binary,
            events: FRAME_EVENTS,
        },
    );
    let sourced = sourced_events(&load);
    let decoded: Vec<UsageEvent> = sourced.iter().map(|each| each.event.clone()).collect();
    for _ in 0..repetitions {
        match stage.as_str() {
            "decode" => {
                // As a consumer's run decodes: the names shared across its records.
                let mut names = Names::default();
                for entry in &load.entries {
                    black_box(decode_record_with(&entry.data, &mut names).unwrap());
                }
            }
            "counters" => {
                let counters = MemoryStore::new();
                black_box(runtime.block_on(counters.apply(&sourced)).unwrap());
            }
            "parquet" => {
                black_box(encode_events_parquet(&decoded).unwrap());
            }
            "pipeline" => {
                let store = Arc::new(MemoryStore::new());
                let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                let applier = BatchApplier::new(store.clone() as Arc<dyn Counters>, objects)
                    .with_registry(Some(registry.clone() as Arc<dyn Registry>))
                    .with_watermarks(Some(store as Arc<dyn Watermarks>));
                let report = runtime
                    .block_on(applier.apply_entries(PARTITION, &load.entries))
                    .unwrap();
                assert_eq!(report.events_counted, load.events.len());
            }
            other => {
                eprintln!("unknown stage {other}: decode, counters, parquet or pipeline");
                std::process::exit(2);
            }
        }
    }
}

/// The workload's events, decoded as a consumer's run decodes them (one copy of each name).
fn sourced_events(load: &Workload) -> Vec<SourcedEvent> {
    let mut sourced = Vec::with_capacity(load.events.len());
    let mut names = Names::default();
    for entry in &load.entries {
        let partition: Arc<str> = entry.partition.as_str().into();
        let position: Arc<str> = entry.position.as_str().into();
        for event in decode_events_with(&entry.data, &mut names).unwrap() {
            sourced.push(SourcedEvent {
                partition: partition.clone(),
                position: position.clone(),
                event,
            });
        }
    }
    sourced
}
