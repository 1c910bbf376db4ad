//! What a log record's codec costs per event (issue 17, section 4): for one frame of 500
//! events from the pipeline bench's generator, the JSON decoders (today's
//! `UsageEvent::decode_json`, serde_json into a struct that borrows its strings, simd-json)
//! and the decompression of the 500 JSON lines with zstd (levels 1 and 3) and lz4; and the
//! Parquet encode of 1000 events by Tollgate's writer (`codec/parquet/tollgate_writer`)
//! and by parquet-rs's Arrow writer under several settings (`codec/parquet/arrow_*`).
//!
//! Run with `cargo bench -p metering --bench codec`. One thread; events/s is per core. The
//! compression ratios are printed once, before the benches.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

/// The allocator of the production binaries, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use parquet::file::properties::WriterProperties;
use schemas::parquet_codec::{UsageParquetEncoder, encode_with_arrow_writer};
use schemas::{ApiSurface, Operation, Outcome, UsageEvent};
use serde::{Deserialize, Deserializer};
use store::contract::registry::{new_customer, new_key};
use uuid::Uuid;

mod common;
use common::clock::BenchClock;
use common::workload::workload;

/// Events in one frame: one producer's batch, as the new log record carries it.
const FRAME_EVENTS: usize = 500;

/// The event with its strings borrowed from the input: what a borrowing decoder yields.
/// `event_id` and `occurred_at` are parsed, as the consumer needs them.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct BorrowedEvent<'a> {
    event_id: Uuid,
    schema_version: u16,
    #[serde(deserialize_with = "rfc3339_borrowed")]
    occurred_at: DateTime<Utc>,
    customer_id: &'a str,
    key_id: &'a str,
    request_id: &'a str,
    upstream_request_id: Option<&'a str>,
    model_id: &'a str,
    operation: Operation,
    status: u16,
    outcome: Outcome,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    latency_ms: u64,
    upstream_latency_ms: Option<u64>,
    request_bytes: u64,
    response_bytes: u64,
    proxy_instance: &'a str,
    instance_seq: u64,
}

impl BorrowedEvent<'_> {
    fn to_owned_event(&self) -> UsageEvent {
        UsageEvent {
            event_id: self.event_id,
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            customer_id: self.customer_id.into(),
            key_id: self.key_id.into(),
            request_id: self.request_id.into(),
            upstream_request_id: self.upstream_request_id.map(Into::into),
            model_id: self.model_id.into(),
            operation: self.operation,
            api: Some(ApiSurface::Bedrock),
            status: self.status,
            outcome: self.outcome,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens,
            latency_ms: self.latency_ms,
            upstream_latency_ms: self.upstream_latency_ms,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            proxy_instance: self.proxy_instance.into(),
            instance_seq: self.instance_seq,
        }
    }
}

fn rfc3339_borrowed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <&str>::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(text)
        .map(|parsed| schemas::usage_event::truncate_to_millis(parsed.with_timezone(&Utc)))
        .map_err(serde::de::Error::custom)
}

/// The frame's events, one JSON document each, and the frame's payload (JSON lines).
fn frame_lines() -> (Vec<Vec<u8>>, Vec<u8>) {
    let customers: Vec<(String, String)> = (0..20)
        .map(|_| {
            let customer = new_customer();
            let key = new_key(&customer.customer_id);
            (customer.customer_id, key.key_id)
        })
        .collect();
    // One record in 50 of the generator's log is a redelivery: ask for enough records.
    let load = workload(FRAME_EVENTS + FRAME_EVENTS / 40, &customers);
    let lines: Vec<Vec<u8>> = load
        .events
        .iter()
        .take(FRAME_EVENTS)
        .map(|event| event.encode_json().unwrap())
        .collect();
    assert_eq!(lines.len(), FRAME_EVENTS);
    let mut payload = Vec::new();
    for line in &lines {
        payload.extend_from_slice(line);
        payload.push(b'\n');
    }
    (lines, payload)
}

