//! The `Watermarks` port: per proxy instance, which `instance_seq` numbers the consumer has
//! applied (see `schemas::watermark`), for completeness and gap reports.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemas::watermark::InstanceProgress;

use crate::Result;

/// One applied event's place in its proxy instance's sequence. A record's events share
/// their instance's name (one producer writes a frame), so it is a shared string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqObservation {
    pub proxy_instance: Arc<str>,
    pub instance_seq: u64,
    pub occurred_at: DateTime<Utc>,
}

/// Per-instance progress of the consumer.
///
/// Contracts every backend keeps:
/// - `observe` is idempotent and commutative: observing the same numbers again, or in
///   another order, or from concurrent consumers, gives the same progress.
/// - `progress` returns every instance ever observed, ordered by instance.
#[async_trait]
pub trait Watermarks: Send + Sync {
    /// Records applied events.
    async fn observe(&self, observations: &[SeqObservation]) -> Result<()>;

    /// Every instance's progress.
    async fn progress(&self) -> Result<Vec<InstanceProgress>>;
}

/// Folds observations into progress records, one per instance (pure; shared by backends).
pub fn fold_observations<'a>(
    mut load: impl FnMut(&str) -> InstanceProgress,
    observations: &'a [SeqObservation],
) -> Vec<InstanceProgress> {
    let mut touched: std::collections::BTreeMap<&'a str, InstanceProgress> =
        std::collections::BTreeMap::new();
    for observation in observations {
        let progress = touched
            .entry(&*observation.proxy_instance)
            .or_insert_with(|| load(&observation.proxy_instance));
        progress.observe(observation.instance_seq, observation.occurred_at);
    }
    touched.into_values().collect()
}
