//! `Watermarks` on DynamoDB: one item per proxy instance in the counters table, its
//! progress as JSON with a version, updated by optimistic concurrency (a conditional put on
//! the version read), so concurrent shard consumers never lose an observation.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | instance progress | `PROGRESS#<proxy_instance>` | `PROGRESS` | progress (JSON), version, entity=`progress` |

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use schemas::watermark::InstanceProgress;

use super::attributes::{Item, get_number, get_string, key, number, scan_entity, string};
use super::item_table::{DynamoItemTable, Expect, ItemTable};
use crate::watermarks::{SeqObservation, Watermarks, fold_observations};
use crate::{Result, StoreError};

/// Attempts of one instance's read-modify-write before giving up (the batch is retried).
const MAX_ATTEMPTS: usize = 16;

/// Per-instance progress in the counters table.
#[derive(Debug, Clone)]
pub struct DynamoWatermarks {
    client: Client,
    table: String,
    items: DynamoItemTable,
}

fn progress_key(instance: &str) -> Item {
    key(format!("PROGRESS#{instance}"), "PROGRESS")
}

fn decode(item: &Item) -> Result<(InstanceProgress, i64)> {
    let progress = serde_json::from_str(&get_string(item, "progress")?)
        .map_err(|error| StoreError::Corrupt(format!("instance progress: {error}")))?;
    Ok((progress, get_number(item, "version")?))
}

impl DynamoWatermarks {
    /// Progress items in `table` (the counters table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            items: DynamoItemTable::new(client.clone(), table.clone()),
            client,
            table,
        }
    }
}

async fn load(items: &dyn ItemTable, instance: &str) -> Result<(InstanceProgress, Option<i64>)> {
    match items.get_item(progress_key(instance)).await? {
        Some(item) => {
            let (progress, version) = decode(&item)?;
            Ok((progress, Some(version)))
        }
        None => Ok((InstanceProgress::new(instance), None)),
    }
}

async fn observe_instance(
    items: &dyn ItemTable,
    instance: &str,
    observations: &[SeqObservation],
) -> Result<()> {
    for _ in 0..MAX_ATTEMPTS {
        let (progress, version) = load(items, instance).await?;
        let mut updated = fold_observations(|_| progress.clone(), observations).into_iter();
        let Some(updated) = updated.next() else {
            return Ok(());
        };
        if updated == progress {
            return Ok(());
        }
        let mut item = progress_key(instance);
        item.insert("entity".into(), string("progress"));
        item.insert(
            "progress".into(),
            string(
                serde_json::to_string(&updated)
                    .map_err(|error| StoreError::Corrupt(error.to_string()))?,
            ),
        );
        item.insert("version".into(), number(version.unwrap_or(0) + 1));
        if items.put_item_if(item, Expect::read_at(version)).await? {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(format!(
        "progress of proxy instance {instance} kept changing under {MAX_ATTEMPTS} attempts; retrying the batch"
    )))
}

/// Records each observation in its proxy instance's progress item in `items`: one read and
/// one conditional put per instance.
pub async fn observe_on(items: &dyn ItemTable, observations: &[SeqObservation]) -> Result<()> {
    let mut by_instance: std::collections::BTreeMap<&str, Vec<SeqObservation>> =
        std::collections::BTreeMap::new();
    for observation in observations {
        by_instance
            .entry(&*observation.proxy_instance)
            .or_default()
            .push(observation.clone());
    }
    for (instance, observations) in by_instance {
        observe_instance(items, instance, &observations).await?;
    }
    Ok(())
}

#[async_trait]
impl Watermarks for DynamoWatermarks {
    async fn observe(&self, observations: &[SeqObservation]) -> Result<()> {
        observe_on(&self.items, observations).await
    }

    async fn progress(&self) -> Result<Vec<InstanceProgress>> {
        let mut progress = scan_entity(&self.client, &self.table, "progress")
            .await?
            .iter()
            .map(|item| decode(item).map(|(progress, _)| progress))
            .collect::<Result<Vec<_>>>()?;
        progress.sort_by(|a, b| a.proxy_instance.cmp(&b.proxy_instance));
        Ok(progress)
    }
}