fn decoder_benches(criterion: &mut Criterion<BenchClock>, lines: &[Vec<u8>]) {
    let mut group = criterion.benchmark_group("codec");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(lines.len() as u64));

    // What `UsageEvent::decode_json` did before the single-pass decoder: serde into the
    // owned event, then the version check.
    group.bench_function("serde_owned", |bench| {
        bench.iter(|| {
            for line in lines {
                let event = serde_json::from_slice::<UsageEvent>(black_box(line)).unwrap();
                assert_eq!(event.schema_version, schemas::USAGE_EVENT_SCHEMA_VERSION);
                black_box(event);
            }
        });
    });
    group.bench_function("decode_json_current", |bench| {
        bench.iter(|| {
            for line in lines {
                black_box(UsageEvent::decode_json(black_box(line)).unwrap());
            }
        });
    });
    group.bench_function("serde_borrowed", |bench| {
        bench.iter(|| {
            for line in lines {
                black_box(serde_json::from_slice::<BorrowedEvent>(black_box(line)).unwrap());
            }
        });
    });
    group.bench_function("serde_borrowed_to_owned", |bench| {
        bench.iter(|| {
            for line in lines {
                let borrowed = serde_json::from_slice::<BorrowedEvent>(black_box(line)).unwrap();
                black_box(borrowed.to_owned_event());
            }
        });
    });
    // simd-json parses in place, so each line is first copied into a reused buffer.
    group.bench_function("simd_json_borrowed", |bench| {
        let mut scratch: Vec<u8> = Vec::with_capacity(4096);
        bench.iter(|| {
            for line in lines {
                scratch.clear();
                scratch.extend_from_slice(black_box(line));
                black_box(simd_json::serde::from_slice::<BorrowedEvent>(&mut scratch).unwrap());
            }
        });
    });
    group.bench_function("simd_json_borrowed_to_owned", |bench| {
        let mut scratch: Vec<u8> = Vec::with_capacity(4096);
        bench.iter(|| {
            for line in lines {
                scratch.clear();
                scratch.extend_from_slice(black_box(line));
                let borrowed = simd_json::serde::from_slice::<BorrowedEvent>(&mut scratch).unwrap();
                black_box(borrowed.to_owned_event());
            }
        });
    });
    group.finish();
}

/// One frame compressed by each codec: (name, compressed bytes).
fn compressed_frames(payload: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("zstd1", zstd::bulk::compress(payload, 1).unwrap()),
        ("zstd3", zstd::bulk::compress(payload, 3).unwrap()),
        ("lz4", lz4_flex::block::compress(payload)),
    ]
}

fn decompress(codec: &str, compressed: &[u8], output: &mut Vec<u8>, size: usize) {
    output.clear();
    output.resize(size, 0);
    let written = match codec {
        "lz4" => lz4_flex::block::decompress_into(compressed, output).unwrap(),
        _ => zstd::bulk::decompress_to_buffer(compressed, output.as_mut_slice()).unwrap(),
    };
    assert_eq!(written, size);
}

fn decompression_benches(criterion: &mut Criterion<BenchClock>, payload: &[u8], events: usize) {
    let frames = compressed_frames(payload);
    eprintln!(
        "frame: {events} events, {} bytes of JSON lines ({} bytes per event)",
        payload.len(),
        payload.len() / events
    );
    for (codec, compressed) in &frames {
        eprintln!(
            "  {codec}: {} bytes, ratio {:.2}, {} bytes per event",
            compressed.len(),
            payload.len() as f64 / compressed.len() as f64,
            compressed.len() / events
        );
    }
    let mut group = criterion.benchmark_group("codec");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(events as u64));
    for (codec, compressed) in &frames {
        group.bench_with_input(
            BenchmarkId::new("decompress", codec),
            compressed,
            |bench, compressed| {
                let mut output = Vec::with_capacity(payload.len());
                bench.iter(|| decompress(codec, black_box(compressed), &mut output, payload.len()));
            },
        );
    }
    for level in [1, 3] {
        group.bench_function(
            BenchmarkId::new("compress", format!("zstd{level}")),
            |bench| {
                let mut compressor = zstd::bulk::Compressor::new(level).unwrap();
                bench.iter(|| black_box(compressor.compress(black_box(payload)).unwrap()));
            },
        );
    }
    group.bench_function(BenchmarkId::new("compress", "lz4"), |bench| {
        bench.iter(|| black_box(lz4_flex::block::compress(black_box(payload))));
    });
    // The whole frame to owned events: decompress once, then a borrowing decode per line.
    for (codec, compressed) in &frames {
        group.bench_with_input(
            BenchmarkId::new("frame_to_events", codec),
            compressed,
            |bench, compressed| {
                let mut output = Vec::with_capacity(payload.len());
                let mut events_out: Vec<UsageEvent> = Vec::with_capacity(events);
                bench.iter(|| {
                    decompress(codec, black_box(compressed), &mut output, payload.len());
                    events_out.clear();
                    for line in output
                        .split(|byte| *byte == b'\n')
                        .filter(|line| !line.is_empty())
                    {
                        let borrowed = serde_json::from_slice::<BorrowedEvent>(line).unwrap();
                        events_out.push(borrowed.to_owned_event());
                    }
                    assert_eq!(events_out.len(), events);
                });
            },
        );
    }
    group.finish();
}

