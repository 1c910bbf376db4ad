//! Usage events to Parquet objects, under Hive-style day partitions.
//!
//! Object keys are [`BatchObjectKey`]s: deterministic per batch and day, so a retried batch
//! overwrites the same objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use schemas::UsageEvent;
use schemas::parquet_codec::encode_events_parquet;

use crate::Result;
use crate::object_keys::BatchObjectKey;

/// Groups events by UTC day, keeping their order. The events are borrowed, not copied.
pub fn group_by_day<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
) -> BTreeMap<NaiveDate, Vec<&'a UsageEvent>> {
    let mut days: BTreeMap<NaiveDate, Vec<&'a UsageEvent>> = BTreeMap::new();
    for event in events {
        days.entry(event.day()).or_default().push(event);
    }
    days
}

/// Writes one Parquet object per day; returns the keys written.
pub async fn write_usage_parquet(
    objects: &Arc<dyn ObjectStore>,
    partition: &str,
    first_position: &str,
    events: &[&UsageEvent],
) -> Result<Vec<BatchObjectKey>> {
    let mut written = Vec::new();
    for (day, day_events) in group_by_day(events.iter().copied()) {
        let key = BatchObjectKey {
            day,
            partition: partition.to_owned(),
            first_position: first_position.to_owned(),
        };
        let bytes = encode_events_parquet(&day_events)?;
        objects.put(&key.to_path(), PutPayload::from(bytes)).await?;
        written.push(key);
    }
    Ok(written)
}
