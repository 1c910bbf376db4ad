//! The simulation's parameters, with the scenario of issue 17 as defaults.

use clap::{Args, ValueEnum};

/// How the consumer writes Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParquetFlush {
    /// A second function on the stream writes Parquet (`infra/template.yaml`'s
    /// `ParquetBatchSize` and `ParquetBatchingWindowSeconds`): one object per shard per
    /// invocation, an invocation at the batch size, the window or Lambda's 6 MB payload.
    Function,
    /// One object per applied run of records (today's consumer).
    PerRun,
    /// Buffered per shard consumer, flushed at `--parquet-flush-mb` or
    /// `--parquet-flush-minutes`, whichever comes first (issue 17, section 3).
    Buffered,
}

/// Who delivers the records to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsumerKind {
    /// The metering Lambda behind its event source mapping: batches of `--batch-records`
    /// or `--batching-window-s`, applied in runs of `--run-records`.
    Lambda,
    /// The polling consumer (`tollgate-metering`, `tollgate serve`): batches of
    /// `--run-records`, a checkpoint put after each (as `bench/cost.sh` runs it).
    Poller,
}

/// How customers take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CustomerOrder {
    /// Each call's customer drawn from the Zipf distribution.
    Zipf,
    /// All of the first customer's calls, then the second's, … in equal shares
    /// (`bench/cost.sh` sends its calls this way).
    Sequential,
}

/// Everything the simulation depends on; the same values give the same figures.
#[derive(Debug, Clone, Args)]
pub struct SimulationConfig {
    /// Usage events to simulate.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Kinesis shards.
    #[arg(long, default_value_t = 8)]
    pub shards: u32,
    /// Proxy processes serving at any moment (each one a producer).
    #[arg(long, default_value_t = 200)]
    pub producers: u32,
    /// Mean life of a proxy process in simulated seconds; when one stops, a new one (a new
    /// producer id, numbering from 1) takes its place. 0: they never stop.
    #[arg(long, default_value_t = 60.0)]
    pub producer_lifetime_s: f64,
    /// Customers.
    #[arg(long, default_value_t = 1_000)]
    pub customers: u32,
    /// Zipf exponent of the customers' shares.
    #[arg(long, default_value_t = 1.0)]
    pub zipf_exponent: f64,
    #[arg(long, value_enum, default_value_t = CustomerOrder::Zipf)]
    pub customer_order: CustomerOrder,
    /// Events per second of the busiest customer; sets the total rate.
    #[arg(long, default_value_t = 10_000.0)]
    pub hot_customer_rate: f64,
    /// Models the customers call, the first most (weights 6:3:1 for three).
    #[arg(long, default_value_t = 3)]
    pub models: u32,
    /// How long a proxy gathers events into one frame (one Kinesis record): its append's
    /// round trip.
    #[arg(long, default_value_t = 50)]
    pub frame_ms: u64,
    #[arg(long, value_enum, default_value_t = ConsumerKind::Lambda)]
    pub consumer: ConsumerKind,
    /// Event source mapping batch size in records (`MeteringBatchSize`).
    #[arg(long, default_value_t = 500)]
    pub batch_records: usize,
    /// Event source mapping batching window (`MeteringBatchingWindowSeconds`).
    #[arg(long, default_value_t = 1.0)]
    pub batching_window_s: f64,
    /// The consumer starts once every event is appended and drains the backlog (as
    /// `bench/cost.sh` runs it), instead of keeping up from the start.
    #[arg(long)]
    pub consumer_starts_after_appends: bool,
    /// Records per apply (`metering::lambda::LAMBDA_RUN_RECORDS`).
    #[arg(long, default_value_t = 100)]
    pub run_records: usize,
    /// Share of runs applied a second time (a Lambda retry after a timeout or a bisect):
    /// exercises the failed conditions and re-reads.
    #[arg(long, default_value_t = 0.0)]
    pub redelivered_share: f64,
    #[arg(long, value_enum, default_value_t = ParquetFlush::Function)]
    pub parquet: ParquetFlush,
    /// The Parquet function's batch size in records (`ParquetBatchSize`).
    #[arg(long, default_value_t = 10_000)]
    pub parquet_batch_records: u64,
    /// The Parquet function's batching window (`ParquetBatchingWindowSeconds`).
    #[arg(long, default_value_t = 300.0)]
    pub parquet_window_s: f64,
    #[arg(long, default_value_t = 128.0)]
    pub parquet_flush_mb: f64,
    #[arg(long, default_value_t = 5.0)]
    pub parquet_flush_minutes: f64,
    /// Parquet bytes per event (BENCHMARKS.md: about 85 with SNAPPY).
    #[arg(long, default_value_t = 85.0)]
    pub parquet_bytes_per_event: f64,
    /// Round trip of one DynamoDB call, for the invocations' duration.
    #[arg(long, default_value_t = 6.0)]
    pub dynamo_ms: f64,
    /// Fixed time of one invocation (decode, Parquet encode, S3 put), for its duration.
    #[arg(long, default_value_t = 40.0)]
    pub invocation_ms: f64,
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
}

impl SimulationConfig {
    /// Issue 17's scenario.
    pub fn issue_17() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: SimulationConfig,
        }
        Defaults::parse_from(["simulate"]).config
    }
}
