//! Kinesis as far as the simulation needs it: which shard a partition key lands on (the MD5
//! of the key, in shards that split the 128-bit hash key range evenly, as a stream created
//! with that many shards does), the shards' ids and sequence numbers, and what a record is
//! billed on demand.

use md5::{Digest, Md5};

/// The shard of `partition_key` among `shards` even shards: its MD5 as a big-endian
/// 128-bit number, over the width of one shard's hash key range.
pub fn shard_of_partition_key(partition_key: &str, shards: u32) -> u32 {
    let digest = Md5::digest(partition_key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest);
    let hash = u128::from_be_bytes(bytes);
    if shards <= 1 {
        return 0;
    }
    let width = u128::MAX / u128::from(shards) + 1;
    u32::try_from(hash / width)
        .unwrap_or(shards - 1)
        .min(shards - 1)
}

/// The id Kinesis gives the `index`th shard of a new stream.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// A sequence number of the shard's `counter`th record, 56 digits like Kinesis's, increasing
/// within the shard.
pub fn sequence_number(shard: u32, counter: u64) -> String {
    format!("4964{shard:036}{counter:016}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_lands_where_its_md5_falls_in_even_hash_ranges() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661: its top three bits are 000.
        assert_eq!(shard_of_partition_key("a", 8), 0);
        // MD5("b") = 92eb5ffee6ae2fec3ad71c777531578f: top bits 100 -> shard 4 of 8, 1 of 2.
        assert_eq!(shard_of_partition_key("b", 8), 4);
        assert_eq!(shard_of_partition_key("b", 2), 1);
        assert_eq!(shard_of_partition_key("b", 1), 0);
    }

    #[test]
    fn keys_spread_over_every_shard() {
        let mut per_shard = [0u32; 8];
        for producer in 0..8_000 {
            per_shard[shard_of_partition_key(&format!("proxy-{producer}"), 8) as usize] += 1;
        }
        assert!(
            per_shard.iter().all(|count| (850..1150).contains(count)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn sequence_numbers_are_56_digits_and_order_as_numbers() {
        let early = sequence_number(3, 9);
        let late = sequence_number(3, 10);
        assert_eq!(early.len(), 56);
        assert_eq!(
            store::dedupe::compare_positions(&early, &late),
            std::cmp::Ordering::Less
        );
        assert_eq!(shard_id(7), "shardId-000000000007");
    }
}
