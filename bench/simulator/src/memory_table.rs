//! The in-memory DynamoDB table the simulated consumers write: it implements the counters'
//! [`ItemTable`] with DynamoDB's semantics (`ADD`, `SET`, the stamp conditions, conditional
//! puts) and counts every item read and written, in request units, per simulated second.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use store::aws::item_table::{CellUpdate, Expect, Item, ItemTable, StampCondition};
use store::aws::meter::{ReadConsistency, dynamo_read_units, dynamo_write_units};
use store::aws::meter_hooks::item_size;

use crate::item_load::{ItemLoad, Writer};

/// Request counts and units of one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUsage {
    pub write_units: f64,
    pub read_units: f64,
    pub update_calls: u64,
    pub put_calls: u64,
    pub get_calls: u64,
    pub batch_get_calls: u64,
    /// Keys asked for in batch gets.
    pub batch_get_keys: u64,
    /// Conditional writes whose condition failed (they are billed all the same).
    pub failed_conditions: u64,
    /// Item writes by the write units each cost: `[1, 2, 3, 4+]`.
    pub writes_by_units: [u64; 4],
    /// The largest item written, its size in bytes and key.
    pub largest_item: (u64, String),
}

impl TableUsage {
    /// What happened between `earlier` and now (`largest_item` is kept as is).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            write_units: self.write_units - earlier.write_units,
            read_units: self.read_units - earlier.read_units,
            update_calls: self.update_calls - earlier.update_calls,
            put_calls: self.put_calls - earlier.put_calls,
            get_calls: self.get_calls - earlier.get_calls,
            batch_get_calls: self.batch_get_calls - earlier.batch_get_calls,
            batch_get_keys: self.batch_get_keys - earlier.batch_get_keys,
            failed_conditions: self.failed_conditions - earlier.failed_conditions,
            writes_by_units: std::array::from_fn(|index| {
                self.writes_by_units[index] - earlier.writes_by_units[index]
            }),
            largest_item: self.largest_item.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct TableState {
    items: HashMap<String, Item>,
    usage: TableUsage,
    load: ItemLoad,
    writer: Writer,
}

/// The table: items by `pk`/`sk`, and what reading and writing them cost.
#[derive(Debug, Default)]
pub struct MemoryTable {
    state: Mutex<TableState>,
}

fn key_text(key: &Item) -> String {
    let part = |name: &str| {
        key.get(name)
            .and_then(|value| value.as_s().ok())
            .map_or("", String::as_str)
            .to_owned()
    };
    format!("{}|{}", part("pk"), part("sk"))
}

/// Adds `amount` to a number attribute (DynamoDB's `ADD` on a number; absent is 0).
fn add_number(item: &mut Item, name: &str, amount: u64) {
    let current: u64 = item
        .get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0);
    item.insert(
        name.to_owned(),
        AttributeValue::N(current.saturating_add(amount).to_string()),
    );
}

fn stamp_allows(item: Option<&Item>, update: &CellUpdate) -> bool {
    let stamp = item
        .and_then(|item| item.get(&update.stamp_attribute))
        .and_then(|value| value.as_s().ok());
    match (&update.condition, stamp) {
        (StampCondition::AbsentOrBefore(_), None) | (StampCondition::Absent, None) => true,
        (StampCondition::AbsentOrBefore(first), Some(stamp)) => stamp.as_str() < first.as_str(),
        (StampCondition::Equals(expected), Some(stamp)) => stamp == expected,
        (StampCondition::Equals(_), None) | (StampCondition::Absent, Some(_)) => false,
    }
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, TableState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Who writes next, and in which simulated second: every write until the next call is
    /// counted against them.
    pub fn set_writer(&self, writer: Writer) {
        self.state().writer = writer;
    }

    /// The units and calls so far.
    pub fn usage(&self) -> TableUsage {
        self.state().usage.clone()
    }

    /// The per-item write load so far (closing the seconds still open).
    pub fn item_load(&self) -> ItemLoad {
        let mut state = self.state();
        state.load.close_all();
        state.load.clone()
    }

    /// A strongly consistent read of one small item of another table (the registry's
    /// customer profile): one call, one unit.
    pub fn read_registry_customer(&self, _customer_id: &str) {
        let mut state = self.state();
        state.usage.get_calls += 1;
        state.bill_strong_read(400);
    }

    /// The polling consumer's checkpoint read before a batch.
    pub fn read_checkpoint(&self, partition: &str) {
        let key = format!("CHECKPOINT#metering|PARTITION#{partition}");
        let mut state = self.state();
        state.usage.get_calls += 1;
        let size = state.items.get(&key).map_or(0, item_size);
        state.bill_strong_read(size);
    }

    /// The polling consumer's checkpoint put after a run (`DynamoCheckpoints`' item).
    pub fn put_checkpoint(&self, partition: &str, position: &str) {
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S("CHECKPOINT#metering".into()));
        item.insert(
            "sk".into(),
            AttributeValue::S(format!("PARTITION#{partition}")),
        );
        item.insert("position".into(), AttributeValue::S(position.to_owned()));
        item.insert(
            "updated_at_ms".into(),
            AttributeValue::N("1764579600000".into()),
        );
        let mut guard = self.state();
        let state = &mut *guard;
        state.usage.put_calls += 1;
        let key = key_text(&item);
        let before = state.items.get(&key).map_or(0, item_size);
        state.bill_write(&key, before, item_size(&item));
        state.items.insert(key, item);
    }

    /// Requests counted in every daily cell: each event once, if the apply is right.
    pub fn daily_requests(&self) -> u64 {
        self.state()
            .items
            .iter()
            .filter(|(key, _)| key.starts_with("USAGE#") && key.contains("|DAY#"))
            .filter_map(|(_, item)| item.get("requests"))
            .filter_map(|value| value.as_n().ok())
            .filter_map(|digits| digits.parse::<u64>().ok())
            .sum()
    }

    /// The item with `key` and its size, for tests and reports.
    pub fn item(&self, pk: &str, sk: &str) -> Option<(Item, u64)> {
        self.state()
            .items
            .get(&format!("{pk}|{sk}"))
            .map(|item| (item.clone(), item_size(item)))
    }
}

