//! Tollgate's HTTP edge: authenticate the bearer token, admit the call against the
//! customer's limits, forward it to the model runtime, answer, and emit exactly one
//! usage event per call that reached the runtime or was refused for limits.
//!
//! The binary and `tollgate serve` call [`server::run_proxy`]; everything else here is a
//! library so tests and the benchmark can assemble the same proxy in-process.

pub mod admission;
pub mod auth;
pub mod call;
pub mod config;
pub mod emitter;
pub mod error_response;
pub mod key_use;
pub mod native_routes;
pub mod router;
pub mod server;
pub mod settings;
pub mod spec_route;
pub mod state;
pub mod tls;

pub use config::ProxyConfig;
pub use emitter::{EmitterHandle, EventEmitter};
pub use router::build_router;
pub use state::ProxyState;
