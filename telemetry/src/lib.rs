//! What every Tollgate binary shares, outside the ports: [`process`] (logging, the shutdown
//! signal, the start-up line and fatal errors) and [`metrics`] (samples in the Prometheus
//! text format, served on their own address).

pub mod metrics;
pub mod process;
