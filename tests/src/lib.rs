//! Shared pieces of Tollgate's end-to-end tests: the wire-level fake Bedrock and a harness
//! that drives the real `tollgate` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

pub mod aws_env;
pub mod clients;
pub mod fake_bedrock;
pub mod fault_relay;
pub mod harness;
pub mod lambda_runtime_api;
pub mod tls;
