//! Usage events to Parquet objects, under Hive-style day partitions.
//!
//! Object keys are deterministic: `usage/dt=YYYY-MM-DD/part-<partition>-<first position>.parquet`,
//! where the position is the first log record of the batch. A retried batch starts at the
//! same position (the checkpoint did not move), so it overwrites the same objects.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use schemas::UsageEvent;
use schemas::parquet_codec::encode_events_parquet;

use crate::Result;

/// The prefix under which usage Parquet lives (the Glue table's location).
pub const USAGE_PREFIX: &str = "usage";

/// The object key of one batch's events for one day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UsageObjectKey {
    pub day: NaiveDate,
    pub partition: String,
    pub first_position: String,
}

fn safe_component(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl fmt::Display for UsageObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{USAGE_PREFIX}/dt={}/part-{}-{}.parquet",
            self.day.format("%Y-%m-%d"),
            safe_component(&self.partition),
            safe_component(&self.first_position)
        )
    }
}

impl UsageObjectKey {
    /// The key as an object-store path.
    pub fn to_path(&self) -> Path {
        Path::from(self.to_string())
    }
}

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
) -> Result<Vec<UsageObjectKey>> {
    let mut written = Vec::new();
    for (day, day_events) in group_by_day(events.iter().copied()) {
        let key = UsageObjectKey {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hive_partitioned_and_deterministic() {
        let key = UsageObjectKey {
            day: NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            partition: "shardId-000000000001".into(),
            first_position: "00000000000000000042".into(),
        };
        assert_eq!(
            key.to_string(),
            "usage/dt=2026-11-29/part-shardId-000000000001-00000000000000000042.parquet"
        );
        let odd = UsageObjectKey {
            partition: "a/b".into(),
            ..key
        };
        assert!(odd.to_string().contains("part-a_b-"));
    }
}
