//! What the metering benches share.
#![allow(dead_code)]

pub mod clock;
pub mod workload;
