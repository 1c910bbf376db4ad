//! The Parquet projection's own exactly-once: which events of a batch go into Parquet, and
//! its progress through each log partition, kept next to the files.
//!
//! The projection keeps, per partition, `through` (the last position whose events are in
//! Parquet) and, per producer, the sequence numbers it has written (`store::dedupe`), in one
//! object, `state/parquet/<partition>.json`. A batch:
//! 1. skips the records at or before `through` (a redelivery of what is written);
//! 2. takes the events whose producer numbers are new (a record the proxy sent twice is
//!    written once);
//! 3. writes them under keys named after the first taken position, one file per day; a
//!    retry before step 4 takes the same events from the same position, so it rewrites the
//!    same objects;
//! 4. stores the state: `through` moves to the batch's last position, the numbers are added.
//!
//! A crash between 3 and 4 leaves files the state does not know; the retry overwrites them.
//! A crash after 4 leaves nothing to redo: the retry skips the batch. Files are never
//! rewritten once the state has moved past their first position.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Utc;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use schemas::UsageEvent;
use serde::{Deserialize, Serialize};
use store::SourcedEvent;
use store::dedupe::{SeqRanges, classify_batch, compare_positions};

use crate::object_keys::{BatchObjectKey, parquet_state_key};
use crate::parquet_sink::write_usage_parquet;
use crate::{MeteringError, Result};

/// The projection's progress through one partition, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredState {
    /// The last position whose events are in Parquet.
    through: Option<String>,
    /// Per producer, the sequence numbers written (`1-500,503`).
    producers: BTreeMap<String, String>,
    updated_at: Option<chrono::DateTime<Utc>>,
}

/// The projection's progress through one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParquetState {
    pub through: Option<String>,
    pub producers: HashMap<String, SeqRanges>,
    /// Whether it was read from a stored object (`false`: the partition is new here).
    pub stored: bool,
}

impl ParquetState {
    /// Reads a partition's state; a partition never written reads as empty.
    pub async fn load(objects: &Arc<dyn ObjectStore>, partition: &str) -> Result<Self> {
        let key = parquet_state_key(partition);
        let bytes = match objects.get(&key).await {
            Ok(found) => found.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(Self::default()),
            Err(error) => return Err(error.into()),
        };
        let stored: StoredState = serde_json::from_slice(&bytes).map_err(|error| {
            MeteringError::Invalid(format!(
                "the parquet progress {key} is damaged ({error}); restore it from a backup, or delete it and run `tollgate replay` to rebuild parquet"
            ))
        })?;
        let mut producers = HashMap::with_capacity(stored.producers.len());
        for (producer, text) in stored.producers {
            let ranges = text.parse::<SeqRanges>().map_err(|error| {
                MeteringError::Invalid(format!("the parquet progress {key}: {error}"))
            })?;
            producers.insert(producer, ranges);
        }
        Ok(Self {
            through: stored.through,
            producers,
            stored: true,
        })
    }

    /// Adds another state's producer numbers (a parent partition's, for a new child).
    fn absorb_producers(&mut self, other: &Self) {
        for (producer, ranges) in &other.producers {
            self.producers
                .entry(producer.clone())
                .or_default()
                .extend(ranges);
        }
    }

    async fn store(&self, objects: &Arc<dyn ObjectStore>, partition: &str) -> Result<()> {
        let stored = StoredState {
            through: self.through.clone(),
            producers: self
                .producers
                .iter()
                .map(|(producer, ranges)| (producer.clone(), ranges.to_string()))
                .collect(),
            updated_at: Some(Utc::now()),
        };
        let bytes = serde_json::to_vec(&stored)
            .map_err(|error| MeteringError::Invalid(format!("parquet progress: {error}")))?;
        objects
            .put(&parquet_state_key(partition), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Whether `position` is at or before `through`.
    fn covers(&self, position: &str) -> bool {
        self.through.as_deref().is_some_and(|through| {
            compare_positions(position, through) != std::cmp::Ordering::Greater
        })
    }
}

/// What one batch did to the Parquet projection.
#[derive(Debug, Default)]
pub struct ProjectedBatch<'a> {
    /// The events written, in log order.
    pub written: Vec<&'a UsageEvent>,
    pub keys: Vec<BatchObjectKey>,
}

/// Writes a batch of one partition's events (in log order) to Parquet, exactly once per
/// producer number, and moves the partition's progress to the batch's last position.
///
/// A partition met for the first time starts from the producer numbers of `parents` (the
/// partitions a reshard split or merged it from, read to their end before it): a record
/// sent again after a reshard lands in the child while its original is in a parent.
pub async fn project_batch<'a>(
    objects: &Arc<dyn ObjectStore>,
    partition: &str,
    parents: &[String],
    last_position: &str,
    events: &'a [SourcedEvent],
) -> Result<ProjectedBatch<'a>> {
    let mut state = ParquetState::load(objects, partition).await?;
    if !state.stored {
        for parent in parents {
            state.absorb_producers(&ParquetState::load(objects, parent).await?);
        }
    }
    if state.covers(last_position) {
        return Ok(ProjectedBatch::default());
    }
    let fresh_from = events
        .iter()
        .position(|sourced| !state.covers(&sourced.position))
        .unwrap_or(events.len());
    let fresh = &events[fresh_from..];
    let classified = classify_batch(fresh, &state.producers);
    let taken: Vec<&SourcedEvent> = classified.new_events().collect();
    let written: Vec<&UsageEvent> = taken.iter().map(|sourced| &sourced.event).collect();
    let keys = match taken.first() {
        Some(first) => write_usage_parquet(objects, partition, &first.position, &written).await?,
        None => Vec::new(),
    };
    for (producer, numbers) in classified.taken() {
        state
            .producers
            .entry(producer.to_owned())
            .or_default()
            .extend(&numbers);
    }
    state.through = Some(last_position.to_owned());
    state.store(objects, partition).await?;
    Ok(ProjectedBatch { written, keys })
}

#[cfg(test)]
#[path = "parquet_projection_tests.rs"]
mod tests;
