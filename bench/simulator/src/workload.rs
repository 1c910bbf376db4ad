//! The simulated callers and proxies: calls at a steady total rate, each to a customer drawn
//! from the Zipf distribution and served by one of the running proxy processes, which come
//! and go like Lambda instances. Each proxy appends, per tick, one frame of the events it
//! served (`schemas::usage_frame`, zstd), keyed by its producer id, as the emitter does.

use chrono::{DateTime, TimeZone, Utc};
use schemas::usage_frame::FrameBuilder;
use schemas::{ApiSurface, Operation, Outcome, UsageEvent};
use uuid::Uuid;

use crate::config::{CustomerOrder, SimulationConfig};
use crate::kinesis::shard_of_partition_key;
use crate::rng::SeededRng;
use crate::zipf::Zipf;

/// The models customers call, the first most.
const MODELS: [&str; 4] = [
    "anthropic.claude-3-haiku-20240307-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "amazon.nova-lite-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
];

/// A running proxy process: a producer id, its next sequence number and when it stops.
#[derive(Debug, Clone)]
struct Producer {
    id: String,
    next_seq: u64,
    stops_at_ms: u64,
    shard: u32,
    pending: Vec<UsageEvent>,
}

/// One Kinesis record: a frame of one producer's events.
#[derive(Debug, Clone)]
pub struct Record {
    pub shard: u32,
    /// Data plus partition key, as Kinesis bills it.
    pub bytes: u64,
    pub arrival_ms: u64,
    /// The frame (`schemas::usage_frame`, zstd), as the consumer reads it.
    pub data: bytes::Bytes,
    pub events: usize,
}

/// The calls, the customers and the proxies.
#[derive(Debug)]
pub struct Workload {
    rng: SeededRng,
    zipf: Zipf,
    order: CustomerOrder,
    customers: Vec<(String, String)>,
    model_weights: Vec<f64>,
    producers: Vec<Producer>,
    shards: u32,
    lifetime_ms: f64,
    total_events: u64,
    generated: u64,
    rate_per_ms: f64,
    carry: f64,
    start: DateTime<Utc>,
    pub producers_started: u64,
}

