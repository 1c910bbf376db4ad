//! Helpers for the control layer's unit tests over the memory backend.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use store::backend::Ports;
use store::memory::MemoryStore;

use crate::Actor;

/// The actor tests act as.
pub fn operator() -> Actor {
    Actor::operator("alice")
}

/// Every port on one memory store, with in-memory objects.
pub fn memory_ports() -> (Arc<MemoryStore>, Ports) {
    let store = Arc::new(MemoryStore::new());
    let ports = Ports::in_memory(&store);
    (store, ports)
}
