//! Parquet files per million events: the real consumer (`MeteringConsumer` over an
//! in-memory log and counters, Parquet on local files) fed like a server at a steady rate.
//! Every 200 ms of simulated time (the consumer's idle poll), the proxy's frames of that
//! slice are appended, one pass is run and the buffers due are written out; the buffers'
//! clock is the simulated one, so 1M events at 1,000 events/s take seconds, not 17 minutes.
//!
//! `--mode per-batch` writes Parquet every batch (the design before buffering);
//! `--mode buffered` uses the server defaults (128 MiB or 300 s); `--mode compact` compacts
//! the days found under `--dir` (as the hourly compaction does). Prints one JSON line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metering::compact::{CompactionSettings, TARGET_FILE_BYTES, compact_day};
use metering::parquet_buffer::{FlushPolicy, ProjectionClock};
use metering::{BatchApplier, ConsumerSettings, MeteringConsumer};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use schemas::Outcome;
use schemas::usage_frame::FrameBuilder;
use store::memory::MemoryStore;
use store::{EventAppender, LogRecord};

struct Options {
    events: u64,
    rate: u64,
    frame_events: u64,
    producers: u64,
    mode: String,
    dir: std::path::PathBuf,
}

fn options() -> Options {
    let mut options = Options {
        events: 1_000_000,
        rate: 1_000,
        frame_events: 4,
        producers: 4,
        mode: "buffered".into(),
        dir: std::path::PathBuf::from("target/bench-parquet-files"),
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let number = value.parse::<u64>().ok();
        match (pair[0].as_str(), number) {
            ("--events", Some(number)) => options.events = number.clamp(1, 20_000_000),
            ("--rate", Some(number)) => options.rate = number.clamp(5, 100_000),
            ("--frame-events", Some(number)) => options.frame_events = number.clamp(1, 1_000),
            ("--producers", Some(number)) => options.producers = number.clamp(1, 1_000),
            ("--mode", _) if ["per-batch", "buffered", "compact"].contains(&value.as_str()) => {
                options.mode = value;
            }
            ("--dir", _) if !value.is_empty() => options.dir = value.into(),
            _ => {
                eprintln!(
                    "usage: bench-parquet-files [--mode per-batch|buffered|compact] [--dir D] [--events N] [--rate N] [--frame-events N] [--producers N]"
                );
                std::process::exit(2);
            }
        }
    }
    options
}

fn usage_files(dir: &std::path::Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let Ok(days) = std::fs::read_dir(dir.join("usage")) else {
        return (0, 0);
    };
    for day in days.flatten() {
        for file in std::fs::read_dir(day.path()).unwrap().flatten() {
            files += 1;
            bytes += file.metadata().unwrap().len();
        }
    }
    (files, bytes)
}

/// The frames of `count` events from `first` (their index), spread over the producers.
fn frames(options: &Options, first: u64, count: u64, seqs: &mut [u64]) -> Vec<LogRecord> {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let mut records = Vec::new();
    let mut index = first;
    while index < first + count {
        let producer = (index / options.frame_events) % options.producers;
        let mut frame = FrameBuilder::new();
        let end = (index + options.frame_events).min(first + count);
        for event_index in index..end {
            let mut event = store::contract::event_on(
                &format!("customer-{}", event_index % 50),
                day,
                "anthropic.claude-3-haiku-20240307-v1:0",
                Outcome::Success,
                120,
                80,
            );
            let millis = i64::try_from(event_index * 1000 / options.rate).unwrap();
            event.occurred_at = start + chrono::Duration::milliseconds(millis);
            event.proxy_instance = format!("proxy-{producer}").into();
            seqs[producer as usize] += 1;
            event.instance_seq = seqs[producer as usize];
            frame.push(&event).unwrap();
        }
        records.push(LogRecord {
            partition_key: format!("proxy-{producer}"),
            data: {
                let codec = frame.format().compressed_codec();
                frame.finish(codec).unwrap().into()
            },
        });
        index = end;
    }
    records
}

async fn meter(options: &Options, policy: FlushPolicy) {
    let _ = std::fs::remove_dir_all(&options.dir);
    std::fs::create_dir_all(&options.dir).unwrap();
    let objects: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&options.dir).unwrap());
    let store = Arc::new(MemoryStore::new());
    let millis = Arc::new(AtomicU64::new(0));
    let applier = BatchApplier::new(store.clone(), Arc::clone(&objects))
        .with_parquet_flush(policy, ProjectionClock::Manual(Arc::clone(&millis)));
    let consumer = MeteringConsumer::with_applier(
        store.clone(),
        store.clone(),
        applier,
        ConsumerSettings {
            parquet_flush: policy,
            ..ConsumerSettings::default()
        },
    );
    let tick = Duration::from_millis(200);
    let per_tick = (options.rate / 5).max(1);
    let mut seqs = vec![0; options.producers as usize];
    let started = std::time::Instant::now();
    let mut appended = 0;
    while appended < options.events {
        let count = per_tick.min(options.events - appended);
        store
            .append(&frames(options, appended, count, &mut seqs))
            .await
            .unwrap();
        appended += count;
        consumer.run_pass().await.unwrap();
        millis.fetch_add(tick.as_millis() as u64, Ordering::Relaxed);
        consumer.flush_parquet_due().await.unwrap();
    }
    let report = consumer.drain().await.unwrap();
    let elapsed = started.elapsed();
    let (files, bytes) = usage_files(&options.dir);
    println!(
        "{}",
        serde_json::json!({
            "mode": options.mode,
            "events": options.events,
            "rate_per_s": options.rate,
            "simulated_minutes": options.events as f64 / options.rate as f64 / 60.0,
            "files": files,
            "files_per_million_events": files as f64 * 1e6 / options.events as f64,
            "bytes": bytes,
            "bytes_per_event": bytes as f64 / options.events as f64,
            "wall_seconds": elapsed.as_secs_f64(),
            "last_drain_records": report.records_read,
        })
    );
}

async fn compact(options: &Options) {
    let objects: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&options.dir).unwrap());
    let settings = CompactionSettings {
        settle_after: Duration::from_secs(168 * 3600),
        target_file_bytes: TARGET_FILE_BYTES,
    };
    let mut days: Vec<String> = std::fs::read_dir(options.dir.join("usage"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    days.sort();
    let mut merged = 0;
    for day in days {
        let day = day.trim_start_matches("dt=").parse().unwrap();
        merged += compact_day(&objects, day, &settings)
            .await
            .unwrap()
            .files_merged;
    }
    let (files, bytes) = usage_files(&options.dir);
    println!(
        "{}",
        serde_json::json!({ "mode": "compact", "files_merged": merged, "files": files, "bytes": bytes })
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    match options.mode.as_str() {
        "per-batch" => meter(&options, FlushPolicy::EVERY_BATCH).await,
        "buffered" => meter(&options, FlushPolicy::SERVER_DEFAULT).await,
        _ => compact(&options).await,
    }
}
