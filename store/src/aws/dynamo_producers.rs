//! The producers' counted sequence numbers on DynamoDB: one item per producer (proxy
//! process) in the counters table, its ranges as text with a version, merged by optimistic
//! concurrency so two consumers can never drop each other's numbers.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | producer ranges | `PRODUCER#<proxy_instance>` | `SEQS` | ranges (`1-500,503`), version, updated_at_ms, expires_at (TTL) |

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::attributes::{Item, get_number, get_string, key, number, string};
use super::item_table::{Expect, ItemTable};
use crate::dedupe::SeqRanges;
use crate::{Result, StoreError};

/// Rounds of a producer's read-merge-write before the batch is failed (and retried).
const MAX_MERGE_ATTEMPTS: usize = 16;

fn producer_key(producer: &str) -> Item {
    key(format!("PRODUCER#{producer}"), "SEQS")
}

/// A producer's stored ranges and the version they were read at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRanges {
    pub ranges: SeqRanges,
    /// `None` when no item exists yet.
    pub version: Option<i64>,
}

fn decode(item: &Item) -> Result<(String, StoredRanges)> {
    let pk = get_string(item, "pk")?;
    let producer = pk
        .strip_prefix("PRODUCER#")
        .ok_or_else(|| StoreError::Corrupt(format!("producer item key {pk:?}")))?
        .to_owned();
    let ranges = get_string(item, "ranges")?
        .parse::<SeqRanges>()
        .map_err(|error| StoreError::Corrupt(format!("producer {producer}: {error}")))?;
    let version = get_number(item, "version")?;
    Ok((
        producer,
        StoredRanges {
            ranges,
            version: Some(version),
        },
    ))
}

/// The item holding `producer`'s `ranges` at `version`, written at `now`, expiring
/// `retention` later.
pub fn producer_item(
    producer: &str,
    ranges: &SeqRanges,
    version: i64,
    now: DateTime<Utc>,
    retention: Duration,
) -> Item {
    let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 4);
    let mut item = producer_key(producer);
    item.insert("ranges".into(), string(ranges.to_string()));
    item.insert("version".into(), number(version));
    item.insert("updated_at_ms".into(), number(now.timestamp_millis()));
    item.insert(
        "expires_at".into(),
        number(now.timestamp().saturating_add(retention)),
    );
    item
}

/// Reads and writes producer ranges in the counters table.
#[derive(Debug, Clone, Copy)]
pub struct DynamoProducers {
    /// How long a producer's item outlives its last write.
    retention: Duration,
}

impl DynamoProducers {
    pub fn new(retention: Duration) -> Self {
        Self { retention }
    }

    /// The stored ranges of `producers` (strongly consistent); absent producers are missing
    /// from the map.
    pub async fn load(
        &self,
        items: &dyn ItemTable,
        producers: &[&str],
    ) -> Result<HashMap<String, StoredRanges>> {
        let keys = producers
            .iter()
            .map(|producer| producer_key(producer))
            .collect();
        let mut stored = HashMap::with_capacity(producers.len());
        for item in items.batch_get_items(keys).await? {
            let (producer, ranges) = decode(&item)?;
            stored.insert(producer, ranges);
        }
        Ok(stored)
    }

    /// Adds `taken` to a producer's ranges. `known` is what was read before; when another
    /// writer changed the item since, it is read again and the numbers merged into it.
    pub async fn merge(
        &self,
        items: &dyn ItemTable,
        producer: &str,
        known: StoredRanges,
        taken: &SeqRanges,
    ) -> Result<()> {
        let mut current = known;
        for _ in 0..MAX_MERGE_ATTEMPTS {
            let mut merged = current.ranges.clone();
            merged.extend(taken);
            if merged == current.ranges && current.version.is_some() {
                return Ok(());
            }
            let item = producer_item(
                producer,
                &merged,
                current.version.unwrap_or(0) + 1,
                Utc::now(),
                self.retention,
            );
            if items
                .put_item_if(item, Expect::read_at(current.version))
                .await?
            {
                return Ok(());
            }
            current = self
                .load(items, &[producer])
                .await?
                .remove(producer)
                .unwrap_or_default();
        }
        Err(StoreError::Unavailable(format!(
            "the ranges of producer {producer} kept changing under {MAX_MERGE_ATTEMPTS} attempts; the batch is retried"
        )))
    }
}
