//! One fast hash of byte strings for the in-memory tables that look values up by their
//! bytes (a Parquet dictionary's, the decoder's names), seeded once per process.

use std::hash::BuildHasher;
use std::sync::OnceLock;

/// The process's hash seed, drawn once: values come from customers (model ids), so where
/// they land in the table is not something they can arrange.
pub(crate) fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0_u64) | 1)
}

/// A hash of `value` under `seed`: each 8 bytes folded in by a 128-bit multiply whose
/// halves are xored, as wyhash and foldhash do; tables take its top bits.
pub(crate) fn hash(value: &[u8], seed: u64) -> u64 {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    let fold = |hash: u64, word: u64| {
        let product = u128::from(hash ^ word) * u128::from(MULTIPLIER ^ seed);
        (product as u64) ^ ((product >> 64) as u64)
    };
    let mut hash = seed ^ value.len() as u64;
    let mut words = value.chunks_exact(8);
    for word in &mut words {
        hash = fold(hash, u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // The value's last 8 bytes (some read twice), or its few bytes padded.
        let mut last = [0_u8; 8];
        if value.len() >= 8 {
            last.copy_from_slice(&value[value.len() - 8..]);
        } else {
            last[..rest.len()].copy_from_slice(rest);
        }
        hash = fold(hash, u64::from_le_bytes(last));
    }
    fold(hash, seed)
}
