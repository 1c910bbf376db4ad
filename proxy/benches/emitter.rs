//! What a call's usage event costs before its answer (issue 17, section 2): events
//! recorded one at a time, as at 1,000 calls/s where calls rarely overlap, on the embedded
//! log in a temporary directory, on a two-worker runtime like `tollgate serve`'s. Prints
//! p50, p99 and mean per call.
//!
//! - `queued`: `--durable-events=false`; the answer waits only for the queue.
//! - `durable, spool journal`: the default on servers; the call writes its event to the
//!   spool on its own thread, and the drainer moves it to the log.
//! - `durable, group commit`: the call appends its event to the log on its own thread (the
//!   embedded log without a spool).
//! - `durable, via writer`: the same log with the at-once path hidden, so each event goes
//!   through the writer task and back (durable events before the group commit).
//! - `step: encode`, `step: append`: a durable event's two steps alone (one event as a
//!   frame, uncompressed as the proxy stores a frame under a KiB; that frame appended at
//!   once to the embedded log).
//! - Rows marked `JSON` write frames of JSON lines (`--event-format json`) instead of
//!   binary events, the default.
//!
//! Run with `cargo bench -p proxy --bench emitter [-- CALLS]` (default 20,000 per row, three
//! rounds, rows interleaved).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

/// The allocator of the production binaries, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use proxy::emitter::{Durability, EventEmitter, SpoolSetup};
use schemas::usage_frame::{EventFormat, FrameBuilder, FrameCodec};
use schemas::{Outcome, UsageEvent};
use store::embedded::EmbeddedStore;
use store::spool::FileSpool;
use store::{AppendResult, EventAppender, LogRecord, Spool};

/// The embedded log without its at-once path.
struct WriterOnly(Arc<EmbeddedStore>);

#[async_trait]
impl EventAppender for WriterOnly {
    async fn append(&self, records: &[LogRecord]) -> store::Result<Vec<AppendResult>> {
        self.0.append(records).await
    }
}

fn event() -> UsageEvent {
    store::contract::event_on("c", Utc::now().date_naive(), "m", Outcome::Success, 100, 20)
}

fn encode(event: &UsageEvent, format: EventFormat) -> Vec<u8> {
    let mut frame = FrameBuilder::with_format(format);
    frame.push(event).unwrap();
    frame.finish(FrameCodec::None).unwrap()
}

/// Per-call durations of `calls` events recorded one after another on a runtime worker;
/// with a spool in the same temporary directory when `spooled`; frames in `format`.
fn record_calls(
    durability: Durability,
    at_once: bool,
    spooled: bool,
    calls: usize,
    format: EventFormat,
) -> Vec<Duration> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&directory.path().join("tollgate.db")).unwrap());
    let log: Arc<dyn EventAppender> = if at_once {
        store
    } else {
        Arc::new(WriterOnly(store))
    };
    let spool = spooled.then(|| {
        let spool: Arc<dyn Spool> = Arc::new(Arc::new(
            FileSpool::open(&directory.path().join("spool")).unwrap(),
        ));
        SpoolSetup {
            spool,
            orphans: Vec::new(),
            limit_bytes: 1 << 30,
            location: "bench".into(),
        }
    });
    runtime.block_on(async move {
        let (emitter, handle) =
            EventEmitter::start_with(log, "bench".into(), durability, spool, format);
        let template = event();
        let timings = tokio::spawn(async move {
            let mut timings = Vec::with_capacity(calls);
            for _ in 0..calls {
                let started = Instant::now();
                handle.record(template.clone(), None).await;
                timings.push(started.elapsed());
            }
            timings
        })
        .await
        .unwrap();
        emitter.finish(Duration::from_secs(10)).await;
        timings
    })
}

fn step_calls(step: &str, calls: usize, format: EventFormat) -> Vec<Duration> {
    let template = event();
    let directory = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&directory.path().join("tollgate.db")).unwrap();
    let record = LogRecord {
        partition_key: "bench".into(),
        data: Bytes::from(encode(&template, format)),
    };
    (0..calls)
        .map(|_| {
            let started = Instant::now();
            if step == "encode" {
                std::hint::black_box(encode(&template, format));
            } else {
                std::hint::black_box(store.append_now(std::slice::from_ref(&record)));
            }
            started.elapsed()
        })
        .collect()
}

fn print_row(label: &str, mut timings: Vec<Duration>) {
    timings.sort_unstable();
    let at = |fraction: f64| timings[((timings.len() - 1) as f64 * fraction) as usize];
    let mean = timings.iter().sum::<Duration>() / u32::try_from(timings.len()).unwrap();
    println!(
        "{label:<26} {:>9.1} {:>9.1} {:>9.1}",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

fn main() {
    let calls: usize = std::env::args()
        .skip(1)
        .find_map(|argument| argument.parse().ok())
        .unwrap_or(20_000);
    println!(
        "{:<26} {:>9} {:>9} {:>9}",
        "per call (µs)", "p50", "p99", "mean"
    );
    let (binary, json) = (EventFormat::Binary, EventFormat::Json);
    for round in 1..=3 {
        println!("round {round}, {calls} calls per row");
        let queued = record_calls(Durability::Queued, true, true, calls, binary);
        print_row("queued", queued);
        let journal = record_calls(Durability::BeforeAnswer, true, true, calls, binary);
        print_row("durable, spool journal", journal);
        let journal = record_calls(Durability::BeforeAnswer, true, true, calls, json);
        print_row("durable, journal, JSON", journal);
        let group = record_calls(Durability::BeforeAnswer, true, false, calls, binary);
        print_row("durable, group commit", group);
        let writer = record_calls(Durability::BeforeAnswer, false, false, calls, binary);
        print_row("durable, via writer", writer);
        print_row("step: encode", step_calls("encode", calls, binary));
        print_row("step: encode, JSON", step_calls("encode", calls, json));
        print_row("step: append", step_calls("append", calls, binary));
    }
}
