//! A deterministic scale simulation of the metering path (issue 17, section 7): 8 shards,
//! hundreds of proxies coming and going, a thousand Zipf-distributed customers and ten
//! million events, on one machine. The consumers run the real DynamoDB counters apply
//! (`store::aws::counter_apply`) and watermarks over an in-memory table that bills every
//! item read and written; the report is in units, dollars and writes per item per second.

pub mod config;
pub mod consumer;
pub mod figures;
pub mod item_load;
pub mod kinesis;
pub mod memory_table;
pub mod parquet_policy;
pub mod rng;
pub mod simulation;
pub mod workload;
pub mod zipf;

pub use config::SimulationConfig;
pub use simulation::simulate;