impl TableState {
    /// Bills one item write: DynamoDB charges the larger of the item before and after, per
    /// started KiB, whether or not the condition held.
    fn bill_write(&mut self, key: &str, before: u64, after: u64) {
        let units = dynamo_write_units(before.max(after), false);
        self.usage.write_units += units as f64;
        self.usage.writes_by_units[(units.clamp(1, 4) - 1) as usize] += 1;
        if after > self.usage.largest_item.0 {
            self.usage.largest_item = (after, key.to_owned());
        }
        let writer = self.writer;
        self.load.record(key, writer);
    }

    fn bill_strong_read(&mut self, size: u64) {
        self.usage.read_units += dynamo_read_units(size, ReadConsistency::Strong);
    }
}

#[async_trait]
impl ItemTable for MemoryTable {
    async fn get_item(&self, key: Item) -> store::Result<Option<Item>> {
        let mut state = self.state();
        state.usage.get_calls += 1;
        let found = state.items.get(&key_text(&key)).cloned();
        state.bill_strong_read(found.as_ref().map_or(0, item_size));
        Ok(found)
    }

    async fn batch_get_items(&self, keys: Vec<Item>) -> store::Result<Vec<Item>> {
        let mut state = self.state();
        state.usage.batch_get_calls +=
            keys.len()
                .div_ceil(store::aws::item_table::MAX_BATCH_GET_KEYS) as u64;
        state.usage.batch_get_keys += keys.len() as u64;
        let mut found = Vec::with_capacity(keys.len());
        for key in &keys {
            let item = state.items.get(&key_text(key)).cloned();
            // Each key is billed on its own, rounded up to 4 KiB (at least one unit).
            state.bill_strong_read(item.as_ref().map_or(0, item_size));
            found.extend(item);
        }
        Ok(found)
    }

    async fn put_item_if(&self, item: Item, expect: Expect) -> store::Result<bool> {
        let mut guard = self.state();
        let state = &mut *guard;
        state.usage.put_calls += 1;
        let key = key_text(&item);
        let stored = state.items.get(&key);
        let before = stored.map_or(0, item_size);
        let holds = match (expect, stored) {
            (Expect::Absent, None) => true,
            (Expect::Version(version), Some(stored)) => {
                stored.get("version").and_then(|value| value.as_n().ok())
                    == Some(&version.to_string())
            }
            _ => false,
        };
        let after = if holds { item_size(&item) } else { before };
        state.bill_write(&key, before, after);
        if holds {
            state.items.insert(key, item);
        } else {
            state.usage.failed_conditions += 1;
        }
        Ok(holds)
    }

    async fn update_cell(&self, update: &CellUpdate) -> store::Result<bool> {
        let mut guard = self.state();
        let state = &mut *guard;
        state.usage.update_calls += 1;
        let key = key_text(&update.key);
        let stored = state.items.get_mut(&key);
        let before = stored.as_deref().map_or(0, item_size);
        if !stamp_allows(stored.as_deref(), update) {
            state.usage.failed_conditions += 1;
            state.bill_write(&key, before, before);
            return Ok(false);
        }
        let after = match stored {
            Some(item) => apply_update(item, update),
            None => {
                let mut item = update.key.clone();
                let after = apply_update(&mut item, update);
                state.items.insert(key.clone(), item);
                after
            }
        };
        state.bill_write(&key, before, after);
        Ok(true)
    }
}

