//! Tollgate's HTTP edge: authenticate the bearer token, admit the call against the
//! customer's limits, forward it to the model runtime, answer, and emit exactly one
//! usage event per call that reached the runtime or was refused for limits.
//!
//! The binaries call [`standalone::run_server`] and [`lambda::run_lambda`], and
//! `tollgate serve` calls [`server::start_proxy_with`]; each assembles the proxy's ports
//! with [`server::ProxyPorts::from_backend`]. Everything else here is a library so tests
//! and the benchmark can assemble the same proxy in-process. The call path is [`call`],
//! one stage per module.

pub mod accept;
pub mod admission;
pub mod auth;
pub mod call;
pub mod client_apis;
pub mod config;
pub mod emitter;
pub mod error_response;
pub mod header_cap;
pub mod hot_routes;
pub mod key_use;
pub mod lambda;
pub mod native_routes;
pub mod router;
pub mod self_service;
pub mod server;
pub mod settings;
pub mod spec_route;
pub mod standalone;
pub mod state;
pub mod tls;
pub mod translate;
pub mod upstream;

pub use config::ProxyConfig;
pub use emitter::{EmitterHandle, EventEmitter};
pub use router::build_router;
pub use state::ProxyState;
