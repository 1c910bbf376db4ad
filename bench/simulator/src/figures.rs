//! The simulation's figures, and the report it prints: units and calls per million events,
//! dollars at on-demand list prices (the same prices as `bench/cost.sh`), the hottest item,
//! shards meeting on one item, transactions, Parquet objects per hour and the targets.

use store::aws::meter::kinesis_on_demand_kib;

use crate::config::{ConsumerKind, ParquetFlush, SimulationConfig};
use crate::consumer::ConsumerTotals;
use crate::item_load::ItemLoad;
use crate::memory_table::TableUsage;
use crate::workload::Record;

/// us-east-1 list prices in USD, as in `bench/cost.sh` (each with its page there).
pub mod prices {
    pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
    pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
    pub const KINESIS_ON_DEMAND_IN_GB: f64 = 0.08;
    pub const KINESIS_ON_DEMAND_OUT_GB: f64 = 0.04;
    pub const S3_PUT: f64 = 0.005 / 1000.0;
    pub const S3_GET: f64 = 0.0004 / 1000.0;
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// `MeteringMemoryMB` in `infra/template.yaml`.
    pub const LAMBDA_MEMORY_GB: f64 = 0.5;
}

/// Targets of issue 17.
pub const TARGET_DOLLARS_PER_MILLION: f64 = 0.10;
pub const TARGET_ITEM_WRITES_PER_SECOND: u64 = 500;
pub const TARGET_ITEMS_PER_TRANSACTION: u64 = 100;
/// A Kinesis shard takes 1,000 records and 1 MiB a second.
pub const SHARD_RECORDS_PER_SECOND: u64 = 1_000;

/// What the proxies appended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KinesisTotals {
    pub records: u64,
    pub bytes: u64,
    pub ingested_kib: u64,
    /// Per shard: the second being counted, its records and bytes.
    open: Vec<(u64, u64, u64)>,
    pub max_shard_records_per_second: u64,
    pub max_shard_bytes_per_second: u64,
}

impl KinesisTotals {
    pub fn add(&mut self, record: &Record, now_ms: u64) {
        self.records += 1;
        self.bytes += record.bytes;
        self.ingested_kib += kinesis_on_demand_kib(record.bytes);
        let shard = record.shard as usize;
        if self.open.len() <= shard {
            self.open.resize(shard + 1, (0, 0, 0));
        }
        let second = now_ms.saturating_sub(1) / 1000;
        let open = &mut self.open[shard];
        if open.0 != second {
            *open = (second, 0, 0);
        }
        open.1 += 1;
        open.2 += record.bytes;
        self.max_shard_records_per_second = self.max_shard_records_per_second.max(open.1);
        self.max_shard_bytes_per_second = self.max_shard_bytes_per_second.max(open.2);
    }
}

/// Everything one simulation measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub events: u64,
    /// Requests summed over every daily cell: equal to `events` when each was counted once.
    pub daily_requests: u64,
    pub total_rate: f64,
    pub simulated_seconds: f64,
    pub producers_started: u64,
    pub kinesis: KinesisTotals,
    pub consumers: ConsumerTotals,
    pub table: TableUsage,
    pub load: ItemLoad,
    pub parquet_objects: u64,
    pub parquet_bytes: f64,
    /// Buffered Parquet: objects an hour once the buffers' size or age sets the pace
    /// (a short run flushes mostly at its end).
    pub parquet_steady_per_hour: f64,
    pub config: SimulationConfig,
}

/// Dollars per million events, by line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dollars {
    pub dynamodb: f64,
    pub kinesis_in: f64,
    pub kinesis_out: f64,
    pub s3: f64,
    pub lambda: f64,
}

impl Dollars {
    pub fn total(&self) -> f64 {
        self.dynamodb + self.kinesis_in + self.kinesis_out + self.s3 + self.lambda
    }
}

impl Figures {
    /// `amount` per million events.
    pub fn per_million(&self, amount: f64) -> f64 {
        amount * 1e6 / self.events.max(1) as f64
    }

    /// S3 requests: a Parquet object and its progress object per write, and one progress
    /// read (what `bench/cost.sh` measures per run today).
    pub fn s3_requests(&self) -> (u64, u64) {
        (2 * self.parquet_objects, self.parquet_objects)
    }

    pub fn dollars(&self) -> Dollars {
        let (puts, gets) = self.s3_requests();
        let lambda = match self.config.consumer {
            ConsumerKind::Lambda => {
                self.consumers.busy_ms / 1000.0
                    * prices::LAMBDA_MEMORY_GB
                    * prices::LAMBDA_GB_SECOND
                    + self.consumers.invocations as f64 * prices::LAMBDA_REQUEST
            }
            ConsumerKind::Poller => 0.0,
        };
        Dollars {
            dynamodb: self.per_million(
                self.table.write_units * prices::DYNAMODB_WRU
                    + self.table.read_units * prices::DYNAMODB_RRU,
            ),
            kinesis_in: self.per_million(
                self.kinesis.ingested_kib as f64 * 1024.0 / 1e9 * prices::KINESIS_ON_DEMAND_IN_GB,
            ),
            kinesis_out: self.per_million(
                self.kinesis.bytes as f64 * self.stream_readers() / 1e9
                    * prices::KINESIS_ON_DEMAND_OUT_GB,
            ),
            s3: self.per_million(puts as f64 * prices::S3_PUT + gets as f64 * prices::S3_GET),
            lambda: self.per_million(lambda),
        }
    }

    /// Functions reading the stream: the counting one, and the Parquet one when it exists.
    pub fn stream_readers(&self) -> f64 {
        if self.config.parquet == ParquetFlush::Function {
            2.0
        } else {
            1.0
        }
    }

    /// Parquet objects per hour: as counted for one per run; for buffered Parquet, at the
    /// pace its size or age sets (a run shorter than the age flushes mostly at its end).
    pub fn parquet_objects_per_hour(&self) -> f64 {
        match self.config.parquet {
            ParquetFlush::PerRun => {
                self.parquet_objects as f64 * 3600.0 / self.simulated_seconds.max(1e-9)
            }
            ParquetFlush::Buffered | ParquetFlush::Function => self.parquet_steady_per_hour,
        }
    }

    /// The printed report (Markdown).
    pub fn report(&self) -> String {
        let mut out = String::new();
        self.write_scenario(&mut out);
        self.write_dynamodb(&mut out);
        self.write_load(&mut out);
        self.write_cost(&mut out);
        out
    }
}

mod report;
