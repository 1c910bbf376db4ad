//! The counter cells of a batch on DynamoDB: which cells a batch's new events add to, and
//! each cell's share of them, in log order, so a cell write can add only what follows the
//! position it is stamped with (`dynamo_counters` writes them).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{NaiveDate, Utc};
use schemas::usage_counts::{hour_id, hour_start};
use schemas::{CounterKey, UsageCounts};

use super::attributes::{Item, key, number, string};
use super::item_table::{CellUpdate, StampCondition};
use crate::counters::{HOURLY_RETENTION_DAYS, SourcedEvent};
use crate::dedupe::{compare_positions, sortable_position};

pub(super) fn usage_pk(customer_id: &str) -> String {
    format!("USAGE#{customer_id}")
}

pub(super) fn cell_sk(day: NaiveDate, model_id: &str) -> String {
    format!("DAY#{day}#MODEL#{model_id}")
}

pub(super) fn hour_sk(hour: chrono::DateTime<Utc>) -> String {
    format!("HOUR#{}", hour_id(hour))
}

/// The attribute that stamps a cell with the last position of `partition` it holds.
pub(super) fn stamp_attribute(partition: &str) -> String {
    format!("at#{partition}")
}

/// One cell's share of a batch: the events (in log order, from one partition) it adds.
pub(super) struct CellShare<'a> {
    pub(super) customer_id: &'a str,
    pub(super) sort_key: String,
    /// Whether this is a daily cell: every counted event is in exactly one, so the events
    /// the daily writes add are the events the batch counted.
    pub(super) daily: bool,
    pub(super) attributes: Vec<(&'static str, AttributeValue)>,
    pub(super) partition: &'a str,
    pub(super) events: Vec<&'a SourcedEvent>,
}

impl CellShare<'_> {
    /// The counts of the share's events after `stamp` (all of them when `None`), how many
    /// events those are, and the position of the first and the last of them.
    pub(super) fn after(&self, stamp: Option<&str>) -> Option<(UsageCounts, usize, &str, &str)> {
        let mut counts = UsageCounts::default();
        let mut events = 0;
        let mut span: Option<(&str, &str)> = None;
        for sourced in &self.events {
            let position = &*sourced.position;
            if stamp.is_some_and(|stamp| compare_positions(position, stamp) != Ordering::Greater) {
                continue;
            }
            counts.add(&UsageCounts::of_event(&sourced.event));
            events += 1;
            span = Some(span.map_or((position, position), |(first, _)| (first, position)));
        }
        span.map(|(first, last)| (counts, events, first, last))
    }
}

/// The conditional update that adds `counts` (of the share's events from `first` to
/// `last`) to the share's cell and stamps it with `last`. Without `expect_stamp`, on
/// condition that the stamp is absent or before `first`; with it, on condition that the
/// stamp is still `expected` (`None`: absent).
pub(super) fn plan_cell_update(
    share: &CellShare<'_>,
    counts: &UsageCounts,
    first: &str,
    last: &str,
    expect_stamp: bool,
    expected: Option<&str>,
) -> CellUpdate {
    let mut set = Vec::with_capacity(share.attributes.len() + 1);
    set.push(("customer_id", string(share.customer_id)));
    set.extend(share.attributes.iter().cloned());
    CellUpdate {
        key: cell_key(share),
        add: counts.named().to_vec(),
        set,
        stamp_attribute: stamp_attribute(share.partition),
        stamp: sortable_position(last),
        condition: match (expect_stamp, expected) {
            (false, _) => StampCondition::AbsentOrBefore(sortable_position(first)),
            (true, Some(stamp)) => StampCondition::Equals(sortable_position(stamp)),
            (true, None) => StampCondition::Absent,
        },
    }
}

/// The key of a share's cell.
pub(super) fn cell_key(share: &CellShare<'_>) -> Item {
    key(usage_pk(share.customer_id), share.sort_key.clone())
}

/// The position a cell holds for `partition`, from its stamp (`None`: no stamp).
pub(super) fn stamp_of(item: &Item, partition: &str) -> Option<String> {
    item.get(&stamp_attribute(partition))
        .and_then(|value| value.as_s().ok())
        .and_then(|stamp| stamp.get(3..))
        .map(str::to_owned)
}

