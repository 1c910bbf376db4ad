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
    let ports = Ports {
        registry: store.clone(),
        plans: store.clone(),
        admin_credentials: store.clone(),
        idempotency: store.clone(),
        counters: store.clone(),
        quotas: store.clone(),
        watermarks: store.clone(),
        alerts: store.clone(),
        event_appender: store.clone(),
        event_reader: store.clone(),
        checkpoints: store.clone(),
        objects: Arc::new(object_store::memory::InMemory::new()),
        archive: None,
        raw_source: store::RawSource::WholeLog {
            location: "the memory event log".into(),
        },
        log_retention: None,
        description: "memory".into(),
    };
    (store, ports)
}
