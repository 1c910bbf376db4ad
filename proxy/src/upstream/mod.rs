//! The model provider the proxy forwards calls to: the [`ModelRuntime`] port, and its two
//! implementations, Amazon Bedrock (SigV4-signed, byte for byte) and a deterministic
//! simulation for trying Tollgate without AWS.
//!
//! The port lives here, not in `store`: only the proxy forwards calls, and `store` holds
//! the storage ports and their backends.

mod answer;
pub mod bedrock;
mod connecting;
mod http2;
pub mod https;
pub mod model_runtime;
mod request_form;
pub mod sigv4;
pub mod simulated;
#[cfg(test)]
mod transport_tests;

pub use bedrock::{BedrockRuntime, BedrockSettings};
pub use model_runtime::{
    ModelInvocation, ModelRuntime, RuntimeError, UpstreamBody, UpstreamResponse, header_map,
    json_headers,
};
pub use simulated::SimulatedRuntime;