/// Groups the batch's new events by the cells they add to, per partition.
pub(super) fn cell_shares<'a>(
    new_events: impl Iterator<Item = &'a SourcedEvent>,
) -> Vec<CellShare<'a>> {
    let mut shares: BTreeMap<(&'a str, &'a str, String), CellShare<'a>> = BTreeMap::new();
    for sourced in new_events {
        let event = &sourced.event;
        let cell = CounterKey::of_event(event);
        let hour = hour_start(event.occurred_at);
        let expires_at = (hour + chrono::Duration::days(HOURLY_RETENTION_DAYS)).timestamp();
        let cells = [
            (
                true,
                cell_sk(cell.day, &cell.model_id),
                vec![
                    ("day", string(cell.day.to_string())),
                    ("model_id", string(&cell.model_id)),
                ],
            ),
            (
                false,
                hour_sk(hour),
                vec![
                    ("hour", string(hour_id(hour))),
                    ("expires_at", number(expires_at)),
                ],
            ),
        ];
        for (daily, sort_key, attributes) in cells {
            shares
                .entry((
                    &*sourced.partition,
                    event.customer_id.as_str(),
                    sort_key.clone(),
                ))
                .or_insert_with(|| CellShare {
                    customer_id: event.customer_id.as_str(),
                    sort_key,
                    daily,
                    attributes,
                    partition: &sourced.partition,
                    events: Vec::new(),
                })
                .events
                .push(sourced);
        }
    }
    shares.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{day, event_on};
    use schemas::Outcome;

    fn sourced(position: u64, customer: &str, model: &str) -> SourcedEvent {
        SourcedEvent {
            partition: "shard-0".into(),
            position: position.to_string().into(),
            event: event_on(customer, day(0), model, Outcome::Success, 2, 3),
        }
    }

    #[test]
    fn a_batch_touches_one_day_cell_per_model_and_one_hour_cell_per_customer() {
        let events = [
            sourced(1, "a", "m1"),
            sourced(2, "a", "m1"),
            sourced(3, "a", "m2"),
            sourced(4, "b", "m1"),
        ];
        let shares = cell_shares(events.iter());
        let keys: Vec<(&str, &str)> = shares
            .iter()
            .map(|share| (share.customer_id, share.sort_key.as_str()))
            .collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
        let a_m1 = shares
            .iter()
            .find(|share| share.customer_id == "a" && share.sort_key.ends_with("MODEL#m1"))
            .unwrap();
        assert_eq!(a_m1.events.len(), 2);
    }

    #[test]
    fn a_share_after_a_stamp_holds_only_the_later_events() {
        let events = [
            sourced(8, "a", "m"),
            sourced(9, "a", "m"),
            sourced(10, "a", "m"),
        ];
        let shares = cell_shares(events.iter());
        let day_cell = shares
            .iter()
            .find(|share| share.sort_key.starts_with("DAY#"))
            .unwrap();
        let (all, events, first, last) = day_cell.after(None).unwrap();
        assert_eq!(
            (all.requests, all.input_tokens, events, first, last),
            (3, 6, 3, "8", "10")
        );
        let (later, events, first, last) = day_cell.after(Some("9")).unwrap();
        assert_eq!((later.requests, events, first, last), (1, 1, "10", "10"));
        assert!(day_cell.after(Some("10")).is_none());
    }

    #[test]
    fn a_cell_update_adds_the_counts_stamps_the_last_position_and_conditions_on_the_first() {
        let events = [sourced(8, "a", "m"), sourced(12, "a", "m")];
        let shares = cell_shares(events.iter());
        let day_cell = shares
            .iter()
            .find(|share| share.sort_key.starts_with("DAY#"))
            .unwrap();
        let (counts, _, first, last) = day_cell.after(None).unwrap();
        let update = plan_cell_update(day_cell, &counts, first, last, false, None);
        assert_eq!(update.key, key("USAGE#a", day_cell.sort_key.clone()));
        assert_eq!(update.stamp_attribute, "at#shard-0");
        assert_eq!(update.stamp, "00212");
        assert_eq!(
            update.condition,
            StampCondition::AbsentOrBefore("0018".into())
        );
        assert!(update.add.contains(&("requests", 2)));
        assert!(update.add.contains(&("input_tokens", 4)));
        let set: Vec<&str> = update.set.iter().map(|(name, _)| *name).collect();
        assert_eq!(set, ["customer_id", "day", "model_id"]);
        let after_stamp = plan_cell_update(day_cell, &counts, first, last, true, Some("8"));
        assert_eq!(after_stamp.condition, StampCondition::Equals("0018".into()));
        let no_stamp = plan_cell_update(day_cell, &counts, first, last, true, None);
        assert_eq!(no_stamp.condition, StampCondition::Absent);
    }

    #[test]
    fn a_stamp_reads_back_as_the_position_it_holds() {
        let mut item = key("USAGE#a", "DAY#x");
        item.insert(stamp_attribute("shard-0"), string(sortable_position("12")));
        assert_eq!(stamp_of(&item, "shard-0").as_deref(), Some("12"));
        assert_eq!(stamp_of(&item, "shard-1"), None);
    }
}
