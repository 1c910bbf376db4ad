//! Metering benchmark: events per second through the embedded log into the counters and
//! Parquet, with and without the alert rules evaluated after each batch.
//!
//! Run it with `bench/metering.sh`. Bounded: `--events` events, spread over `--customers`
//! customers and the last `--hours` hours, appended to a fresh SQLite log in a temporary
//! directory, then drained by one consumer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

/// mimalloc rather than the system allocator: the consumer allocates and frees a few
/// strings per event, and glibc's malloc was a sixth of its time (BENCHMARKS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use metering::alert_engine::{AlertEngine, AlertSettings};
use metering::parquet_buffer::{FlushPolicy, ProjectionClock};
use metering::{BatchApplier, ConsumerSettings, MeteringConsumer};
use schemas::usage_frame::{EventFormat, FrameBuilder};
use schemas::{Limits, Outcome};
use store::LogRecord;
use store::backend::{BackendSettings, Ports};
use store::contract::registry::{audit_for, new_customer, new_key};
use store::notify::{LogNotifier, Notifier};

struct Options {
    events: usize,
    customers: usize,
    hours: i64,
    /// Events per log record (the proxy writes a frame per batch; 1 is a record per event).
    frame_events: usize,
    /// Parquet written every batch (`--parquet-flush-secs 0`) instead of buffered.
    parquet_every_batch: bool,
    /// How frames write events (`--event-format`, binary as the proxy writes them).
    event_format: EventFormat,
}

fn options() -> Options {
    let mut options = Options {
        events: 1_000_000,
        customers: 50,
        hours: 24,
        frame_events: 100,
        parquet_every_batch: false,
        event_format: EventFormat::Binary,
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.chunks(2) {
        let value = pair.get(1).and_then(|value| value.parse::<usize>().ok());
        if pair[0] == "--event-format"
            && let Some(format) = pair.get(1).and_then(|text| text.parse().ok())
        {
            options.event_format = format;
            continue;
        }
        match (pair[0].as_str(), value) {
            ("--events", Some(value)) => options.events = value.clamp(1, 2_000_000),
            ("--customers", Some(value)) => options.customers = value.clamp(1, 10_000),
            ("--hours", Some(value)) => options.hours = value.clamp(1, 800) as i64,
            ("--frame-events", Some(value)) => options.frame_events = value.clamp(1, 1000),
            ("--parquet-flush-secs", Some(0)) => options.parquet_every_batch = true,
            ("--parquet-flush-secs", Some(_)) => options.parquet_every_batch = false,
            _ => {
                eprintln!(
                    "usage: bench-metering [--events N] [--customers N] [--hours N] [--frame-events N] [--parquet-flush-secs 0|300] [--event-format binary|binary-v2|json]"
                );
                std::process::exit(2);
            }
        }
    }
    options
}

/// A fresh embedded installation with customers (half of them with limits) and `events`
/// usage events in its log.
async fn installation(directory: &std::path::Path, options: &Options) -> (Ports, Vec<String>) {
    let settings = BackendSettings::Embedded {
        database: directory.join("tollgate.db"),
        data_dir: directory.join("data"),
    };
    let ports = settings.open().await.unwrap();
    let mut customers = Vec::new();
    for index in 0..options.customers {
        let mut customer = new_customer();
        if index % 2 == 0 {
            customer.limits = Limits {
                daily_request_limit: Some(1_000_000),
                monthly_token_limit: Some(10_000_000_000),
                requests_per_minute: Some(100_000),
                ..Limits::default()
            };
        }
        let key = new_key(&customer.customer_id);
        ports
            .registry
            .create_customer(&customer, &key, &audit_for(&customer.customer_id, "create"))
            .await
            .unwrap();
        customers.push(customer.customer_id);
    }
    let now = Utc::now();
    let span_ms = options.hours * 3_600_000;
    let producers = 8;
    let mut records = Vec::with_capacity(1000);
    let mut frame = FrameBuilder::with_format(options.event_format);
    for index in 0..options.events {
        let customer = &customers[index % customers.len()];
        let outcome = if index % 50 == 0 {
            Outcome::UpstreamError
        } else {
            Outcome::Success
        };
        let mut event = store::contract::event_on(
            customer,
            now.date_naive(),
            "anthropic.claude-3-haiku-20240307-v1:0",
            outcome,
            120,
            80,
        );
        // The proxy's request id is its event id.
        event.request_id = event.event_id.into();
        let offset = span_ms - span_ms * index as i64 / options.events as i64;
        event.occurred_at = now - Duration::milliseconds(offset);
        // Frames of one producer each, as the proxy writes them.
        let frame_index = index / options.frame_events;
        event.proxy_instance = format!("bench-proxy-{}", frame_index % producers).into();
        event.instance_seq = (frame_index / producers * options.frame_events
            + index % options.frame_events
            + 1) as u64;
        frame.push(&event).unwrap();
        if frame.len() == options.frame_events || index + 1 == options.events {
            records.push(LogRecord {
                partition_key: event.proxy_instance.to_string(),
                data: std::mem::replace(
                    &mut frame,
                    FrameBuilder::with_format(options.event_format),
                )
                .finish(options.event_format.compressed_codec())
                .unwrap()
                .into(),
            });
        }
        if records.len() == 1000 {
            ports.event_appender.append(&records).await.unwrap();
            records.clear();
        }
    }
    if !records.is_empty() {
        ports.event_appender.append(&records).await.unwrap();
    }
    (ports, customers)
}

async fn run(label: &str, options: &Options, alerts: bool) {
    let directory = tempfile::tempdir().unwrap();
    let (ports, _) = installation(directory.path(), options).await;
    let engine = alerts.then(|| {
        let notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(LogNotifier)];
        Arc::new(AlertEngine::new(
            ports.registry.clone(),
            ports.counters.clone(),
            ports.alerts.clone(),
            notifiers,
            AlertSettings::default(),
        ))
    });
    let parquet_flush = if options.parquet_every_batch {
        FlushPolicy::EVERY_BATCH
    } else {
        FlushPolicy::SERVER_DEFAULT
    };
    let applier = BatchApplier::from_ports(&ports)
        .with_alert_engine(engine.clone())
        .with_parquet_flush(parquet_flush, ProjectionClock::System);
    let consumer = MeteringConsumer::with_applier(
        ports.event_reader.clone(),
        ports.checkpoints.clone(),
        applier,
        ConsumerSettings {
            parquet_flush,
            ..ConsumerSettings::default()
        },
    );
    let started = Instant::now();
    let report = consumer.drain().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        report.events_counted, options.events,
        "every event counted once"
    );
    let raised = engine.map_or(0, |engine| {
        engine
            .stats
            .raised
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    println!(
        "{label:<28} {:>9} {:>9.2} {:>12.0} {:>7}",
        options.events,
        elapsed.as_secs_f64(),
        options.events as f64 / elapsed.as_secs_f64(),
        raised
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    println!(
        "{} events, {} customers, over {} hours; embedded log (SQLite) -> counters + Parquet, batches of 1000 records of {} events; Parquet {}",
        options.events,
        options.customers,
        options.hours,
        options.frame_events,
        if options.parquet_every_batch {
            "every batch"
        } else {
            "buffered (server default)"
        }
    );
    println!(
        "{:<28} {:>9} {:>9} {:>12} {:>7}",
        "run", "events", "seconds", "events/s", "alerts"
    );
    run("metering, no alerts", &options, false).await;
    run("metering, alert rules on", &options, true).await;
}
