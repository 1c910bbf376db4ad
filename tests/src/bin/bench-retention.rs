//! Retention benchmark: the embedded database's size after 1M and 10M events, with the
//! log's retention on (every settled record archived, window 0) and off.
//!
//! Run it with `bench/retention.sh`. Bounded: `--events` events in frames of
//! `--frame-events` (appended 1,000 frames per call), metered by the consumer after every
//! `--step` events; with retention on, `retire_settled_log` runs after each step while a
//! writer appends one-event frames every millisecond, whose latency is reported (what a
//! proxy's durable append sees while retention runs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use metering::log_retention::{LogRetentionSettings, retire_settled_log};
use metering::{ConsumerSettings, MeteringConsumer};
use schemas::Outcome;
use schemas::usage_frame::{FrameCodec, encode_frame};
use store::LogRecord;
use store::backend::{BackendSettings, Ports};
use store::contract::registry::register_customers;

struct Options {
    events: usize,
    frame_events: usize,
    step: usize,
    report_at: Vec<usize>,
}

fn options() -> Options {
    let mut options = Options {
        events: 10_000_000,
        frame_events: 10,
        step: 500_000,
        report_at: vec![1_000_000, 10_000_000],
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.chunks(2) {
        let value = pair.get(1).and_then(|value| value.parse::<usize>().ok());
        match (pair[0].as_str(), value) {
            ("--events", Some(value)) => options.events = value.clamp(1_000, 20_000_000),
            ("--frame-events", Some(value)) => options.frame_events = value.clamp(1, 500),
            ("--step", Some(value)) => options.step = value.clamp(1_000, 5_000_000),
            _ => {
                eprintln!("usage: bench-retention [--events N] [--frame-events N] [--step N]");
                std::process::exit(2);
            }
        }
    }
    options.report_at.retain(|at| *at < options.events);
    options.report_at.push(options.events);
    options
}

async fn installation(directory: &Path) -> (Ports, Vec<String>) {
    let settings = BackendSettings::Embedded {
        database: directory.join("tollgate.db"),
        data_dir: directory.to_owned(),
    };
    let ports = settings.open().await.unwrap();
    let customers = register_customers(ports.registry.as_ref(), 50).await;
    (ports, customers)
}

fn frame(customers: &[String], index: usize, events: usize) -> LogRecord {
    let customer = &customers[index % customers.len()];
    let events: Vec<_> = (0..events)
        .map(|_| {
            store::contract::event_on(
                customer,
                Utc::now().date_naive(),
                "anthropic.claude-3-haiku-20240307-v1:0",
                Outcome::Success,
                120,
                80,
            )
        })
        .collect();
    LogRecord {
        partition_key: customer.clone(),
        data: encode_frame(&events, FrameCodec::Zstd).unwrap().into(),
    }
}

/// Appends `events` events in frames, 1,000 frames per append.
async fn append_events(ports: &Ports, customers: &[String], events: usize, frame_events: usize) {
    let frames = events.div_ceil(frame_events);
    let mut records = Vec::with_capacity(1000);
    for index in 0..frames {
        records.push(frame(customers, index, frame_events));
        if records.len() == 1000 || index + 1 == frames {
            ports.event_appender.append(&records).await.unwrap();
            records.clear();
        }
    }
}

/// Bytes of the database file and its write-ahead log on disk, and of a folder's files.
fn on_disk(directory: &Path) -> (u64, u64, u64, u64) {
    let size = |path: &Path| std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let database = size(&directory.join("tollgate.db"));
    let wal = size(&directory.join("tollgate.db-wal"));
    let folder_bytes = |folder: &Path| -> u64 {
        let mut total = 0;
        let mut pending = vec![folder.to_owned()];
        while let Some(next) = pending.pop() {
            for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    total += size(&path);
                }
            }
        }
        total
    };
    (
        database,
        wal,
        folder_bytes(&directory.join("archive")),
        folder_bytes(&directory.join("usage")),
    )
}

/// Runs `work` while a writer appends a one-event frame every millisecond; returns the
/// appends' latencies, sorted.
async fn with_appends_alongside<F: std::future::Future<Output = ()>>(
    ports: &Ports,
    customers: &[String],
    work: F,
) -> Vec<Duration> {
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let (ports, customers, running) = (ports.clone(), customers.to_vec(), running.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut index = 0;
            while running.load(Ordering::Relaxed) {
                let record = frame(&customers, index, 1);
                let started = Instant::now();
                ports.event_appender.append(&[record]).await.unwrap();
                latencies.push(started.elapsed());
                index += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            latencies
        })
    };
    work.await;
    running.store(false, Ordering::Relaxed);
    let mut latencies = writer.await.unwrap();
    latencies.sort();
    latencies
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at].as_secs_f64() * 1000.0
}

const MB: f64 = 1024.0 * 1024.0;

async fn run(options: &Options, retention: bool) {
    let directory = tempfile::tempdir().unwrap();
    let (ports, customers) = installation(directory.path()).await;
    let consumer = MeteringConsumer::from_ports(&ports, ConsumerSettings::default(), None);
    let settings = LogRetentionSettings {
        window: Duration::ZERO,
        ..LogRetentionSettings::default()
    };
    let (mut appended, mut retention_seconds) = (0, 0.0);
    let (mut latencies, mut drain_latencies) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for report_at in &options.report_at {
        while appended < *report_at {
            let step = options.step.min(report_at - appended);
            append_events(&ports, &customers, step, options.frame_events).await;
            appended += step;
            drain_latencies.extend(
                with_appends_alongside(&ports, &customers, async {
                    consumer.drain().await.unwrap();
                })
                .await,
            );
            if retention {
                let retire_started = Instant::now();
                latencies.extend(
                    with_appends_alongside(&ports, &customers, async {
                        retire_settled_log(&ports, &settings, Utc::now())
                            .await
                            .unwrap();
                    })
                    .await,
                );
                retention_seconds += retire_started.elapsed().as_secs_f64();
            }
        }
        let records = ports
            .log_retention
            .as_ref()
            .unwrap()
            .footprint()
            .await
            .unwrap()
            .records;
        let (database, wal, archive, parquet) = on_disk(directory.path());
        println!(
            "{:<14} {:>10} {:>10} {:>11.1} {:>8.1} {:>11.1} {:>11.1} {:>9.1} {:>10.1}",
            if retention { "on (window 0)" } else { "off" },
            appended,
            records,
            database as f64 / MB,
            wal as f64 / MB,
            archive as f64 / MB,
            parquet as f64 / MB,
            started.elapsed().as_secs_f64(),
            retention_seconds,
        );
    }
    let mut lines = vec![("while the consumer drains", drain_latencies)];
    if retention {
        lines.push(("while retention runs", latencies));
    }
    for (label, mut latencies) in lines {
        latencies.sort();
        println!(
            "  appends of one-event frames, 1 ms apart, {label}: {} appends, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            latencies
                .last()
                .map_or(0.0, |max| max.as_secs_f64() * 1000.0)
        );
    }
}

#[tokio::main]
async fn main() {
    let options = options();
    println!(
        "{} events in frames of {} (zstd), 50 customers; consumer drains every {} events; embedded store (SQLite) with retention off and on",
        options.events, options.frame_events, options.step
    );
    println!(
        "{:<14} {:>10} {:>10} {:>11} {:>8} {:>11} {:>11} {:>9} {:>10}",
        "retention",
        "events",
        "log rows",
        "sqlite MB",
        "wal MB",
        "archive MB",
        "parquet MB",
        "seconds",
        "retire s"
    );
    run(&options, false).await;
    run(&options, true).await;
}
