//! The consumer benches' input: realistic usage events over one UTC day, encoded as the
//! proxy encodes them, with a few redeliveries. Deterministic, so every run measures the
//! same mix.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use schemas::usage_frame::{EventFormat, FrameBuilder};
use schemas::{ApiSurface, Operation, Outcome, USAGE_EVENT_SCHEMA_VERSION, UsageEvent};
use store::LogEntry;
use uuid::Uuid;

/// One record in this many is a redelivery of an earlier one (same bytes, another position).
pub const REDELIVERY_EVERY: usize = 50;
pub const PARTITION: &str = "shardId-000000000000";
const MODELS: [&str; 5] = [
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
    "mistral.mistral-large-2407-v1:0",
];
const PROXY_INSTANCES: [&str; 2] = ["proxy-ip-10-0-1-17-4242", "proxy-ip-10-0-2-31-977"];

/// A small deterministic generator (SplitMix64), so every run measures the same mix.
pub struct SplitMix(pub u64);

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
pub struct Workload {
    pub entries: Vec<LogEntry>,
    /// The decoded distinct events, in log order.
    pub events: Vec<UsageEvent>,
    /// Events in the entries that repeat an earlier one.
    pub duplicates: usize,
}

pub fn day_start() -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
}

/// A UUIDv7 as the proxy makes one at `at`: the millisecond, then random bits.
fn uuid_v7_at(at: DateTime<Utc>, ids: &mut SplitMix) -> Uuid {
    let mut random = [0_u8; 10];
    random[..8].copy_from_slice(&ids.next().to_le_bytes());
    random[8..].copy_from_slice(&ids.next().to_le_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &random).into_uuid()
}

/// A random UUID (version 4), the form of Bedrock's request ids.
fn uuid_v4(ids: &mut SplitMix) -> Uuid {
    let mut random = [0_u8; 16];
    random[..8].copy_from_slice(&ids.next().to_le_bytes());
    random[8..].copy_from_slice(&ids.next().to_le_bytes());
    uuid::Builder::from_random_bytes(random).into_uuid()
}

/// A realistic event: one of the customers and models, a time in the day, tokens that fit
/// the outcome (rejected calls carry none; upstream errors none or few), ids as production
/// has them (drawn from `ids`, so the other draws do not depend on them): the event and
/// request ids UUIDv7 of the event's time, Bedrock's request id random.
pub fn realistic_event(
    rng: &mut SplitMix,
    ids: &mut SplitMix,
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
    let event_id = uuid_v7_at(occurred_at, ids);
    UsageEvent {
        event_id,
        schema_version: USAGE_EVENT_SCHEMA_VERSION,
        occurred_at,
        customer_id: customer_id.clone().into(),
        key_id: key_id.clone().into(),
        // The proxy's request id is its event id.
        request_id: event_id.into(),
        upstream_request_id: called_bedrock.then(|| uuid_v4(ids).into()),
        model_id: model_id.into(),
        operation,
        // Spread over the APIs without a draw of its own (the draws stay as they were).
        api: Some(ApiSurface::ALL[(sequences[instance] % 4) as usize]),
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
        proxy_instance: PROXY_INSTANCES[instance].into(),
        instance_seq: sequences[instance],
    }
}

/// How a workload's events are laid out in log records.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// One event's JSON per record, as records were written before frames.
    JsonRecords,
    /// Frames of one producer's events, up to `events` each, in `format`, compressed as the
    /// proxy compresses them (the format's codec above 1 KiB): what proxies write.
    Frames { format: EventFormat, events: usize },
}

/// Events per frame in the benches' framed layouts: a group commit's events at a few
/// thousand calls per second, or a fraction of what the spool's drainer merges.
pub const FRAME_EVENTS: usize = 100;

/// `records` events spread over one UTC day, laid out as JSON records (one per event);
/// see [`workload_in`].
pub fn workload(records: usize, customers: &[(String, String)]) -> Workload {
    workload_in(records, customers, Layout::JsonRecords)
}

/// `count` events spread over one UTC day, one in [`REDELIVERY_EVERY`] a copy of an
/// earlier one (the same producer number sent again), laid out in log records as `layout`
/// says. The same `count` gives the same events whatever the layout.
pub fn workload_in(count: usize, customers: &[(String, String)], layout: Layout) -> Workload {
    let mut rng = SplitMix(0x7011_6A7E ^ count as u64);
    let mut ids = SplitMix(0x0001_D50F_E7E4 ^ count as u64);
    let mut sequences = [0_u64; 2];
    let step_ms = 86_400_000 / count as i64;
    let start = day_start();
    let mut events = Vec::with_capacity(count);
    let mut stream: Vec<UsageEvent> = Vec::with_capacity(count);
    for index in 0..count {
        if index % REDELIVERY_EVERY == REDELIVERY_EVERY - 1 {
            stream.push(stream[index - 7].clone());
        } else {
            let jitter = rng.between(0, step_ms as u64 - 1) as i64;
            let at = start + chrono::Duration::milliseconds(index as i64 * step_ms + jitter);
            let event = realistic_event(&mut rng, &mut ids, customers, at, &mut sequences);
            events.push(event.clone());
            stream.push(event);
        }
    }
    let entries = match layout {
        Layout::JsonRecords => stream
            .iter()
            .map(|event| (event.customer_id.to_string(), event.encode_json().unwrap()))
            .collect(),
        Layout::Frames { format, events } => frames(&stream, format, events),
    };
    Workload {
        entries: entries
            .into_iter()
            .enumerate()
            .map(|(index, (partition_key, data))| LogEntry {
                partition: PARTITION.to_owned(),
                position: format!("{:020}", index + 1),
                partition_key,
                data: Bytes::from(data),
            })
            .collect(),
        duplicates: count / REDELIVERY_EVERY,
        events,
    }
}

/// The stream as frames, each one producer's next events in order (a frame is emitted
/// when its producer has `per_frame`, and the rest at the end), keyed by the producer.
fn frames(stream: &[UsageEvent], format: EventFormat, per_frame: usize) -> Vec<(String, Vec<u8>)> {
    let mut open: Vec<(String, FrameBuilder)> = Vec::new();
    let mut records = Vec::new();
    let finish = |producer: String, frame: FrameBuilder, records: &mut Vec<(String, Vec<u8>)>| {
        let codec = frame.codec();
        records.push((producer, frame.finish(codec).unwrap()));
    };
    for event in stream {
        let slot = match open
            .iter()
            .position(|(producer, _)| *producer == event.proxy_instance)
        {
            Some(slot) => slot,
            None => {
                open.push((
                    event.proxy_instance.to_string(),
                    FrameBuilder::with_format(format),
                ));
                open.len() - 1
            }
        };
        open[slot].1.push(event).unwrap();
        if open[slot].1.len() == per_frame {
            let (producer, frame) = open.swap_remove(slot);
            finish(producer, frame, &mut records);
        }
    }
    for (producer, frame) in open {
        finish(producer, frame, &mut records);
    }
    records
}