/// `ADD`s the counts, `SET`s the attributes and the stamp; returns the item's new size.
fn apply_update(item: &mut Item, update: &CellUpdate) -> u64 {
    for (name, amount) in &update.add {
        add_number(item, name, *amount);
    }
    for (name, value) in &update.set {
        item.insert((*name).to_owned(), value.clone());
    }
    item.insert(
        update.stamp_attribute.clone(),
        AttributeValue::S(update.stamp.clone()),
    );
    item_size(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn key(pk: &str, sk: &str) -> Item {
        Item::from([
            ("pk".to_owned(), AttributeValue::S(pk.into())),
            ("sk".to_owned(), AttributeValue::S(sk.into())),
        ])
    }

    fn update(stamp: &str, condition: StampCondition, padding: usize) -> CellUpdate {
        CellUpdate {
            key: key("USAGE#c", "DAY#d"),
            add: vec![("requests", 2)],
            set: vec![("model_id", AttributeValue::S("m".repeat(padding)))],
            stamp_attribute: "at#shard".into(),
            stamp: stamp.into(),
            condition,
        }
    }

    #[test]
    fn a_write_costs_a_unit_per_started_kib_of_the_larger_of_before_and_after() {
        let table = MemoryTable::new();
        let first = update("0015", StampCondition::AbsentOrBefore("0011".into()), 900);
        assert!(block_on(table.update_cell(&first)).unwrap());
        let (_, size) = table.item("USAGE#c", "DAY#d").unwrap();
        // pk 2+7, sk 2+5, requests 8+2, model_id 8+900, at#shard 8+4.
        assert_eq!(size, 946);
        assert_eq!(table.usage().write_units, 1.0);
        // The same cell grown past 1 KiB costs 2 units.
        let second = update("0019", StampCondition::AbsentOrBefore("0016".into()), 1_000);
        assert!(block_on(table.update_cell(&second)).unwrap());
        assert_eq!(table.usage().write_units, 3.0);
        assert_eq!(table.usage().writes_by_units, [1, 1, 0, 0]);
        let (item, _) = table.item("USAGE#c", "DAY#d").unwrap();
        assert_eq!(item.get("requests"), Some(&AttributeValue::N("4".into())));
    }

    #[test]
    fn a_failed_condition_changes_nothing_but_is_billed() {
        let table = MemoryTable::new();
        let first = update("0015", StampCondition::AbsentOrBefore("0011".into()), 10);
        assert!(block_on(table.update_cell(&first)).unwrap());
        // The stamp is 0015: a write of events from 0013 on must not add them again.
        let replay = update("0015", StampCondition::AbsentOrBefore("0013".into()), 10);
        assert!(!block_on(table.update_cell(&replay)).unwrap());
        let stale = update("0019", StampCondition::Equals("0014".into()), 10);
        assert!(!block_on(table.update_cell(&stale)).unwrap());
        let usage = table.usage();
        assert_eq!((usage.failed_conditions, usage.write_units), (2, 3.0));
        let (item, _) = table.item("USAGE#c", "DAY#d").unwrap();
        assert_eq!(item.get("requests"), Some(&AttributeValue::N("2".into())));
    }

    #[test]
    fn strong_reads_cost_a_unit_per_started_4_kib_per_key_found_or_not() {
        let table = MemoryTable::new();
        let mut item = key("PRODUCER#p", "SEQS");
        item.insert("ranges".into(), AttributeValue::S("1-9".repeat(1_500)));
        item.insert("version".into(), AttributeValue::N("1".into()));
        assert!(block_on(table.put_item_if(item, Expect::Absent)).unwrap());
        let found = block_on(
            table.batch_get_items(vec![key("PRODUCER#p", "SEQS"), key("PRODUCER#q", "SEQS")]),
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        // 4,500 bytes and more: 2 units; the absent key: 1.
        assert_eq!(table.usage().read_units, 3.0);
        assert!(
            block_on(table.get_item(key("PRODUCER#q", "SEQS")))
                .unwrap()
                .is_none()
        );
        assert_eq!(table.usage().read_units, 4.0);
        // A put that expects the wrong version fails and is billed at the stored size.
        let mut stale = key("PRODUCER#p", "SEQS");
        stale.insert("version".into(), AttributeValue::N("1".into()));
        assert!(!block_on(table.put_item_if(stale, Expect::Version(7))).unwrap());
        assert_eq!(table.usage().write_units, 5.0 + 5.0);
    }
}
