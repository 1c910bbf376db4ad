//! Writes per item per simulated second: the hottest item (DynamoDB serves one partition at
//! most 1,000 write units a second; the target here is 500 writes a second), and how often
//! two shards' consumers write the same counter item within the same second.

use std::collections::HashMap;

/// Who writes, and when: the simulated second and the shard whose consumer writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Writer {
    pub second: u64,
    pub shard: u32,
}

/// One item's writes in its latest second.
#[derive(Debug, Clone, Copy)]
struct OpenSecond {
    second: u64,
    writes: u64,
    /// Bit `n`: shard `n`'s consumer wrote it (shards past 63 share bit 63).
    shards: u64,
}

/// The hottest item-second seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotItem {
    pub writes: u64,
    pub key: String,
    pub second: u64,
}

/// Write load per item and second.
#[derive(Debug, Clone, Default)]
pub struct ItemLoad {
    open: HashMap<String, OpenSecond>,
    pub hottest: HotItem,
    /// Seconds in which a counter item was written, summed over counter items.
    pub counter_item_seconds: u64,
    /// Of those, the ones in which two or more shards' consumers wrote the item.
    pub shared_counter_item_seconds: u64,
    /// Writes made in those shared seconds.
    pub writes_in_shared_seconds: u64,
}

fn is_counter_item(key: &str) -> bool {
    key.starts_with("USAGE#")
}

impl ItemLoad {
    /// Counts one write of `key` by `writer`.
    pub fn record(&mut self, key: &str, writer: Writer) {
        let bit = 1u64 << writer.shard.min(63);
        match self.open.get_mut(key) {
            Some(open) if open.second == writer.second => {
                open.writes += 1;
                open.shards |= bit;
            }
            Some(open) => {
                let closed = std::mem::replace(
                    open,
                    OpenSecond {
                        second: writer.second,
                        writes: 1,
                        shards: bit,
                    },
                );
                self.close(key, closed);
            }
            None => {
                self.open.insert(
                    key.to_owned(),
                    OpenSecond {
                        second: writer.second,
                        writes: 1,
                        shards: bit,
                    },
                );
            }
        }
    }

    fn close(&mut self, key: &str, closed: OpenSecond) {
        if closed.writes > self.hottest.writes {
            self.hottest = HotItem {
                writes: closed.writes,
                key: key.to_owned(),
                second: closed.second,
            };
        }
        if is_counter_item(key) {
            self.counter_item_seconds += 1;
            if closed.shards.count_ones() >= 2 {
                self.shared_counter_item_seconds += 1;
                self.writes_in_shared_seconds += closed.writes;
            }
        }
    }

    /// Closes every open second (at the end of the run).
    pub fn close_all(&mut self) {
        let open = std::mem::take(&mut self.open);
        for (key, closed) in &open {
            self.close(key, *closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(second: u64, shard: u32) -> Writer {
        Writer { second, shard }
    }

    #[test]
    fn the_hottest_item_second_and_shared_seconds_are_counted() {
        let mut load = ItemLoad::default();
        for _ in 0..3 {
            load.record("USAGE#a|DAY", by(1, 0));
        }
        load.record("USAGE#a|DAY", by(1, 2));
        load.record("USAGE#a|DAY", by(2, 2));
        load.record("PRODUCER#p|SEQS", by(1, 0));
        load.record("PRODUCER#p|SEQS", by(1, 1));
        load.close_all();
        assert_eq!(
            load.hottest,
            HotItem {
                writes: 4,
                key: "USAGE#a|DAY".into(),
                second: 1
            }
        );
        // Counter items only: USAGE#a in seconds 1 (shards 0 and 2) and 2 (shard 2).
        assert_eq!(load.counter_item_seconds, 2);
        assert_eq!(load.shared_counter_item_seconds, 1);
        assert_eq!(load.writes_in_shared_seconds, 4);
    }
}