impl Workload {
    pub fn new(config: &SimulationConfig) -> Self {
        let mut rng = SeededRng::new(config.seed);
        let zipf = Zipf::new(config.customers.max(1) as usize, config.zipf_exponent);
        let customers = (0..config.customers.max(1))
            .map(|_| {
                let customer =
                    Uuid::from_u128(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()));
                (
                    customer.to_string(),
                    format!(
                        "key_{}",
                        Uuid::from_u128(u128::from(rng.next_u64())).simple()
                    ),
                )
            })
            .collect();
        let models = (config.models as usize).clamp(1, MODELS.len());
        let model_weights = (0..models)
            .map(|index| [6.0, 3.0, 1.0, 0.5][index])
            .collect();
        let total_rate = match config.customer_order {
            CustomerOrder::Zipf => config.hot_customer_rate / zipf.share(0),
            CustomerOrder::Sequential => config.hot_customer_rate,
        };
        let mut workload = Self {
            rng,
            zipf,
            order: config.customer_order,
            customers,
            model_weights,
            producers: Vec::new(),
            shards: config.shards.max(1),
            lifetime_ms: config.producer_lifetime_s * 1000.0,
            total_events: config.events,
            generated: 0,
            rate_per_ms: total_rate / 1000.0,
            carry: 0.0,
            start: Utc
                .with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
                .single()
                .unwrap_or_default(),
            producers_started: 0,
        };
        workload.producers = (0..config.producers.max(1))
            .map(|_| workload.start_producer(0))
            .collect();
        workload
    }

    /// Calls per second, all customers together.
    pub fn total_rate(&self) -> f64 {
        self.rate_per_ms * 1000.0
    }

    /// Whether every event has been generated.
    pub fn exhausted(&self) -> bool {
        self.generated >= self.total_events
    }

    fn start_producer(&mut self, now_ms: u64) -> Producer {
        self.producers_started += 1;
        let id = format!(
            "proxy-{:016x}{:016x}",
            self.rng.next_u64(),
            self.rng.next_u64()
        );
        let life = if self.lifetime_ms > 0.0 {
            (self.lifetime_ms * (0.5 + self.rng.next_unit())) as u64
        } else {
            u64::MAX / 2
        };
        Producer {
            shard: shard_of_partition_key(&id, self.shards),
            id,
            next_seq: 1,
            stops_at_ms: now_ms.saturating_add(life),
            pending: Vec::new(),
        }
    }

    fn customer_rank(&mut self) -> usize {
        match self.order {
            CustomerOrder::Zipf => self.zipf.sample(&mut self.rng),
            CustomerOrder::Sequential => {
                let customers = self.customers.len() as u64;
                (self.generated * customers / self.total_events.max(1)) as usize
            }
        }
    }

    fn model(&mut self) -> &'static str {
        let total: f64 = self.model_weights.iter().sum();
        let mut draw = self.rng.next_unit() * total;
        for (index, weight) in self.model_weights.iter().enumerate() {
            if draw < *weight {
                return MODELS[index];
            }
            draw -= weight;
        }
        MODELS[0]
    }

    fn event(&mut self, now_ms: u64, slot: usize) -> UsageEvent {
        let rank = self.customer_rank();
        let model = self.model();
        let (customer_id, key_id) = self.customers[rank.min(self.customers.len() - 1)].clone();
        let failed = self.rng.below(50) == 0;
        let producer = &mut self.producers[slot];
        let instance_seq = producer.next_seq;
        producer.next_seq += 1;
        let proxy_instance = producer.id.clone();
        let request = Uuid::from_u128(
            u128::from(self.rng.next_u64()) << 64 | u128::from(self.rng.next_u64()),
        );
        UsageEvent {
            event_id: Uuid::from_u128(
                u128::from(self.rng.next_u64()) << 64 | u128::from(self.generated),
            ),
            schema_version: schemas::USAGE_EVENT_SCHEMA_VERSION,
            occurred_at: self.start + chrono::Duration::milliseconds(now_ms as i64),
            customer_id: customer_id.into(),
            key_id: key_id.into(),
            request_id: request.into(),
            upstream_request_id: Some(request.into()),
            model_id: model.into(),
            operation: Operation::Invoke,
            // Spread over the APIs without a draw of its own (the draws stay as they were).
            api: Some(ApiSurface::ALL[(request.as_u128() % 4) as usize]),
            status: if failed { 500 } else { 200 },
            outcome: if failed {
                Outcome::UpstreamError
            } else {
                Outcome::Success
            },
            input_tokens: self.rng.between(50, 2_000),
            output_tokens: if failed { 0 } else { self.rng.between(10, 800) },
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            latency_ms: self.rng.between(300, 4_000),
            upstream_latency_ms: Some(self.rng.between(290, 3_990)),
            request_bytes: self.rng.between(200, 4_000),
            response_bytes: self.rng.between(200, 8_000),
            proxy_instance: proxy_instance.into(),
            instance_seq,
        }
    }

    /// The records the proxies append in the tick of `tick_ms` ending at `now_ms`: the
    /// tick's calls spread over the running proxies, one frame per proxy that served any.
    /// Proxies whose life ended are replaced first.
    pub fn tick(&mut self, now_ms: u64, tick_ms: u64) -> anyhow::Result<Vec<Record>> {
        for slot in 0..self.producers.len() {
            if self.producers[slot].stops_at_ms <= now_ms {
                self.producers[slot] = self.start_producer(now_ms);
            }
        }
        let due = self.rate_per_ms * tick_ms as f64 + self.carry;
        let calls = (due.floor() as u64).min(self.total_events - self.generated);
        self.carry = due - due.floor();
        for _ in 0..calls {
            let slot = self.rng.below(self.producers.len() as u64) as usize;
            let event = self.event(now_ms, slot);
            self.producers[slot].pending.push(event);
            self.generated += 1;
        }
        let mut records = Vec::new();
        for producer in &mut self.producers {
            if producer.pending.is_empty() {
                continue;
            }
            let events = std::mem::take(&mut producer.pending);
            let mut frame = FrameBuilder::new();
            for event in &events {
                frame.push(event)?;
            }
            let codec = frame.format().compressed_codec();
            let data = frame.finish(codec)?;
            records.push(Record {
                shard: producer.shard,
                bytes: (data.len() + producer.id.len()) as u64,
                arrival_ms: now_ms,
                data: data.into(),
                events: events.len(),
            });
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::usage_frame::decode_events;

    fn events_of(record: &Record) -> Vec<UsageEvent> {
        let events = decode_events(&record.data).unwrap();
        assert_eq!(events.len(), record.events);
        events
    }

    fn small(order: CustomerOrder) -> SimulationConfig {
        let mut config = SimulationConfig::issue_17();
        config.events = 2_000;
        config.customers = 10;
        config.producers = 4;
        config.hot_customer_rate = 1_000.0;
        config.customer_order = order;
        config
    }

    fn all_records(config: &SimulationConfig) -> Vec<Record> {
        let mut workload = Workload::new(config);
        let mut records = Vec::new();
        let mut now = 0;
        while !workload.exhausted() {
            now += config.frame_ms;
            records.extend(workload.tick(now, config.frame_ms).unwrap());
        }
        records
    }

    #[test]
    fn every_event_is_framed_once_with_its_producers_next_number() {
        let records = all_records(&small(CustomerOrder::Zipf));
        let events: Vec<UsageEvent> = records.iter().flat_map(events_of).collect();
        assert_eq!(events.len(), 2_000);
        let mut last_seq = std::collections::HashMap::new();
        for event in events {
            let previous = last_seq.insert(event.proxy_instance.clone(), event.instance_seq);
            assert_eq!(event.instance_seq, previous.unwrap_or(0) + 1);
        }
        let sizes: Vec<u64> = records.iter().map(|record| record.bytes).collect();
        assert!(sizes.iter().all(|bytes| *bytes > 60), "{sizes:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_records_and_sequential_customers_take_turns() {
        let config = small(CustomerOrder::Sequential);
        let first = all_records(&config);
        let again = all_records(&config);
        assert_eq!(first.len(), again.len());
        assert!(first.iter().zip(&again).all(|(a, b)| a.data == b.data));
        let mut in_call_order: Vec<UsageEvent> = first.iter().flat_map(events_of).collect();
        in_call_order.sort_by_key(|event| event.event_id.as_u128() as u64);
        let customers: Vec<&str> = in_call_order
            .iter()
            .map(|event| event.customer_id.as_str())
            .collect();
        let changes = customers
            .windows(2)
            .filter(|pair| pair[0] != pair[1])
            .count();
        assert_eq!(changes, 9, "ten customers, one after the other");
    }
}
