//! The Parquet projection's own exactly-once: which events of a batch go into Parquet, and
//! its progress through each log partition, kept next to the files.
//!
//! The projection keeps, per partition, `through` (the last position whose events are in
//! Parquet) and, per producer, the sequence numbers it has written (`store::dedupe`), in one
//! object, `state/parquet/<partition>.json`. Events are taken into a buffer
//! ([`crate::parquet_buffer`]) and written out (flushed) now and then:
//! 1. a batch skips the records at or before `through` (a redelivery of what is written),
//!    and takes the events whose producer numbers are new (a record the proxy sent twice
//!    is written once); `through` and the numbers move in memory only;
//! 2. a flush first stores the state as it was, plus the keys it is about to write
//!    (`pending`); files are named after the buffer's first taken position, one per day;
//! 3. then writes the files;
//! 4. then stores the state: `through` and the numbers as in memory, `pending` cleared.
//!
//! A crash before 4 leaves `through` where it was: the events after it are read again from
//! the log. Files of an unfinished flush are listed in `pending`; loading the state deletes
//! them first, so a shorter or longer re-flush cannot leave a stale file beside it. A crash
//! after 4 leaves nothing to redo. A file whose first position is at or before `through`
//! is never rewritten (compaction relies on it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Utc;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use store::dedupe::{SeqRanges, compare_positions};

use crate::object_keys::parquet_state_key;
use crate::{MeteringError, Result};

/// The projection's progress through one partition, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredState {
    /// The last position whose events are in Parquet.
    through: Option<String>,
    /// Per producer, the sequence numbers written (`1-500,503`).
    producers: BTreeMap<String, String>,
    /// The files a flush is writing (cleared when it has written them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<String>,
    /// Per producer, the last UTC day (days since 1970-01-01) it had events taken.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    last_taken_day: BTreeMap<String, i64>,
    updated_at: Option<chrono::DateTime<Utc>>,
}

/// How long a producer that sends nothing more is remembered, in days: as long as the
/// DynamoDB counters keep a producer's numbers (`--dedupe-retention-days`' default), which
/// outlives the stream's retention plus the longest retry of a record.
pub const PRODUCER_RETENTION_DAYS: i64 = 8;

/// Today as days since 1970-01-01 (UTC).
pub fn epoch_day_today() -> i64 {
    Utc::now().timestamp().div_euclid(86_400)
}

/// The projection's progress through one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParquetState {
    pub through: Option<String>,
    pub producers: HashMap<String, SeqRanges>,
    /// Whether it was read from a stored object (`false`: the partition is new here).
    pub stored: bool,
    /// The keys of a flush that had not finished when this state was stored.
    pub pending: Vec<String>,
    /// Per producer, the last day (since 1970-01-01) it had events taken; producers
    /// silent for longer than [`PRODUCER_RETENTION_DAYS`] are forgotten, so the state
    /// does not grow with every proxy instance that ever ran (Lambda instances come and go).
    pub last_taken_day: HashMap<String, i64>,
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
            pending: stored.pending,
            last_taken_day: stored.last_taken_day.into_iter().collect(),
        })
    }

    /// Reads a partition's state for writing more of it: a new partition starts from its
    /// parents' producer numbers, and the files of a flush that did not finish are deleted
    /// (then the state is stored without them).
    pub async fn load_for_writing(
        objects: &Arc<dyn ObjectStore>,
        partition: &str,
        parents: &[String],
    ) -> Result<Self> {
        let mut state = Self::load(objects, partition).await?;
        if !state.stored {
            for parent in parents {
                state.absorb_producers(&Self::load(objects, parent).await?);
            }
        }
        state.forget_silent_producers(epoch_day_today());
        if !state.pending.is_empty() {
            for key in &state.pending {
                tracing::warn!(partition, key = %key, "deleting a parquet file of a flush that did not finish; its events are written again");
                match objects
                    .delete(&object_store::path::Path::from(key.as_str()))
                    .await
                {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            state.pending.clear();
            state.store(objects, partition).await?;
        }
        Ok(state)
    }

    /// Records that `producer` had events taken on `day`.
    pub fn mark_taken(&mut self, producer: &str, day: i64) {
        match self.last_taken_day.get_mut(producer) {
            Some(last) => *last = (*last).max(day),
            None => {
                self.last_taken_day.insert(producer.to_owned(), day);
            }
        }
    }

    /// Forgets the producers that had nothing taken for longer than
    /// [`PRODUCER_RETENTION_DAYS`] before `today`; a producer without a day yet (a state
    /// written before days were kept) gets `today`.
    pub fn forget_silent_producers(&mut self, today: i64) {
        for producer in self.producers.keys() {
            self.last_taken_day.entry(producer.clone()).or_insert(today);
        }
        let horizon = today - PRODUCER_RETENTION_DAYS;
        self.last_taken_day.retain(|_, day| *day >= horizon);
        let kept = &self.last_taken_day;
        self.producers
            .retain(|producer, _| kept.contains_key(producer));
    }

    /// Adds another state's producer numbers (a parent partition's, for a new child).
    pub fn absorb_producers(&mut self, other: &Self) {
        for (producer, ranges) in &other.producers {
            self.producers
                .entry(producer.clone())
                .or_default()
                .extend(ranges);
        }
    }

    /// Stores the state (with its `pending` keys).
    pub async fn store(&self, objects: &Arc<dyn ObjectStore>, partition: &str) -> Result<()> {
        let stored = StoredState {
            through: self.through.clone(),
            pending: self.pending.clone(),
            last_taken_day: self
                .last_taken_day
                .iter()
                .map(|(producer, day)| (producer.clone(), *day))
                .collect(),
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
    pub fn covers(&self, position: &str) -> bool {
        self.through.as_deref().is_some_and(|through| {
            compare_positions(position, through) != std::cmp::Ordering::Greater
        })
    }
}

#[cfg(test)]
#[path = "parquet_projection_tests.rs"]
mod tests;
