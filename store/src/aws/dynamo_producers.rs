//! The producers' counted sequence numbers on DynamoDB: one item per producer (proxy
//! process) in the counters table, its ranges as text with a version, merged by optimistic
//! concurrency so two consumers can never drop each other's numbers.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | producer ranges | `PRODUCER#<proxy_instance>` | `SEQS` | ranges (`1-500,503`), version, updated_at_ms, expires_at (TTL) |

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use chrono::Utc;

use super::attributes::{Item, get_number, get_string, key, number, string};
use super::conditional::{Expect, put_item_if};
use super::errors::{aws_error, rejected};
use crate::dedupe::SeqRanges;
use crate::{Result, StoreError};

/// Keys in one `BatchGetItem` (DynamoDB's limit).
const MAX_BATCH_GET_KEYS: usize = 100;
/// Rounds of a producer's read-merge-write before the batch is failed (and retried).
const MAX_MERGE_ATTEMPTS: usize = 16;
/// Rounds of re-asking for keys DynamoDB left unprocessed.
const MAX_UNPROCESSED_ROUNDS: usize = 8;

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

/// Reads and writes producer ranges in the counters table.
#[derive(Debug, Clone)]
pub struct DynamoProducers {
    client: Client,
    table: String,
    /// How long a producer's item outlives its last write.
    retention: Duration,
}

impl DynamoProducers {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    /// The stored ranges of `producers` (strongly consistent); absent producers are missing
    /// from the map.
    pub async fn load(&self, producers: &[&str]) -> Result<HashMap<String, StoredRanges>> {
        let mut stored = HashMap::with_capacity(producers.len());
        for chunk in producers.chunks(MAX_BATCH_GET_KEYS) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|producer| producer_key(producer))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|error| rejected(format!("invalid request: {error}")))?,
            );
            for _ in 0..MAX_UNPROCESSED_ROUNDS {
                let Some(keys) = request.take() else { break };
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|error| aws_error("BatchGetItem", &self.table, error))?;
                for item in output
                    .responses()
                    .and_then(|responses| responses.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let (producer, ranges) = decode(item)?;
                    stored.insert(producer, ranges);
                }
                request = output
                    .unprocessed_keys()
                    .and_then(|unprocessed| unprocessed.get(&self.table))
                    .filter(|left| !left.keys().is_empty())
                    .cloned();
                if request.is_some() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            if request.is_some() {
                return Err(StoreError::Unavailable(format!(
                    "DynamoDB left producer ranges unread in {} after {MAX_UNPROCESSED_ROUNDS} rounds; the batch is retried",
                    self.table
                )));
            }
        }
        Ok(stored)
    }

    /// Adds `taken` to a producer's ranges. `known` is what was read before; when another
    /// writer changed the item since, it is read again and the numbers merged into it.
    pub async fn merge(
        &self,
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
            if self
                .put_if_unchanged(producer, &merged, current.version)
                .await?
            {
                return Ok(());
            }
            current = self
                .load(&[producer])
                .await?
                .remove(producer)
                .unwrap_or_default();
        }
        Err(StoreError::Unavailable(format!(
            "the ranges of producer {producer} kept changing under {MAX_MERGE_ATTEMPTS} attempts; the batch is retried"
        )))
    }

    /// Writes the ranges if the item is still at `version`; `false` when it is not.
    async fn put_if_unchanged(
        &self,
        producer: &str,
        ranges: &SeqRanges,
        version: Option<i64>,
    ) -> Result<bool> {
        let now = Utc::now();
        let retention = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX / 4);
        let mut item = producer_key(producer);
        item.insert("ranges".into(), string(ranges.to_string()));
        item.insert("version".into(), number(version.unwrap_or(0) + 1));
        item.insert("updated_at_ms".into(), number(now.timestamp_millis()));
        item.insert(
            "expires_at".into(),
            number(now.timestamp().saturating_add(retention)),
        );
        put_item_if(&self.client, &self.table, item, Expect::read_at(version)).await
    }
}