/// Parquet writer settings compared on 1000 events: (name, settings).
fn parquet_variants() -> Vec<(&'static str, WriterProperties)> {
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::schema::types::ColumnPath;
    let with_codec = |codec: Compression, dictionary_codec: Compression| {
        let mut builder = schemas::parquet_codec::writer_properties()
            .into_builder()
            .set_compression(codec);
        for column in schemas::parquet_codec::DICTIONARY_COLUMNS {
            builder = builder.set_column_compression(ColumnPath::from(column), dictionary_codec);
        }
        builder.build()
    };
    let zstd = Compression::ZSTD(ZstdLevel::default());
    vec![
        ("current", schemas::parquet_codec::writer_properties()),
        ("zstd_all", with_codec(zstd, zstd)),
        (
            "snappy_all",
            with_codec(Compression::SNAPPY, Compression::SNAPPY),
        ),
        (
            "zstd_plain_dictionary_uncompressed",
            with_codec(zstd, Compression::UNCOMPRESSED),
        ),
        (
            "uncompressed",
            with_codec(Compression::UNCOMPRESSED, Compression::UNCOMPRESSED),
        ),
        (
            "no_statistics",
            schemas::parquet_codec::writer_properties()
                .into_builder()
                .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
                .build(),
        ),
        (
            "chunk_statistics",
            schemas::parquet_codec::writer_properties()
                .into_builder()
                .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
                .build(),
        ),
    ]
}

/// Each column's bytes per event in a file (pages and their headers, as stored).
fn print_column_sizes(bytes: &bytes::Bytes, events: usize) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes.clone()).unwrap();
    let mut sizes: Vec<(String, i64)> = Vec::new();
    for group in reader.metadata().row_groups() {
        for (index, column) in group.columns().iter().enumerate() {
            if sizes.len() <= index {
                sizes.push((column.column_path().string(), 0));
            }
            sizes[index].1 += column.compressed_size();
        }
    }
    let line: Vec<String> = sizes
        .iter()
        .map(|(name, size)| format!("{name} {:.1}", *size as f64 / events as f64))
        .collect();
    eprintln!("  bytes per event by column: {}", line.join(", "));
}

fn parquet_benches(criterion: &mut Criterion<BenchClock>) {
    let customers: Vec<(String, String)> = (0..20)
        .map(|_| {
            let customer = new_customer();
            let key = new_key(&customer.customer_id);
            (customer.customer_id, key.key_id)
        })
        .collect();
    let events = workload(1_000, &customers).events;
    let mut group = criterion.benchmark_group("codec");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(events.len() as u64));
    // Tollgate's file writer (what the consumer writes), then parquet-rs's Arrow writer
    // under each setting (the first, `arrow_current`, with the same settings as ours).
    let encoder = UsageParquetEncoder::new();
    let bytes = encoder.encode(&events).unwrap();
    eprintln!(
        "parquet tollgate_writer: {} bytes for {} events ({} bytes per event)",
        bytes.len(),
        events.len(),
        bytes.len() / events.len()
    );
    print_column_sizes(&bytes, events.len());
    group.bench_function(BenchmarkId::new("parquet", "tollgate_writer"), |bench| {
        bench.iter(|| black_box(encoder.encode(black_box(&events)).unwrap()));
    });
    for (name, properties) in parquet_variants() {
        let bytes = encode_with_arrow_writer(&events, properties.clone()).unwrap();
        eprintln!(
            "parquet arrow_{name}: {} bytes for {} events ({} bytes per event)",
            bytes.len(),
            events.len(),
            bytes.len() / events.len()
        );
        group.bench_function(
            BenchmarkId::new("parquet", format!("arrow_{name}")),
            |bench| {
                bench.iter(|| {
                    black_box(
                        encode_with_arrow_writer(black_box(&events), properties.clone()).unwrap(),
                    )
                });
            },
        );
    }
    group.finish();
}

fn codec_benches(criterion: &mut Criterion<BenchClock>) {
    parquet_benches(criterion);
    let (lines, payload) = frame_lines();
    decoder_benches(criterion, &lines);
    decompression_benches(criterion, &payload, lines.len());
}

criterion_group! {
    name = benches;
    config = common::clock::criterion();
    targets = codec_benches
}
criterion_main!(benches);
