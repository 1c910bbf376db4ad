//! What the metering benches share.
#![allow(dead_code)]

pub mod workload;
