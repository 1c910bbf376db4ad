//! What every request handler shares.

use std::sync::Arc;

use store::{Counters, Registry};

use crate::upstream::ModelRuntime;

use crate::admission::Limiter;
use crate::auth::AuthCache;
use crate::config::ProxyConfig;
use crate::emitter::EmitterHandle;
use crate::key_use::KeyUseRecorder;

/// The proxy's shared state: one pointer, so the clone each request's extractors and
/// layers make is one reference count (it was one per field, nine on every clone and drop).
#[derive(Clone)]
pub struct ProxyState(Arc<SharedState>);

impl ProxyState {
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for ProxyState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`ProxyState`] points to.
pub struct SharedState {
    pub registry: Arc<dyn Registry>,
    pub auth: Arc<AuthCache>,
    pub runtime: Arc<dyn ModelRuntime>,
    /// The counter projection, read by `GET /usage`.
    pub counters: Arc<dyn Counters>,
    pub limiter: Arc<Limiter>,
    pub key_uses: Arc<KeyUseRecorder>,
    pub emitter: EmitterHandle,
    pub config: Arc<ProxyConfig>,
}

impl std::fmt::Debug for ProxyState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ProxyState")
            .field("config", &self.config)
            .finish()
    }
}
